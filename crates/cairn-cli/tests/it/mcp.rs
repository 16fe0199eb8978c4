//! The MCP server against the official MCP Python SDK, over streamable HTTP (with API keys) and
//! stdio, on a real `cairn` with two ingested collections; and the `cairn key` commands.

use std::path::Path;

use serde_json::{Value, json};

use crate::rag::{run, search_json, write_handbook};
use crate::{Server, run_python_tests};

/// Creates a key with `cairn key create` and returns the secret it prints.
fn create_key(dir: &Path, args: &[&str]) -> String {
    let mut full = vec!["key", "create"];
    full.extend_from_slice(args);
    let (ok, stdout, stderr) = run(dir, &full, &[]);
    assert!(ok, "key create failed: {stderr}");
    assert!(stderr.contains("not shown again"), "{stderr}");
    let secret = stdout.trim().to_owned();
    assert!(secret.starts_with("cairn_"), "{stdout}");
    secret
}

/// Runs the Python SDK test file over one transport and checks that every test ran and passed, but
/// the `skipped` ones that do not apply to the transport.
async fn run_client(
    mut env: Vec<(String, String)>,
    transport: &str,
    expected_tests: usize,
    skipped: usize,
) {
    env.push(("CAIRN_MCP_TRANSPORT".into(), transport.into()));
    let (passed, report) = run_python_tests("mcp/test_mcp_client.py", env).await;
    assert!(passed, "the MCP Python SDK disagreed with Cairn:\n{report}");
    crate::assert_ran(&report, expected_tests, skipped);
    println!("{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mcp_python_sdk_works_over_http_with_keys_and_over_stdio() {
    let upstream = cairn_testkit::ScriptedUpstream::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    write_handbook(&dir.path().join("docs"));
    let finance = dir.path().join("finance");
    std::fs::create_dir_all(&finance).expect("finance dir");
    std::fs::write(
        finance.join("budget.md"),
        "# Budget 2027\n\nThe travel budget is frozen until March.\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("cairn.toml"),
        format!(
            "[[models]]\nname = \"writer\"\nprovider = \"openai-compatible\"\nbase_url = \"{}\"\nmodel = \"good\"\n\
             [[apps]]\nname = \"handbook\"\ncollections = [\"handbook\"]\nroute = \"writer\"\ntop_k = 3\n\
             [[apps]]\nname = \"budget\"\ncollections = [\"handbook\", \"finance\"]\nroute = \"writer\"\n\
             [[guards]]\nname = \"pii\"\nkind = \"pii\"\nstages = [\"input\"]\naction = \"redact\"\n",
            upstream.base_url()
        ),
    )
    .expect("config");
    std::fs::create_dir_all(dir.path().join("evals")).expect("evals dir");
    std::fs::write(
        dir.path().join("evals/handbook.yaml"),
        "name: handbook-smoke\ntarget: app:handbook\ndataset:\n  cases:\n    - question: Where is the catalog kept with PostgreSQL?\nmetrics:\n  - metric: contains\n    value: answer from good\ngates:\n  - metric: contains\n    min_mean: 1.0\n",
    )
    .expect("suite");
    for (source, collection) in [("docs", "handbook"), ("finance", "finance")] {
        let (ok, stdout, stderr) = run(
            dir.path(),
            &["ingest", source, "--collection", collection],
            &[],
        );
        assert!(ok, "{stdout}\n{stderr}");
    }

    let full = create_key(dir.path(), &["--name", "ide", "--collections", "handbook"]);
    let limited = create_key(
        dir.path(),
        &[
            "--name",
            "search-only",
            "--tools",
            "search_knowledge,list_collections",
            "--collections",
            "handbook",
        ],
    );
    let revoked = create_key(dir.path(), &["--name", "old", "--collections", "*"]);
    let (ok, stdout, stderr) = run(dir.path(), &["key", "revoke", "old"], &[]);
    assert!(
        ok && stdout.contains("revoked key `old`"),
        "{stdout}{stderr}"
    );
    let (ok, _, stderr) = run(dir.path(), &["key", "revoke", "old"], &[]);
    assert!(!ok && stderr.contains("no active key"), "{stderr}");
    let (ok, _, stderr) = run(
        dir.path(),
        &["key", "create", "--name", "x", "--tools", "rm_rf"],
        &[],
    );
    assert!(!ok && stderr.contains("`rm_rf` is not a tool"), "{stderr}");
    let (ok, listing, stderr) = run(dir.path(), &["key", "list", "--json"], &[]);
    assert!(ok, "{stderr}");
    let keys: Value = serde_json::from_str(&listing).expect("key list JSON");
    assert_eq!(keys.as_array().map(Vec::len), Some(3), "{keys}");
    for secret in [&full, &limited, &revoked] {
        assert!(
            !listing.contains(secret.as_str()),
            "a listing shows a secret"
        );
    }
    let search_only = keys
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["name"] == "search-only"))
        .expect("search-only key listed");
    assert_eq!(
        search_only["tools"],
        json!(["search_knowledge", "list_collections"])
    );

    let query = "Where is the catalog kept with PostgreSQL?";
    let chunk_ids: Vec<Value> = search_json(dir.path(), query, &[])
        .iter()
        .map(|p| p["chunk_id"].clone())
        .collect();
    let finance_document = search_json_in(dir.path(), "travel budget", "finance")[0]["document_id"]
        .as_str()
        .expect("a finance document")
        .to_owned();
    let expected = json!({"query": query, "chunk_ids": chunk_ids,
                          "finance_document_id": finance_document})
    .to_string();
    let model = cairn_testkit::test_model("minilm").display().to_string();
    let common = vec![
        ("CAIRN_EXPECTED".to_owned(), expected),
        ("CAIRN__EMBEDDING__LOCAL".to_owned(), model.clone()),
    ];

    {
        // Keys are required here: on the loopback default the local user would need none.
        let server = Server::start(
            dir.path(),
            &[
                ("CAIRN__EMBEDDING__LOCAL", &model),
                ("CAIRN__AUTH__MODE", "required"),
            ],
        );
        let mut env = common.clone();
        env.extend([
            ("CAIRN_MCP_URL".to_owned(), server.url("/mcp")),
            ("CAIRN_KEY_FULL".to_owned(), full),
            ("CAIRN_KEY_LIMITED".to_owned(), limited),
            ("CAIRN_KEY_REVOKED".to_owned(), revoked),
        ]);
        run_client(env, "http", 17, 0).await;
        let logs = server.logs();
        assert!(
            logs.contains("tool call refused by the key's allow-list"),
            "{logs}"
        );
    }

    let mut env = common;
    env.extend([
        ("CAIRN_BIN".to_owned(), crate::BIN.to_owned()),
        ("CAIRN_DIR".to_owned(), dir.path().display().to_string()),
    ]);
    // Thirteen tests run over stdio; the four HTTP authentication tests are skipped (they ran over
    // HTTP above), and say so.
    run_client(env, "stdio", 17, 4).await;
}

fn search_json_in(dir: &Path, query: &str, collection: &str) -> Vec<Value> {
    let (ok, stdout, stderr) = run(
        dir,
        &["search", query, "--collection", collection, "--json"],
        &[],
    );
    assert!(ok, "search failed: {stderr}");
    serde_json::from_str(&stdout).expect("search prints JSON")
}
