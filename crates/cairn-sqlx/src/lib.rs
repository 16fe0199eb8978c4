//! What Cairn's two sqlx catalogs share: the repository implementations (one SQL text both databases
//! accept, expanded in each backend by [`impl_catalog_repos!`]), the row types and their conversion
//! into `cairn-core` records, and the classification of database errors.
//!
//! Both SQLite and PostgreSQL decode the same Rust types (uuid, `DateTime<Utc>`, JSON, `i64`) and both
//! accept `$N` parameters, `RETURNING` and `ON CONFLICT … DO UPDATE`, so one implementation serves both.
//! What differs stays in the backend crates: connecting, how writers are serialised, array parameters.

mod repos;

pub use repos::*;

// Re-exported for the code `impl_catalog_repos!` expands in the backend crates.
#[doc(hidden)]
pub use {async_trait, cairn_core, chrono, serde_json, sqlx, uuid};

use cairn_core::catalog::CatalogError;

/// Maps a database error to the catalog's classes. `conflict` words the message for unique violations.
pub fn classify(error: sqlx::Error, conflict: impl FnOnce() -> String) -> CatalogError {
    match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => CatalogError::Conflict(conflict()),
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Tls(_) => CatalogError::Unavailable(error.to_string()),
        _ => CatalogError::Backend(error.to_string()),
    }
}

/// Maps a database error that has no expected conflict.
pub fn db_error(error: sqlx::Error) -> CatalogError {
    classify(error, || "the record already exists".to_owned())
}

/// Converts a stored count back to its unsigned domain type; a negative value means a corrupt row.
fn unsigned<T: TryFrom<i64>>(column: &str, value: i64) -> Result<T, CatalogError> {
    T::try_from(value).map_err(|_| {
        CatalogError::Backend(format!(
            "column `{column}` holds {value}, which is out of range"
        ))
    })
}

/// Converts every row, stopping at the first that does not convert.
pub fn convert_all<R, T>(rows: Vec<R>) -> Result<Vec<T>, CatalogError>
where
    T: TryFrom<R, Error = CatalogError>,
{
    rows.into_iter().map(T::try_from).collect()
}

/// Whether the error is a foreign key violation: the referenced record does not exist.
pub fn is_foreign_key_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_foreign_key_violation())
}

/// Maps an insert's error, reading a foreign key violation as "the referenced record does not exist".
pub fn foreign_key_as_not_found(
    error: sqlx::Error,
    entity: &'static str,
    key: impl std::fmt::Display,
) -> CatalogError {
    if is_foreign_key_violation(&error) {
        CatalogError::not_found(entity, key)
    } else {
        db_error(error)
    }
}

/// Converts an unsigned domain value to the `BIGINT`/`INTEGER` both databases store.
pub fn to_i64(value: u64) -> Result<i64, CatalogError> {
    i64::try_from(value)
        .map_err(|_| CatalogError::Invalid(format!("{value} is too large to store")))
}
