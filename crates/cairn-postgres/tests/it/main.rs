//! Integration tests of the PostgreSQL catalog against the real server (see scripts/pg-up.sh).

use std::sync::Arc;

use cairn_core::Catalog;
use cairn_postgres::testing::TestDatabase;
use cairn_postgres::{PostgresCatalog, PostgresOptions};

mod vectors;

async fn fresh_catalog() -> (Arc<dyn Catalog>, TestDatabase) {
    let database = TestDatabase::create().await;
    let catalog = PostgresCatalog::connect(&database.url, &PostgresOptions::default())
        .await
        .expect("connect");
    catalog.migrate().await.expect("migrate");
    (Arc::new(catalog), database)
}

cairn_catalog_contract::catalog_contract_tests!(fresh_catalog);

#[tokio::test]
async fn migrations_are_idempotent_and_pgvector_is_usable() {
    let database = TestDatabase::create().await;
    let catalog = PostgresCatalog::connect(&database.url, &PostgresOptions::default())
        .await
        .expect("connect");
    catalog.migrate().await.expect("first migration");
    catalog
        .migrate()
        .await
        .expect("second migration is a no-op");
    let pool = sqlx::PgPool::connect(&database.url).await.expect("connect");
    let distance: f64 = sqlx::query_scalar("SELECT '[1,0,0]'::vector <=> '[0,1,0]'::vector")
        .fetch_one(&pool)
        .await
        .expect("pgvector cosine distance");
    assert!(
        (distance - 1.0).abs() < 1e-9,
        "orthogonal vectors are at cosine distance 1, got {distance}"
    );
    pool.close().await;
}

#[tokio::test]
async fn test_databases_are_dropped() {
    let name = {
        let database = TestDatabase::create().await;
        database.name.clone()
    };
    let admin = sqlx::PgPool::connect(&cairn_postgres::testing::admin_url())
        .await
        .expect("connect");
    let left: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(&name)
        .fetch_optional(&admin)
        .await
        .expect("query");
    assert_eq!(left, None, "test database {name} was left behind");
}

#[tokio::test]
async fn unreachable_server_is_reported_as_unavailable() {
    let options = PostgresOptions {
        acquire_timeout: std::time::Duration::from_secs(1),
        ..Default::default()
    };
    let error = PostgresCatalog::connect("postgres://postgres@127.0.0.1:1/none", &options)
        .await
        .expect_err("refused");
    assert!(
        matches!(error, cairn_core::CatalogError::Unavailable(_)),
        "{error:?}"
    );
}
