//! The catalog repositories, written once in the SQL dialect SQLite and PostgreSQL share, one file
//! per repository: its column list, its row types and the macro that implements its trait.
//!
//! Expanded in each backend crate by [`impl_catalog_repos!`]; the backend supplies its pool, its way
//! of serialising writers and its array parameters.

mod audit;
mod collections;
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
pub use collections::*;
pub use conversations::*;
pub use documents::*;
pub use evals::*;
pub use gateway::*;
pub use keys::*;
pub use lineage::*;
pub use prompts::*;
pub use sessions::*;

/// Implements every catalog repository trait for `$catalog`, a struct with a `pool` field of the
/// backend's `sqlx::Pool` and four inherent methods: `locked_tx(&self, key)`, a write transaction
/// that serialises writers of `key`; `locked_tx_many(&self, keys)`, the same for several keys; `fetch_chunks(&self, ids)`, chunks by id (array parameters differ
/// between the databases); and `after_label_move(&self, tx, name, label)`, which announces a label
/// move to other processes when the backend can. The SQL is the dialect both databases accept: `$N` parameters, `RETURNING`,
/// `ON CONFLICT … DO UPDATE`, standard types.
#[macro_export]
macro_rules! impl_catalog_repos {
    ($catalog:ident, $db:ty) => {
        mod catalog_repos {
            use $crate::cairn_core::catalog::*;
            use $crate::chrono::Utc;
            use $crate::serde_json::Value;
            use $crate::sqlx;
            use $crate::sqlx::types::Json;
            use $crate::uuid::Uuid;
            use $crate::*;

            use super::$catalog;

            $crate::impl_collection_repo!($catalog, $db);
            $crate::impl_document_repo!($catalog, $db);
            $crate::impl_prompt_repo!($catalog, $db);
            $crate::impl_conversation_repo!($catalog, $db);
            $crate::impl_lineage_repo!($catalog, $db);
            $crate::impl_eval_repo!($catalog, $db);
            $crate::impl_api_key_repo!($catalog, $db);
            $crate::impl_gateway_repo!($catalog, $db);
            $crate::impl_audit_repo!($catalog, $db);
            $crate::impl_session_repo!($catalog, $db);
            $crate::impl_retention_repo!($catalog, $db);
        }
    };
}
