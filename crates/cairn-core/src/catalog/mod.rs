//! The catalog: Cairn's metadata store, as repository traits.
//!
//! Implemented by `cairn-sqlite` (embedded mode) and `cairn-postgres` (scaled mode); both pass the same
//! contract suite (`cairn-catalog-contract`). Records are plain data; the rules that do not need the
//! database (name syntax, how a document's chunks are reconciled) live here so both backends share them.

use std::fmt;

use async_trait::async_trait;

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

/// A catalog failure, classified by what the caller does about it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CatalogError {
    #[error("{entity} `{key}` not found")]
    NotFound { entity: &'static str, key: String },
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    /// The database cannot be reached; the request may succeed later.
    #[error("catalog unavailable: {0}")]
    Unavailable(String),
    #[error("catalog error: {0}")]
    Backend(String),
}

impl CatalogError {
    pub fn not_found(entity: &'static str, key: impl fmt::Display) -> Self {
        CatalogError::NotFound {
            entity,
            key: key.to_string(),
        }
    }
}

pub type CatalogResult<T> = Result<T, CatalogError>;

/// Checks a name used in URLs, CLI arguments and labels: 1–64 characters of `a-z`, `0-9`, `_`, `-`, `.`,
/// starting with a letter or digit.
pub fn validate_name(kind: &str, name: &str) -> CatalogResult<()> {
    let valid_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '.'));
    let valid_start = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if name.is_empty() || name.len() > 64 || !valid_chars || !valid_start {
        return Err(CatalogError::Invalid(format!(
            "invalid {kind} name `{name}`: use 1 to 64 characters of a-z, 0-9, `_`, `-` or `.`, starting with a letter or digit"
        )));
    }
    Ok(())
}

/// Label moves as (prompt name, label), as they commit, from every process sharing the catalog.
pub type LabelMoveFeed =
    std::pin::Pin<Box<dyn futures_core::Stream<Item = (String, String)> + Send>>;

/// The whole metadata store.
#[async_trait]
pub trait Catalog:
    CollectionRepo
    + DocumentRepo
    + PromptRepo
    + ConversationRepo
    + LineageRepo
    + EvalRepo
    + ApiKeyRepo
    + GatewayRepo
    + AuditRepo
    + SessionRepo
    + RetentionRepo
    + fmt::Debug
{
    /// `sqlite` or `postgres`, for logs and health checks.
    fn backend(&self) -> &'static str;
    /// Checks that the database answers; used by `/readyz`.
    async fn ping(&self) -> CatalogResult<()>;
    /// A feed of label moves made by any process, for cache invalidation across replicas; `None`
    /// when the backend serves one process only (SQLite).
    async fn watch_label_moves(&self) -> CatalogResult<Option<LabelMoveFeed>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(validate_name("collection", "docs-2024_v1.2").is_ok());
        for bad in ["", "Docs", "-x", "a b", "ü", &"x".repeat(65)] {
            let err = validate_name("collection", bad).expect_err("refused");
            assert!(err.to_string().contains("use 1 to 64 characters"), "{err}");
        }
    }
}
