//! Cairn's catalog for the scaled mode: PostgreSQL (with pgvector for the index adapter) over sqlx.
//!
//! SQL lives here and in `cairn-sqlite` only. Row types and error classification are shared through
//! `cairn-sqlx`; rules that need no database (chunk reconciliation, name syntax) come from `cairn-core`.
//! Writers that read before they write take a transaction-scoped advisory lock (or a row lock) on what
//! they change, so that concurrent replicas serialise: prompt versions stay a gap-free sequence.

use std::time::Duration;

use async_trait::async_trait;
use cairn_core::catalog::*;
use cairn_sqlx::*;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

mod vectors;

pub use vectors::{PgVectorIndex, PgVectorOptions};

/// The NOTIFY channel label moves are announced on.
const LABEL_CHANNEL: &str = "cairn_prompt_labels";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");

/// The PostgreSQL catalog.
#[derive(Debug, Clone)]
pub struct PostgresCatalog {
    pool: PgPool,
}

/// How to connect.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    pub max_connections: u32,
    /// How long to wait for a connection before reporting the catalog unavailable.
    pub acquire_timeout: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

impl PostgresCatalog {
    /// Connects to the database at `url` (`postgres://user:password@host:5432/db`).
    pub async fn connect(url: &str, options: &PostgresOptions) -> Result<Self, CatalogError> {
        let connect_options: PgConnectOptions = url
            .parse()
            .map_err(|e| CatalogError::Invalid(format!("invalid PostgreSQL URL: {e}")))?;
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect_options)
            .await
            .map_err(|e| CatalogError::Unavailable(format!("cannot connect to PostgreSQL: {e}")))?;
        Ok(PostgresCatalog { pool })
    }

    /// Wraps an existing pool.
    pub fn from_pool(pool: PgPool) -> Self {
        PostgresCatalog { pool }
    }

    /// The connection pool, to share with [`PgVectorIndex`] when the vectors live in the same
    /// database.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Applies pending migrations from `migrations/postgres`. Concurrent replicas are safe: sqlx takes an
    /// advisory lock while migrating.
    pub async fn migrate(&self) -> Result<(), CatalogError> {
        MIGRATOR
            .run(&self.pool)
            .await
            .map_err(|e| CatalogError::Backend(format!("PostgreSQL catalog migration failed: {e}")))
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A transaction holding an advisory lock on `key` until it ends.
    async fn locked_tx(&self, key: &str) -> Result<Transaction<'static, Postgres>, CatalogError> {
        self.locked_tx_many(vec![key.to_owned()]).await
    }

    /// A transaction holding the locks of every key, taken in sorted order so that two batches
    /// sharing keys cannot deadlock.
    async fn locked_tx_many(
        &self,
        mut keys: Vec<String>,
    ) -> Result<Transaction<'static, Postgres>, CatalogError> {
        keys.sort();
        keys.dedup();
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        for key in &keys {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                .bind(key)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
        }
        Ok(tx)
    }

    /// Announces a label move with NOTIFY, delivered to listeners when the transaction commits.
    async fn after_label_move(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        name: &str,
        label: &str,
    ) -> CatalogResult<()> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(LABEL_CHANNEL)
            .bind(format!("{name}:{label}"))
            .execute(&mut **tx)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    /// Chunks by id, in one query with an array parameter.
    async fn fetch_chunks(&self, ids: &[Uuid]) -> CatalogResult<Vec<Chunk>> {
        let rows: Vec<ChunkRow> = sqlx::query_as(concat!(
            "SELECT ",
            cairn_sqlx::chunk_columns!(),
            " FROM chunks WHERE id = ANY($1) ORDER BY document_id, chunk_index"
        ))
        .bind(ids)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        convert_all(rows)
    }
}

cairn_sqlx::impl_catalog_repos!(PostgresCatalog, sqlx::Postgres);

#[async_trait]
impl Catalog for PostgresCatalog {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn watch_label_moves(&self) -> CatalogResult<Option<LabelMoveFeed>> {
        let mut listener = sqlx::postgres::PgListener::connect_with(&self.pool)
            .await
            .map_err(db_error)?;
        listener.listen(LABEL_CHANNEL).await.map_err(db_error)?;
        // The listener reconnects by itself after a dropped connection; moves made while it was
        // away are missed, which the registry's cache time-to-live covers.
        let feed = futures_util::stream::unfold(listener, |mut listener| async move {
            loop {
                match listener.recv().await {
                    Ok(notification) => {
                        if let Some((name, label)) = notification.payload().split_once(':') {
                            return Some(((name.to_owned(), label.to_owned()), listener));
                        }
                    }
                    // The catalog is closing (the server is stopping): the feed ends, and its
                    // connection goes back so that the pool can close.
                    Err(sqlx::Error::PoolClosed) => return None,
                    Err(e) => {
                        tracing::warn!("prompt label feed interrupted: {e}");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                }
            }
        });
        Ok(Some(Box::pin(feed)))
    }

    async fn ping(&self) -> CatalogResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(|e| CatalogError::Unavailable(e.to_string()))?;
        Ok(())
    }
}

pub mod testing {
    //! Throwaway databases for tests: each test gets its own database, dropped when the guard drops,
    //! also when the test panics.

    use super::*;

    /// The server tests create databases on: `CAIRN_TEST_PG_URL`, or the local trust-auth default.
    pub fn admin_url() -> String {
        std::env::var("CAIRN_TEST_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
    }

    /// A database that exists for the life of this value.
    #[derive(Debug)]
    pub struct TestDatabase {
        pub name: String,
        pub url: String,
        admin_url: String,
    }

    impl TestDatabase {
        /// Creates an empty database with the pgvector extension installed.
        pub async fn create() -> TestDatabase {
            let admin_url = admin_url();
            let name = format!("cairn_test_{}", Uuid::new_v4().simple());
            let admin = PgPool::connect(&admin_url).await.unwrap_or_else(|e| {
                panic!("cannot reach PostgreSQL at {admin_url} ({e}); run scripts/pg-up.sh")
            });
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
                .execute(&admin)
                .await
                .expect("create test database");
            admin.close().await;
            let (base, _) = admin_url
                .rsplit_once('/')
                .expect("the admin URL names a database");
            let url = format!("{base}/{name}");
            let pool = PgPool::connect(&url)
                .await
                .expect("connect to the test database");
            sqlx::query("CREATE EXTENSION IF NOT EXISTS vector")
                .execute(&pool)
                .await
                .unwrap_or_else(|e| {
                    panic!("pgvector is not installed ({e}); run scripts/pg-up.sh")
                });
            pool.close().await;
            TestDatabase {
                name,
                url,
                admin_url,
            }
        }
    }

    impl Drop for TestDatabase {
        fn drop(&mut self) {
            // Drop may run inside a Tokio runtime that is shutting down, so the cleanup gets its own.
            let (name, admin_url) = (self.name.clone(), self.admin_url.clone());
            let cleanup = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                runtime.block_on(async {
                    let admin = PgPool::connect(&admin_url).await?;
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                    )))
                    .execute(&admin)
                    .await?;
                    admin.close().await;
                    Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
                })
            });
            if let Ok(Err(e)) = cleanup.join() {
                eprintln!("could not drop test database {}: {e}", self.name);
            }
        }
    }
}
