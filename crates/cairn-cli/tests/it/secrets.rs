//! Secrets never leave where they belong: a provider key (which the provider even echoes in its
//! error, with a forged log line), a Cairn key and a refused key are used on every kind of path,
//! failures included, and then the responses, the server's log and every byte under the data
//! directory are searched for them.

use std::path::Path;

use serde_json::{Value, json};

use crate::{Server, cairn};

/// Every file under `dir`, read as bytes.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current).expect("read dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                found.push((path.display().to_string(), bytes));
            }
        }
    }
    found
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_responses_logs_or_anything_stored() {
    let upstream = cairn_testkit::ScriptedUpstream::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let base = upstream.base_url();
    std::fs::write(
        dir.path().join("cairn.toml"),
        format!(
            "[auth]\nmode = \"required\"\n\
             [[models]]\nname = \"leaky\"\nprovider = \"openai-compatible\"\nbase_url = \"{base}\"\nmodel = \"leaky\"\napi_key_env = \"PROVIDER_KEY\"\n\
             [[models]]\nname = \"good\"\nprovider = \"openai-compatible\"\nbase_url = \"{base}\"\nmodel = \"good\"\napi_key_env = \"PROVIDER_KEY\"\n"
        ),
    )
    .expect("config");
    let provider_key = format!("prov-{}", uuid::Uuid::new_v4().simple());
    let env = [("PROVIDER_KEY", provider_key.as_str())];
    let created = cairn(
        dir.path(),
        &[
            "key",
            "create",
            "--name",
            "ops",
            "--roles",
            "admin",
            "--collections",
            "*",
        ],
        &env,
    )
    .output()
    .expect("key create");
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let cairn_key = String::from_utf8_lossy(&created.stdout).trim().to_owned();
    let refused_key = format!("cairn_{}", uuid::Uuid::new_v4().simple());
    let secrets = [
        provider_key.as_str(),
        cairn_key.as_str(),
        refused_key.as_str(),
    ];

    let server = Server::start(dir.path(), &env);
    let client = reqwest::Client::new();
    let mut seen = String::new();
    let chat =
        |model: &str| json!({"model": model, "messages": [{"role": "user", "content": "hi"}]});
    for (key, body) in [
        (&cairn_key, chat("leaky")),
        (&cairn_key, chat("good")),
        (
            &cairn_key,
            json!({"model": "leaky", "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
        ),
        (&refused_key, chat("good")),
    ] {
        let response = client
            .post(server.url("/v1/chat/completions"))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .expect("chat");
        seen.push_str(&format!("{:?}\n", response.headers()));
        seen.push_str(&response.text().await.expect("body"));
    }
    let audit: Value = client
        .get(server.url("/v1/audit"))
        .bearer_auth(&cairn_key)
        .send()
        .await
        .expect("audit")
        .json()
        .await
        .expect("json");
    seen.push_str(&audit.to_string());
    assert!(
        seen.contains("Incorrect API key provided"),
        "the leaky call failed as scripted: {seen}"
    );
    assert!(seen.contains("[redacted]"), "{seen}");
    let logs = server.logs();
    drop(server);

    for secret in secrets {
        assert!(
            !seen.contains(secret),
            "a response carries a secret:\n{seen}"
        );
        assert!(!logs.contains(secret), "the log carries a secret:\n{logs}");
    }
    // The provider's line break and terminal escape did not survive into the log or a response.
    for forged in ["\\u001b", "\\n\\u001b", "\u{1b}"] {
        assert!(!logs.contains(forged), "{forged} in the log:\n{logs}");
        assert!(!seen.contains(forged), "{forged} in a response:\n{seen}");
    }
    for (path, bytes) in files(dir.path()) {
        for secret in secrets {
            assert!(!contains(&bytes, secret), "{path} holds a secret");
        }
    }
}
