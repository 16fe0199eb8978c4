//! A Qdrant server. The contract tests (`remote::contract::*`) need one named by `QDRANT_URL` (e.g.
//! `http://127.0.0.1:6334`; `QDRANT_API_KEY` if it needs a key): the default nextest profiles leave
//! them out and `scripts/test.sh` says so; `cargo nextest run --profile qdrant-remote` runs them and
//! fails when `QDRANT_URL` is unset. Each test works under its own collection prefix and removes
//! what it created.

use std::sync::Arc;

use cairn_core::index::VectorIndex;
use cairn_qdrant::{RemoteIndex, RemoteOptions};
use qdrant_client::Qdrant;
use uuid::Uuid;

fn url() -> Option<String> {
    std::env::var("QDRANT_URL")
        .ok()
        .filter(|url| !url.trim().is_empty())
}

fn api_key() -> Option<String> {
    std::env::var("QDRANT_API_KEY")
        .ok()
        .filter(|key| !key.is_empty())
}

/// Deletes the test's collections (every one under its prefix) when dropped, also on panic.
struct Cleanup {
    url: String,
    prefix: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let (url, prefix) = (self.url.clone(), self.prefix.clone());
        // A runtime of its own: the test's runtime may be shutting down.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                let mut builder = Qdrant::from_url(&url).skip_compatibility_check();
                if let Some(key) = api_key() {
                    builder = builder.api_key(key);
                }
                let client = builder.build().expect("client");
                if let Ok(list) = client.list_collections().await {
                    for collection in list.collections {
                        if collection.name.starts_with(&prefix) {
                            let _ = client.delete_collection(collection.name).await;
                        }
                    }
                }
            });
        });
        let _ = cleanup.join();
    }
}

async fn remote_index() -> (Arc<dyn VectorIndex>, Cleanup) {
    let url = url().unwrap_or_else(|| {
        panic!(
            "QDRANT_URL is not set: the remote contract tests need a Qdrant server; run them with \
             QDRANT_URL=http://host:6334 cargo nextest run --profile qdrant-remote"
        )
    });
    let prefix = format!("cairn_test_{}_", &Uuid::new_v4().simple().to_string()[..8]);
    let mut options = RemoteOptions::new(url.clone()).prefix(prefix.clone());
    if let Some(key) = api_key() {
        options = options.api_key(key);
    }
    let index = RemoteIndex::connect(options).expect("client");
    (Arc::new(index), Cleanup { url, prefix })
}

/// The contract against the server; left out of the default test run (see the module docs).
mod contract {
    use super::remote_index;

    cairn_index_contract::index_contract_tests!(remote_index);
}

#[tokio::test]
async fn an_unreachable_server_names_the_url_and_the_setting() {
    // Port 1 on the loopback interface refuses connections.
    let index = RemoteIndex::from_url("http://127.0.0.1:1").expect("lazy client");
    let err = index.ping().await.expect_err("nothing listens there");
    let message = err.to_string();
    assert!(
        message.starts_with("index unavailable") && message.contains("http://127.0.0.1:1"),
        "{message}"
    );
    assert!(message.contains("[index] url"), "{message}");
}
