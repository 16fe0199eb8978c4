//! The contract every catalog backend must honour, as one suite of async checks.
//!
//! Each backend's integration tests expand [`catalog_contract_tests!`] with a function that returns a
//! fresh, migrated, empty catalog (and a guard that removes it afterwards). The checks use only the
//! `cairn-core` traits, so SQLite and PostgreSQL are held to exactly the same behaviour.

use std::sync::Arc;

use cairn_core::catalog::*;

mod audit;
mod conversations;
mod documents;
mod evals;
mod gateway;
mod keys;
mod lineage;
mod prompts;
mod retention;
mod sessions;

pub use audit::*;
pub use conversations::*;
pub use documents::*;
pub use evals::*;
pub use gateway::*;
pub use keys::*;
pub use lineage::*;
pub use prompts::*;
pub use retention::*;
pub use sessions::*;

/// Expands to one `#[tokio::test]` per contract check. `$setup` is an async fn returning
/// `(Arc<dyn Catalog>, G)`, where `G` cleans up when dropped.
#[macro_export]
macro_rules! catalog_contract_tests {
    ($setup:path) => {
        $crate::catalog_contract_tests!(@each $setup;
            ping, collections, collection_binding, documents, chunks, document_sync, prompt_versions, concurrent_publishes,
            prompt_labels, conversations, lineage_and_feedback, eval_runs, api_keys, usage_windows, shadow_results, audit_log, sessions, retention);
    };
    (@each $setup:path; $($check:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let (catalog, _guard) = $setup().await;
                $crate::$check(catalog).await;
            }
        )*
    };
}

pub(crate) fn assert_not_found<T: std::fmt::Debug>(result: CatalogResult<T>, what: &str) {
    match result {
        Err(CatalogError::NotFound { .. }) => {}
        other => panic!("{what}: expected NotFound, got {other:?}"),
    }
}

pub(crate) fn assert_conflict<T: std::fmt::Debug>(result: CatalogResult<T>, what: &str) -> String {
    match result {
        Err(CatalogError::Conflict(message)) => message,
        other => panic!("{what}: expected Conflict, got {other:?}"),
    }
}

pub async fn ping(catalog: Arc<dyn Catalog>) {
    catalog.ping().await.expect("ping");
    assert!(["sqlite", "postgres"].contains(&catalog.backend()));
}

pub(crate) async fn new_collection(catalog: &dyn Catalog, name: &str) -> Collection {
    catalog
        .create_collection(NewCollection {
            name: name.into(),
            description: format!("{name} docs"),
            ..Default::default()
        })
        .await
        .expect("create collection")
}
