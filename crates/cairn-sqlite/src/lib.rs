//! Cairn's catalog for the embedded mode: one SQLite file under the data directory, over sqlx.
//!
//! SQL lives here and in `cairn-postgres` only. Row types and error classification are shared through
//! `cairn-sqlx`; rules that need no database (chunk reconciliation, name syntax) come from `cairn-core`.
//! Writers that read before they write (prompt publishing, label moves) take SQLite's write lock up
//! front with `BEGIN IMMEDIATE`, which serialises them the way `SELECT … FOR UPDATE` does on PostgreSQL.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use cairn_core::catalog::*;
use cairn_sqlx::*;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};
use uuid::Uuid;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");

/// The SQLite catalog.
#[derive(Debug, Clone)]
pub struct SqliteCatalog {
    pool: SqlitePool,
}

impl SqliteCatalog {
    /// Opens (creating if needed) the catalog file at `path`. The parent directory must exist.
    pub async fn open(path: &Path) -> Result<Self, CatalogError> {
        Self::with_options(
            SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true),
        )
        .await
    }

    /// Opens a catalog from a `sqlite:` URL, such as `sqlite://.cairn/catalog.db`.
    pub async fn connect(url: &str) -> Result<Self, CatalogError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| CatalogError::Invalid(format!("invalid SQLite URL `{url}`: {e}")))?
            .create_if_missing(true);
        Self::with_options(options).await
    }

    async fn with_options(options: SqliteConnectOptions) -> Result<Self, CatalogError> {
        let options = options
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .map_err(|e| {
                CatalogError::Unavailable(format!("cannot open the SQLite catalog: {e}"))
            })?;
        Ok(SqliteCatalog { pool })
    }

    /// Applies pending migrations from `migrations/sqlite`.
    pub async fn migrate(&self) -> Result<(), CatalogError> {
        MIGRATOR
            .run(&self.pool)
            .await
            .map_err(|e| CatalogError::Backend(format!("SQLite catalog migration failed: {e}")))
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A write transaction. `BEGIN IMMEDIATE` takes SQLite's single write lock up front, which
    /// serialises every writer (and so the writers of `_key`): a read-then-write cannot interleave
    /// with another.
    async fn locked_tx(&self, _key: &str) -> Result<Transaction<'static, Sqlite>, CatalogError> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db_error)
    }

    /// SQLite serialises every writer already: one immediate transaction covers every key.
    async fn locked_tx_many(
        &self,
        _keys: Vec<String>,
    ) -> Result<Transaction<'static, Sqlite>, CatalogError> {
        self.locked_tx("").await
    }

    /// An embedded catalog serves one process: there is no one else to tell about a label move.
    async fn after_label_move(
        &self,
        _tx: &mut Transaction<'static, Sqlite>,
        _name: &str,
        _label: &str,
    ) -> CatalogResult<()> {
        Ok(())
    }

    /// Chunks by id. SQLite has no array parameters: the ids are bound one by one, in batches under
    /// its parameter limit.
    async fn fetch_chunks(&self, ids: &[Uuid]) -> CatalogResult<Vec<Chunk>> {
        let mut chunks = Vec::with_capacity(ids.len());
        for batch in ids.chunks(500) {
            let mut query = sqlx::QueryBuilder::<Sqlite>::new(concat!(
                "SELECT ",
                cairn_sqlx::chunk_columns!(),
                " FROM chunks WHERE id IN ("
            ));
            let mut separated = query.separated(", ");
            for id in batch {
                separated.push_bind(*id);
            }
            query.push(")");
            let rows: Vec<ChunkRow> = query
                .build_query_as()
                .fetch_all(&self.pool)
                .await
                .map_err(db_error)?;
            chunks.extend(convert_all::<_, Chunk>(rows)?);
        }
        chunks.sort_by_key(|c| (c.document_id, c.chunk_index));
        Ok(chunks)
    }
}

cairn_sqlx::impl_catalog_repos!(SqliteCatalog, sqlx::Sqlite);

#[async_trait]
impl Catalog for SqliteCatalog {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn watch_label_moves(&self) -> CatalogResult<Option<LabelMoveFeed>> {
        Ok(None)
    }

    async fn ping(&self) -> CatalogResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(|e| CatalogError::Unavailable(e.to_string()))?;
        Ok(())
    }
}
