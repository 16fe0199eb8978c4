//! The web chat UI in headless Chromium (selenium, `tests/browser/test_chat_ui.py`), driving the
//! real `cairn serve` with the local SmolLM2 model over an ingested collection, a hostile model
//! whose answer tries to inject markup, a model whose upstream is down, and an agent whose tool
//! calls appear as step blocks.

use std::path::PathBuf;

use crate::rag::{run, write_handbook};
use crate::{Server, assert_ran, run_python_tests, smollm2};

/// Where the screenshots go: `$CAIRN_SCREENSHOTS`, else `browser-screenshots` in the cargo target
/// directory (which CI keeps between runs).
fn screenshots_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("CAIRN_SCREENSHOTS") {
        return PathBuf::from(dir);
    }
    let target = std::env::var("CARGO_TARGET_DIR").map_or_else(
        |_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"),
        PathBuf::from,
    );
    target.join("browser-screenshots")
}

pub(crate) fn chromedriver() -> String {
    let path = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
    assert!(
        std::path::Path::new(&path).is_file(),
        "{path} is missing: run scripts/browser-env.sh (scripts/test.sh does) or set CHROMEDRIVER"
    );
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_ui_streams_cited_answers_keeps_conversations_and_renders_model_output_inert() {
    let driver = chromedriver();
    let upstream = cairn_testkit::ScriptedUpstream::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    write_handbook(&dir.path().join("docs"));
    let base = upstream.base_url();
    std::fs::write(
        dir.path().join("cairn.toml"),
        format!(
            "[[models]]\nname = \"smollm2\"\nprovider = \"local\"\npath = \"{}\"\n\
             [[models]]\nname = \"hostile\"\nprovider = \"openai-compatible\"\nbase_url = \"{base}\"\nmodel = \"hostile\"\n\
             [[models]]\nname = \"trickle\"\nprovider = \"openai-compatible\"\nbase_url = \"{base}\"\nmodel = \"trickle\"\n\
             [[models]]\nname = \"down\"\nprovider = \"openai-compatible\"\nbase_url = \"{base}\"\nmodel = \"down\"\n\
             [[apps]]\nname = \"handbook\"\ndescription = \"Answers from the Cairn handbook\"\ncollections = [\"handbook\"]\nroute = \"smollm2\"\ntop_k = 2\ncontext_tokens = 300\nmax_tokens = 64\n\
             [[apps]]\nname = \"hostile\"\ncollections = [\"handbook\"]\nroute = \"hostile\"\ntop_k = 2\n\
             [[apps]]\nname = \"slow\"\ncollections = [\"handbook\"]\nroute = \"trickle\"\ntop_k = 2\n\
             [[apps]]\nname = \"down\"\ncollections = [\"handbook\"]\nroute = \"down\"\ntop_k = 2\n\
             [[models]]\nname = \"tool-user\"\nprovider = \"openai-compatible\"\nbase_url = \"{base}\"\nmodel = \"agent\"\n\
             [[agents]]\nname = \"researcher\"\ndescription = \"Looks things up in the handbook\"\nroute = \"tool-user\"\ntools = [\"search\"]\n\
             [[agents]]\nname = \"careful\"\nroute = \"tool-user\"\ntools = [\"search\"]\napproval = [\"search\"]\n",
            smollm2().display()
        ),
    )
    .expect("config");
    let (ok, stdout, stderr) = run(
        dir.path(),
        &["ingest", "docs", "--collection", "handbook"],
        &[],
    );
    assert!(ok, "{stdout}\n{stderr}");
    let model = cairn_testkit::test_model("minilm").display().to_string();
    let server = Server::start(dir.path(), &[("CAIRN__EMBEDDING__LOCAL", &model)]);

    let screenshots = screenshots_dir();
    std::fs::create_dir_all(&screenshots).expect("screenshot dir");
    let env = [
        ("CAIRN_URL", server.url("")),
        ("CAIRN_SCREENSHOTS", screenshots.display().to_string()),
        ("CAIRN_APP", "handbook".into()),
        ("CAIRN_HOSTILE_APP", "hostile".into()),
        ("CAIRN_DOWN_APP", "down".into()),
        ("CAIRN_SLOW_APP", "slow".into()),
        ("CAIRN_AGENT", "agent:researcher".into()),
        ("CAIRN_CAREFUL_AGENT", "agent:careful".into()),
        ("CHROMEDRIVER", driver),
    ];
    let (passed, report) = run_python_tests(
        "browser/test_chat_ui.py",
        env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
    )
    .await;
    assert!(
        passed,
        "the browser tests failed (screenshots in {}):\n{report}\n--- cairn log ---\n{}",
        screenshots.display(),
        server.logs()
    );
    // Every test of test_chat_ui.py ran (a test that errors out before its checks would not say OK).
    assert_ran(&report, 8, 0);
    println!("screenshots: {}", screenshots.display());
}

/// With `[auth] oidc_issuer`, the page signs in through the provider (authorization code + PKCE)
/// and comes back where it was, with an HTTP-only session cookie.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_ui_signs_in_through_oidc() {
    let driver = chromedriver();
    let provider = cairn_testkit::oidc::FakeOidc::start().await;
    let (_dir, server) = super::serve_with_oidc(&provider);
    let screenshots = screenshots_dir();
    std::fs::create_dir_all(&screenshots).expect("screenshot dir");
    let env = vec![
        ("CAIRN_URL".to_owned(), server.url("")),
        (
            "CAIRN_SCREENSHOTS".to_owned(),
            screenshots.display().to_string(),
        ),
        ("CHROMEDRIVER".to_owned(), driver),
    ];
    let (passed, report) = run_python_tests("browser/test_sign_in.py", env).await;
    assert!(
        passed,
        "sign-in in the browser failed:\n{report}\n--- cairn log ---\n{}",
        server.logs()
    );
    assert_ran(&report, 1, 0);
    assert_eq!(provider.pkce_rejections(), 0);
}
