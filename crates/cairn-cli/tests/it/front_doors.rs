//! The three front doors share one answer pipeline: on the real binary, a rate limit counted by a
//! `/v1/chat/completions` call refuses the web UI and MCP `answer_question` (the official MCP
//! Python SDK) too; the answer cache answers all three alike; and each writes the same lineage.

use std::path::Path;

use serde_json::{Value, json};

use crate::rag::{run, write_handbook};
use crate::web::lineage;
use crate::{Server, run_python_tests};

const QUESTION: &str = "Where is the catalog kept when I use PostgreSQL?";

/// Asks `app` over MCP; returns (whether the tool call failed, the structured answer, its text).
async fn ask_mcp(server: &Server, key: &str, app: &str) -> (bool, Value, String) {
    let env = vec![
        ("CAIRN_MCP_URL".to_owned(), server.url("/mcp")),
        ("CAIRN_KEY".to_owned(), key.to_owned()),
        ("CAIRN_APP".to_owned(), app.to_owned()),
        ("CAIRN_QUESTION".to_owned(), QUESTION.to_owned()),
    ];
    let (ran, report) = run_python_tests("mcp/answer_once.py", env).await;
    assert!(ran, "the MCP client failed:\n{report}");
    let line = report
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("no result from the MCP client:\n{report}"));
    let result: Value = serde_json::from_str(line).expect("result JSON");
    (
        result["is_error"].as_bool().expect("is_error"),
        result["structured"].clone(),
        result["text"].to_string(),
    )
}

/// Asks `app` in a new web UI conversation; returns the HTTP status and the events or error body.
async fn ask_web(
    client: &reqwest::Client,
    server: &Server,
    app: &str,
) -> (u16, Vec<(String, Value)>, Value) {
    ask_web_with(client, server, app, QUESTION).await
}

/// Asks `app` (or `agent:NAME`) `question` in a new web UI conversation.
pub(crate) async fn ask_web_with(
    client: &reqwest::Client,
    server: &Server,
    app: &str,
    question: &str,
) -> (u16, Vec<(String, Value)>, Value) {
    let conversation: Value = crate::json_body(
        client
            .post(server.url("/v1/conversations"))
            .json(&json!({})),
    )
    .await;
    let id = conversation["id"].as_str().expect("id");
    let response = client
        .post(server.url(&format!("/v1/conversations/{id}/messages")))
        .json(&json!({"app": app, "content": question}))
        .send()
        .await
        .expect("ask");
    let status = response.status().as_u16();
    if status != 200 {
        return (
            status,
            Vec::new(),
            response.json().await.expect("error JSON"),
        );
    }
    let text = response.text().await.expect("stream");
    (status, crate::web::parse_events(&text), Value::Null)
}

async fn ask_api(client: &reqwest::Client, server: &Server, app: &str) -> reqwest::Response {
    client
        .post(server.url("/v1/chat/completions"))
        .json(&json!({"model": format!("app:{app}"), "messages": [{"role": "user", "content": QUESTION}]}))
        .send()
        .await
        .expect("chat")
}

fn setup(dir: &Path, base_url: &str) -> String {
    write_handbook(&dir.join("docs"));
    std::fs::write(
        dir.join("cairn.toml"),
        format!(
            "[[models]]\nname = \"writer\"\nprovider = \"openai-compatible\"\nbase_url = \"{base_url}\"\nmodel = \"good\"\n\
             [[apps]]\nname = \"limited\"\ncollections = [\"handbook\"]\nroute = \"writer\"\ntop_k = 3\n\
             [[apps]]\nname = \"cached\"\ncollections = [\"handbook\"]\nroute = \"writer\"\ntop_k = 2\n\
             [[limits]]\nroute = \"app:limited\"\nrequests_per_minute = 1\n\
             [cache]\nttl_secs = 600\n"
        ),
    )
    .expect("config");
    let (ok, stdout, stderr) = run(dir, &["ingest", "docs", "--collection", "handbook"], &[]);
    assert!(ok, "{stdout}\n{stderr}");
    let (ok, stdout, stderr) = run(
        dir,
        &[
            "key",
            "create",
            "--name",
            "ide",
            "--collections",
            "handbook",
        ],
        &[],
    );
    assert!(ok, "{stderr}");
    stdout.trim().to_owned()
}

/// Waits for the next clock minute when less than half of this one is left: the limiter's windows
/// are clock minutes, and the limited calls must all fall in one.
async fn align_to_a_fresh_minute() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970");
    let into_minute = now.as_millis() % 60_000;
    if into_minute > 30_000 {
        let left = u64::try_from(60_000 - into_minute).expect("under a minute");
        tokio::time::sleep(std::time::Duration::from_millis(left + 200)).await;
    }
}

/// The lineage fields that say how an answer was produced, which every door must write alike.
fn how(record: &Value) -> Value {
    let chunks: Vec<&Value> = record["retrieval"]
        .as_array()
        .expect("retrieval")
        .iter()
        .map(|r| &r["chunk_id"])
        .collect();
    json!({"app": record["app"], "prompt_name": record["prompt_name"],
           "prompt_version": record["prompt_version"], "model": record["model"],
           "route": record["route"], "chunks": chunks, "guard_verdicts": record["guard_verdicts"]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_api_the_web_ui_and_mcp_share_limits_cache_and_lineage() {
    let upstream = cairn_testkit::ScriptedUpstream::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let key = setup(dir.path(), &upstream.base_url());
    let model = cairn_testkit::test_model("minilm").display().to_string();
    let server = Server::start(dir.path(), &[("CAIRN__EMBEDDING__LOCAL", &model)]);
    let client = reqwest::Client::new();

    // One request per minute on `app:limited`, whichever door it comes in by. Limits count in fixed
    // clock minutes: start the three calls (a few seconds) early in a minute, so that they share one.
    align_to_a_fresh_minute().await;
    let response = ask_api(&client, &server, "limited").await;
    assert_eq!(
        response.status(),
        200,
        "{}",
        response.text().await.unwrap_or_default()
    );
    let (status, _, body) = ask_web(&client, &server, "limited").await;
    assert_eq!(status, 429, "the web UI was not limited: {body}");
    assert_eq!(body["error"]["code"], "rate_limit_exceeded", "{body}");
    let (failed, _, text) = ask_mcp(&server, &key, "limited").await;
    assert!(
        failed && text.contains("rate limit reached"),
        "MCP was not limited: {text}"
    );

    // The cache answers all three alike: one model call, then two cached answers. (`cached` retrieves
    // fewer passages than `limited`, so its prompt, and so its cache key, differ.)
    let calls = || upstream.chat_calls();
    let before = calls();
    let response = ask_api(&client, &server, "cached").await;
    assert_eq!(response.headers()["x-cairn-cache"], "miss");
    let api: Value = response.json().await.expect("json");
    let api_answer = api["choices"][0]["message"]["content"].clone();
    let api_lineage = api["cairn"]["lineage_id"]
        .as_str()
        .expect("lineage")
        .to_owned();

    let (status, events, body) = ask_web(&client, &server, "cached").await;
    assert_eq!(status, 200, "{body}");
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["start", "delta", "done"], "{events:?}");
    assert_eq!(
        events[1].1["text"], api_answer,
        "the web UI got another answer"
    );
    let web_lineage = events[2].1["lineage_id"]
        .as_str()
        .expect("lineage")
        .to_owned();

    let (failed, mcp, text) = ask_mcp(&server, &key, "cached").await;
    assert!(!failed, "{text}");
    assert_eq!(mcp["answer"], api_answer, "MCP got another answer");
    let mcp_lineage = mcp["lineage_id"].as_str().expect("lineage").to_owned();
    assert_eq!(
        calls() - before,
        1,
        "the cache did not answer the web UI and MCP"
    );

    let api_record = lineage(&client, &server, &api_lineage).await;
    let web_record = lineage(&client, &server, &web_lineage).await;
    let mcp_record = lineage(&client, &server, &mcp_lineage).await;
    assert_eq!(
        [
            &api_record["status"],
            &web_record["status"],
            &mcp_record["status"]
        ],
        ["ok", "cached", "cached"]
    );
    assert_eq!(how(&api_record), how(&web_record));
    assert_eq!(how(&api_record), how(&mcp_record));
    assert_eq!(api_record["app"], "cached");
    assert_eq!(api_record["prompt_name"], "rag_answer");
    assert!(
        !how(&api_record)["chunks"]
            .as_array()
            .expect("chunks")
            .is_empty()
    );
}
