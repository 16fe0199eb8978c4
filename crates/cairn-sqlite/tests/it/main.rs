//! Integration tests of the SQLite catalog, each on its own database file.

use std::sync::Arc;

use cairn_core::Catalog;
use cairn_sqlite::SqliteCatalog;
use tempfile::TempDir;

async fn fresh_catalog() -> (Arc<dyn Catalog>, TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let catalog = SqliteCatalog::open(&dir.path().join("catalog.db"))
        .await
        .expect("open");
    catalog.migrate().await.expect("migrate");
    (Arc::new(catalog), dir)
}

cairn_catalog_contract::catalog_contract_tests!(fresh_catalog);

#[tokio::test]
async fn data_survives_reopening_and_migrations_are_idempotent() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("catalog.db");
    {
        let catalog = SqliteCatalog::open(&path).await.expect("open");
        catalog.migrate().await.expect("migrate");
        use cairn_core::catalog::{CollectionRepo, NewCollection};
        catalog
            .create_collection(NewCollection {
                name: "kb".into(),
                ..Default::default()
            })
            .await
            .expect("create");
        catalog.close().await;
    }
    let catalog = SqliteCatalog::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("reopen by URL");
    catalog
        .migrate()
        .await
        .expect("second migration is a no-op");
    use cairn_core::catalog::CollectionRepo;
    assert!(catalog.get_collection("kb").await.expect("get").is_some());
}
