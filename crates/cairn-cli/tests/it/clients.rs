//! Clients users run, unchanged, against `cairn serve`: LangChain's OpenAI integration (chat,
//! streaming, tool calls, structured output, and embeddings with `OpenAIEmbeddings`' defaults, which
//! send token ids) and the official OpenAI Node package.

use std::path::PathBuf;

use crate::{Server, assert_ran, run_python_tests};

/// tiktoken's cache file for `cl100k_base` (the SHA-1 of its download URL), copied from the
/// `tiktoken-rs` crate in the cargo registry, which ships the same file: no download.
fn tiktoken_cache() -> tempfile::TempDir {
    let registry = PathBuf::from(
        std::env::var("CARGO_HOME")
            .unwrap_or_else(|_| format!("{}/.cargo", std::env::var("HOME").unwrap_or_default())),
    )
    .join("registry/src");
    let source = std::fs::read_dir(&registry)
        .expect("the cargo registry")
        .filter_map(Result::ok)
        .flat_map(|index| std::fs::read_dir(index.path()).into_iter().flatten())
        .filter_map(Result::ok)
        .map(|entry| entry.path().join("assets/cl100k_base.tiktoken"))
        .find(|path| path.is_file() && path.to_string_lossy().contains("tiktoken-rs-"))
        .expect("tiktoken-rs's cl100k_base.tiktoken in the cargo registry");
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::copy(
        source,
        dir.path().join("9b5ad71b2ce5302211f9c61530b329a4922fc6a4"),
    )
    .expect("copy cl100k_base");
    dir
}

/// `cairn serve` with `models` (name, the scripted upstream's model) and the packaged embedding
/// model as all-MiniLM-L6-v2.
fn serve(
    upstream: &cairn_testkit::ScriptedUpstream,
    models: &[(&str, &str)],
) -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().expect("temp dir");
    let base = upstream.base_url();
    let mut config: String = models
        .iter()
        .map(|(name, model)| {
            format!("[[models]]\nname = \"{name}\"\nprovider = \"openai-compatible\"\nbase_url = \"{base}\"\nmodel = \"{model}\"\n")
        })
        .collect();
    config.push_str(&format!(
        "[embedding]\nlocal = \"{}\"\nname = \"all-MiniLM-L6-v2\"\n",
        cairn_testkit::test_model("minilm").display()
    ));
    std::fs::write(dir.path().join("cairn.toml"), config).expect("config");
    let server = Server::start(dir.path(), &[]);
    (dir, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn langchain_works_unchanged() {
    let upstream = cairn_testkit::ScriptedUpstream::start().await;
    let (_dir, server) = serve(
        &upstream,
        &[
            ("backup", "good"),
            ("agent", "tools"),
            ("json", "json-on-second-try"),
        ],
    );
    let cache = tiktoken_cache();
    let (passed, report) = run_python_tests(
        "openai_compat/test_langchain.py",
        vec![
            ("CAIRN_BASE_URL".into(), server.url("/v1")),
            (
                "TIKTOKEN_CACHE_DIR".into(),
                cache.path().display().to_string(),
            ),
        ],
    )
    .await;
    assert!(
        passed,
        "LangChain disagreed with Cairn:\n{report}\n--- cairn log ---\n{}",
        server.logs()
    );
    assert_ran(&report, 5, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openai_node_package_works_unchanged() {
    let upstream = cairn_testkit::ScriptedUpstream::start().await;
    let (_dir, server) = serve(
        &upstream,
        &[("backup", "good"), ("agent", "tools"), ("small", "context")],
    );
    // ESM resolves `openai` from the script's own folder: run it beside the installed package.
    let clients =
        cairn_testkit::npm_tools("node-clients", "CAIRN_NODE_CLIENTS", "node_modules/openai");
    let script = clients.join("test_openai_node.mjs");
    std::fs::copy(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/openai_compat/node/test_openai_node.mjs"),
        &script,
    )
    .expect("copy the test");
    let url = server.url("/v1");
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .args(["--test", "--test-reporter=tap"])
            .arg(&script)
            .env("CAIRN_BASE_URL", url)
            .output()
            .expect("run node")
    })
    .await
    .expect("join");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "the OpenAI Node package disagreed with Cairn:\n{report}\n--- cairn log ---\n{}",
        server.logs()
    );
    // Every test ran and passed: node's TAP summary counts them.
    assert!(
        report.contains("# pass 6") && report.contains("# fail 0"),
        "{report}"
    );
}
