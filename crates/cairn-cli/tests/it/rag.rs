//! `cairn ingest`, `cairn search` and the collection API, on the real binary with the packaged
//! all-MiniLM-L6-v2: embedded (SQLite + qdrant-edge) and PostgreSQL (+ pgvector) modes, and an
//! ingest killed with SIGKILL.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_core::Catalog;
use cairn_core::catalog::{CollectionRepo, DocumentRepo};
use cairn_core::index::VectorIndex;
use cairn_postgres::testing::TestDatabase;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{Server, cairn};

pub(crate) fn minilm() -> String {
    cairn_testkit::test_model("minilm").display().to_string()
}

pub(crate) fn write_handbook(dir: &Path) {
    std::fs::create_dir_all(dir).expect("docs dir");
    std::fs::write(
        dir.join("install.md"),
        "# Installing Cairn\n\nCairn ships as one binary.\n\n## On Linux\n\nUnpack the archive and put `cairn` on your PATH; it needs glibc 2.31 or newer.\n\n## On macOS\n\nRun `brew install cairn`.\n",
    )
    .expect("write");
    std::fs::write(
        dir.join("database.md"),
        "# Database\n\n## PostgreSQL\n\nSet `database.url` to a postgres:// URL to keep the catalog in PostgreSQL; vectors then go to pgvector in the same database.\n\n## SQLite\n\nWithout a URL, the catalog is an SQLite file under the data directory.\n",
    )
    .expect("write");
    std::fs::write(
        dir.join("faq.txt"),
        "Why is the first build slow? It compiles the model runtime once; later builds reuse it.\n",
    )
    .expect("write");
}

/// Runs `cairn ARGS` with the test model and extra environment; returns (success, stdout, stderr).
pub(crate) fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let model = minilm();
    let mut env = env.to_vec();
    env.push(("CAIRN__EMBEDDING__LOCAL", &model));
    let output = cairn(dir, args, &env).output().expect("run cairn");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

pub(crate) fn search_json(dir: &Path, query: &str, env: &[(&str, &str)]) -> Vec<Value> {
    let (ok, stdout, stderr) = run(
        dir,
        &["search", query, "--collection", "handbook", "--json"],
        env,
    );
    assert!(ok, "search failed: {stderr}");
    serde_json::from_str(&stdout).expect("search prints JSON")
}

/// Ingest, re-ingest, search from the CLI and the API, upload and delete, in one mode.
async fn ingest_and_search(env: &[(&str, &str)]) {
    let dir = tempfile::tempdir().expect("temp dir");
    let docs = dir.path().join("docs");
    write_handbook(&docs);

    let (ok, stdout, stderr) = run(
        dir.path(),
        &["ingest", "docs", "--collection", "handbook"],
        env,
    );
    assert!(ok, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("handbook: 3 added, 0 updated, 0 unchanged, 0 removed, 0 failed"),
        "{stdout}"
    );
    // Off a terminal, progress comes as lines: at the start and when the last file is done.
    assert!(
        stderr.contains("ingest: 0/3 files, 0 chunks (0 tokens) embedded")
            && stderr.contains("ingest: 3/3 files, "),
        "{stderr}"
    );
    let (ok, stdout, stderr) = run(
        dir.path(),
        &["ingest", "docs", "--collection", "handbook"],
        env,
    );
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("0 added, 0 updated, 3 unchanged"),
        "{stdout}"
    );
    assert!(
        stdout.contains("0 chunks embedded"),
        "re-embeds nothing: {stdout}"
    );

    let passages = search_json(
        dir.path(),
        "where does the catalog live with postgres?",
        env,
    );
    let top = &passages[0];
    assert!(
        top["source"]
            .as_str()
            .unwrap_or_default()
            .ends_with("database.md"),
        "{top}"
    );
    assert_eq!(top["title"], "Database");
    assert_eq!(top["heading_path"][0], "Database", "{top}");
    assert!(top["char_end"].as_u64() > top["char_start"].as_u64());
    let (ok, table, _) = run(
        dir.path(),
        &["search", "glibc version", "--collection", "handbook"],
        env,
    );
    assert!(ok);
    assert!(table.contains("Installing Cairn"), "{table}");
    assert!(
        table.contains("install.md ["),
        "the citation names the file and the range: {table}"
    );

    let mut server_env = env.to_vec();
    let model = minilm();
    server_env.push(("CAIRN__EMBEDDING__LOCAL", &model));
    let server = Server::start(dir.path(), &server_env);
    let client = reqwest::Client::new();
    let response = client
        .post(server.url("/v1/collections/handbook/search"))
        .json(&json!({"query": "where does the catalog live with postgres?", "top_k": 5, "context_tokens": 300}))
        .send()
        .await
        .expect("search");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    let api_ids: Vec<&str> = body["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|p| p["chunk_id"].as_str().unwrap_or_default())
        .collect();
    let cli_ids: Vec<&str> = passages
        .iter()
        .map(|p| p["chunk_id"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        api_ids, cli_ids,
        "the API and the CLI return the same passages"
    );
    assert!(
        body["context"]["text"]
            .as_str()
            .unwrap_or_default()
            .starts_with("[1] Database\n"),
        "{body}"
    );

    // `cairn ingest` while the server runs (and holds the index): the server sees the new file.
    std::fs::write(
        docs.join("backup.md"),
        "# Backups\n\nRun cairn backup nightly; snapshots go to the object store bucket.\n",
    )
    .expect("write");
    let (ok, stdout, stderr) = run(
        dir.path(),
        &["ingest", "docs", "--collection", "handbook"],
        env,
    );
    assert!(ok, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("1 added, 0 updated, 3 unchanged"),
        "{stdout}"
    );
    let hits: Value = super::json_body(
        client
            .post(server.url("/v1/collections/handbook/search"))
            .json(&json!({"query": "when do backups run and where do snapshots go?", "top_k": 1})),
    )
    .await;
    assert!(
        hits["data"][0]["source"]
            .as_str()
            .unwrap_or_default()
            .ends_with("backup.md"),
        "the server sees what another process ingested: {hits}"
    );
    std::fs::remove_file(docs.join("backup.md")).expect("rm");
    let (ok, stdout, _) = run(
        dir.path(),
        &["ingest", "docs", "--collection", "handbook"],
        env,
    );
    assert!(ok && stdout.contains("1 removed"), "{stdout}");

    // Upload two files in one request (ingested together), find one, delete it.
    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(
                b"# Keys\n\nRotate API keys every ninety days with cairn key rotate.\n".to_vec(),
            )
            .file_name("keys.md"),
        )
        .part(
            "file",
            reqwest::multipart::Part::bytes(b"Backups run nightly at two.\n".to_vec())
                .file_name("backups.txt"),
        );
    let response = client
        .post(server.url("/v1/collections/handbook/documents"))
        .multipart(form)
        .send()
        .await
        .expect("upload");
    assert_eq!(response.status(), 201);
    let report: Value = response.json().await.expect("json");
    assert_eq!(report["added"], 2, "{report}");
    let hits: Value = super::json_body(
        client
            .post(server.url("/v1/collections/handbook/search"))
            .json(&json!({"query": "how often should keys rotate", "top_k": 1})),
    )
    .await;
    assert_eq!(hits["data"][0]["source"], "upload:keys.md", "{hits}");
    let document_id = hits["data"][0]["document_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let response = client
        .delete(server.url(&format!("/v1/collections/handbook/documents/{document_id}")))
        .send()
        .await
        .expect("delete");
    assert_eq!(response.status(), 204);
    let documents: Value =
        super::json_body(client.get(server.url("/v1/collections/handbook/documents"))).await;
    assert_eq!(
        documents["data"].as_array().map(Vec::len),
        Some(4),
        "{documents}"
    );

    // Bad input gets a clear error and changes nothing.
    let response = client
        .post(server.url("/v1/collections/handbook/search"))
        .json(&json!({"query": "x", "top_k": 0}))
        .send()
        .await
        .expect("search");
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.expect("json");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("top_k")
    );
    let response = client
        .post(server.url("/v1/collections/nope/search"))
        .json(&json!({"query": "x"}))
        .send()
        .await
        .expect("search");
    assert_eq!(response.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_and_search_in_the_embedded_mode() {
    ingest_and_search(&[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_and_search_with_postgres_and_pgvector() {
    let database = TestDatabase::create().await;
    ingest_and_search(&[("CAIRN__DATABASE__URL", &database.url)]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_over_the_limit_is_refused_and_nothing_is_lost() {
    let dir = tempfile::tempdir().expect("temp dir");
    let model = minilm();
    let server = Server::start(
        dir.path(),
        &[
            ("CAIRN__EMBEDDING__LOCAL", &model),
            ("CAIRN__INGEST__MAX_UPLOAD_BYTES", "100000"),
        ],
    );
    let client = reqwest::Client::new();
    let small = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(b"# Small\n\nA small document about glaciers.\n".to_vec())
            .file_name("small.md"),
    );
    let response = client
        .post(server.url("/v1/collections/kb/documents"))
        .multipart(small)
        .send()
        .await
        .expect("upload");
    assert_eq!(response.status(), 201);
    let big = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(vec![b'a'; 200_000]).file_name("big.txt"),
    );
    let response = client
        .post(server.url("/v1/collections/kb/documents"))
        .multipart(big)
        .send()
        .await
        .expect("upload");
    assert_eq!(response.status(), 413);
    let error: Value = response.json().await.expect("json");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("ingest.max_upload_bytes"),
        "{error}"
    );
    // The server closes a connection whose oversized body it did not read: ask on a new one.
    let hits: Value = super::json_body(
        reqwest::Client::new()
            .post(server.url("/v1/collections/kb/search"))
            .json(&json!({"query": "glaciers"})),
    )
    .await;
    assert_eq!(hits["data"][0]["source"], "upload:small.md", "{hits}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ingest_killed_with_sigkill_and_run_again_leaves_every_chunk_indexed_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let docs = dir.path().join("docs");
    std::fs::create_dir_all(&docs).expect("docs");
    let total = 400;
    for i in 0..total {
        std::fs::write(
            docs.join(format!("note-{i:03}.md")),
            format!(
                "# Note {i}\n\n## Summary\n\nNote {i} records observation {i} of the glacier survey: the ice moved {} metres.\n\n## Details\n\nThe team measured station {} twice and logged the weather as {}.\n",
                i * 3 % 17,
                i % 23,
                ["clear", "snow", "wind", "fog"][i % 4]
            ),
        )
        .expect("write note");
    }
    let model = minilm();
    let env = [("CAIRN__EMBEDDING__LOCAL", model.as_str())];
    let mut child = cairn(
        dir.path(),
        &["ingest", "docs", "--collection", "survey"],
        &env,
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("spawn ingest");

    // Kill it once some documents are in, well before the end.
    let catalog_path = dir.path().join(".cairn/catalog.db");
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen = 0;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().expect("wait") {
            panic!(
                "the ingest finished ({status}) before it could be killed; make the corpus larger"
            );
        }
        if catalog_path.is_file() {
            seen = documents_in(&catalog_path, "survey").await;
            if seen >= 20 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(seen >= 20, "the ingest made no progress in two minutes");
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    assert!(seen < total, "killed mid-way");

    let (ok, stdout, stderr) = run(
        dir.path(),
        &["ingest", "docs", "--collection", "survey"],
        &[],
    );
    assert!(ok, "{stdout}\n{stderr}");

    let catalog = cairn_sqlite::SqliteCatalog::open(&catalog_path)
        .await
        .expect("catalog");
    let collection = catalog
        .get_collection("survey")
        .await
        .expect("get")
        .expect("survey");
    assert_eq!(
        catalog
            .list_documents(collection.id)
            .await
            .expect("docs")
            .len(),
        total
    );
    let stored: Vec<Uuid> = catalog.chunk_ids(collection.id).await.expect("chunk ids");
    let index = cairn_qdrant::EdgeIndex::open(dir.path().join(".cairn/qdrant")).expect("index");
    let indexed: Vec<Uuid> = index.point_ids("survey").await.expect("point ids");
    let stored_set: BTreeSet<Uuid> = stored.iter().copied().collect();
    let indexed_set: BTreeSet<Uuid> = indexed.iter().copied().collect();
    assert_eq!(indexed.len(), indexed_set.len(), "no duplicate vector");
    assert_eq!(stored.len(), stored_set.len(), "no duplicate chunk");
    assert_eq!(stored_set, indexed_set, "no missing and no orphaned chunk");
    // Every document has its chunks: two sections and the title each.
    assert!(
        stored.len() >= total,
        "{} chunks for {total} documents",
        stored.len()
    );
    let (_, stdout, _) = run(
        dir.path(),
        &["ingest", "docs", "--collection", "survey"],
        &[],
    );
    assert!(
        stdout.contains(&format!("0 added, 0 updated, {total} unchanged")),
        "{stdout}"
    );
}

async fn documents_in(catalog_path: &Path, collection: &str) -> usize {
    let Ok(catalog) = cairn_sqlite::SqliteCatalog::open(catalog_path).await else {
        return 0;
    };
    let catalog: Arc<dyn Catalog> = Arc::new(catalog);
    match catalog.get_collection(collection).await {
        Ok(Some(c)) => catalog
            .list_documents(c.id)
            .await
            .map(|d| d.len())
            .unwrap_or(0),
        _ => 0,
    }
}

/// A RAG app called as a model: cited answer, the rendered prompt sent upstream, and a lineage
/// record naming the app, the prompt version (the built-in prompt, published at first start) and
/// the retrieved chunks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_answers_with_citations_and_records_its_prompt_version() {
    let upstream = cairn_testkit::ScriptedUpstream::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    write_handbook(&dir.path().join("docs"));
    let model = minilm();
    std::fs::write(
        dir.path().join("cairn.toml"),
        format!(
            "[embedding]\nlocal = \"{model}\"\n\
             [[models]]\nname = \"writer\"\nprovider = \"openai-compatible\"\nbase_url = \"{}\"\nmodel = \"good\"\n\
             [[apps]]\nname = \"handbook\"\ncollections = [\"handbook\"]\nroute = \"writer\"\ntop_k = 3\n",
            upstream.base_url()
        ),
    )
    .expect("config");
    let (ok, stdout, stderr) = run(
        dir.path(),
        &["ingest", "docs", "--collection", "handbook"],
        &[],
    );
    assert!(ok, "{stdout}\n{stderr}");
    let server = Server::start(dir.path(), &[]);
    let client = reqwest::Client::new();
    let question = "Where is the catalog kept when I use PostgreSQL?";
    let response = client
        .post(server.url("/v1/chat/completions"))
        .json(
            &json!({"model": "app:handbook", "messages": [{"role": "user", "content": question}]}),
        )
        .send()
        .await
        .expect("chat");
    assert_eq!(response.status(), 200);
    let lineage_id = response
        .headers()
        .get("x-cairn-lineage-id")
        .and_then(|v| v.to_str().ok())
        .expect("lineage header")
        .to_owned();
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["model"], "app:handbook");
    assert_eq!(body["choices"][0]["message"]["content"], "answer from good");
    let citations = body["citations"].as_array().expect("citations");
    assert!(!citations.is_empty(), "{body}");
    assert_eq!(citations[0]["index"], 1);
    assert!(
        citations[0]["source"]
            .as_str()
            .unwrap_or_default()
            .ends_with("database.md"),
        "{body}"
    );
    assert_eq!(
        body["cairn"]["prompt"],
        json!({"name": "rag_answer", "version": 1})
    );
    assert_eq!(body["cairn"]["lineage_id"], lineage_id.as_str());

    // The upstream got the registered prompt, rendered with the numbered passages.
    let sent = upstream
        .requests()
        .into_iter()
        .find(|seen| seen.path_and_query.ends_with("/chat/completions"))
        .expect("the upstream was called");
    let system = sent.body["messages"][0]["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(system.contains("Cite every claim"), "{system}");
    assert!(system.contains("[1] Database"), "{system}");
    assert_eq!(sent.body["messages"][1]["content"], question);

    let record = crate::web::lineage(&client, &server, &lineage_id).await;
    assert_eq!(record["app"], "handbook", "{record}");
    assert_eq!(record["prompt_name"], "rag_answer");
    assert_eq!(record["prompt_version"], 1);
    assert_eq!(record["route"], "writer");
    assert_eq!(record["status"], "ok");
    assert_eq!(
        record["retrieval"][0]["chunk_id"], citations[0]["chunk_id"],
        "{record}"
    );

    // Streaming: the citations come first, before any text.
    let response = client
        .post(server.url("/v1/chat/completions"))
        .json(&json!({"model": "app:handbook", "stream": true, "messages": [{"role": "user", "content": question}]}))
        .send()
        .await
        .expect("stream");
    assert_eq!(response.status(), 200);
    let text = response.text().await.expect("body");
    let first: Value = serde_json::from_str(
        text.lines()
            .find_map(|l| l.strip_prefix("data: "))
            .expect("an event"),
    )
    .expect("json event");
    assert!(
        first["citations"].as_array().is_some_and(|c| !c.is_empty()),
        "{first}"
    );

    let response = client
        .post(server.url("/v1/chat/completions"))
        .json(&json!({"model": "app:nope", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .expect("chat");
    assert_eq!(response.status(), 404);
    let error: Value = response.json().await.expect("json");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("app:handbook"),
        "{error}"
    );
}
