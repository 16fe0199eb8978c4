//! LangChain's OpenAI integration, unchanged, against `cairn serve`: chat, streaming, tool calls,
//! structured output and embeddings with `OpenAIEmbeddings`' defaults (token ids as input).

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn langchain_works_unchanged() {
    let upstream = cairn_testkit::ScriptedUpstream::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let base = upstream.base_url();
    std::fs::write(
        dir.path().join("cairn.toml"),
        format!(
            "[[models]]\nname = \"backup\"\nprovider = \"openai-compatible\"\nbase_url = \"{base}\"\nmodel = \"good\"\n\
             [[models]]\nname = \"agent\"\nprovider = \"openai-compatible\"\nbase_url = \"{base}\"\nmodel = \"tools\"\n\
             [[models]]\nname = \"json\"\nprovider = \"openai-compatible\"\nbase_url = \"{base}\"\nmodel = \"json-on-second-try\"\n\
             [embedding]\nlocal = \"{}\"\nname = \"all-MiniLM-L6-v2\"\n",
            cairn_testkit::test_model("minilm").display()
        ),
    )
    .expect("config");
    let server = Server::start(dir.path(), &[]);
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
