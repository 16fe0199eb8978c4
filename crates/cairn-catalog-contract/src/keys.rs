//! API keys.

use std::sync::Arc;

use cairn_core::catalog::*;

use crate::assert_conflict;

fn new_key(name: &str, hash: &str) -> NewApiKey {
    NewApiKey {
        name: name.into(),
        prefix: "cairn_ab12".into(),
        key_hash: hash.into(),
        tools: vec!["search_knowledge".into()],
        collections: vec!["handbook".into()],
        roles: vec!["read".into(), "prompt_admin".into()],
    }
}

pub async fn api_keys(catalog: Arc<dyn Catalog>) {
    let key = catalog
        .create_api_key(new_key("ci-bot", "hash-1"))
        .await
        .expect("create");
    assert_eq!(
        catalog.find_active_api_key("hash-1").await.expect("find"),
        Some(key.clone())
    );
    assert_eq!(key.roles, ["read", "prompt_admin"], "roles round-trip");
    assert_eq!(
        catalog
            .find_active_api_key("hash-x")
            .await
            .expect("find unknown"),
        None
    );
    let message = assert_conflict(
        catalog.create_api_key(new_key("ci-bot", "hash-2")).await,
        "duplicate active name",
    );
    assert!(message.contains("ci-bot"), "{message}");

    assert!(catalog.revoke_api_key("ci-bot").await.expect("revoke"));
    assert!(
        !catalog
            .revoke_api_key("ci-bot")
            .await
            .expect("revoke again")
    );
    assert_eq!(
        catalog
            .find_active_api_key("hash-1")
            .await
            .expect("find revoked"),
        None
    );
    catalog
        .create_api_key(new_key("ci-bot", "hash-3"))
        .await
        .expect("a revoked name can be reused");
    let keys = catalog.list_api_keys().await.expect("list");
    assert_eq!(keys.len(), 2);
    assert_eq!(keys.iter().filter(|k| k.revoked_at.is_some()).count(), 1);
    assert_eq!(keys[0].tools, ["search_knowledge"]);
    assert_eq!(keys[0].collections, ["handbook"]);
}
