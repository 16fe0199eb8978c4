//! Online evaluation on a real `cairn serve`: every answer of the `docs` app is judged off the
//! request path (sample 1.0) by the scripted judge; the scores land on the answer's lineage record
//! and in `/metrics`, for a streamed answer as for a whole one, and answers of another app are left
//! alone. A config naming an app that does not exist is refused at startup with the fix.

use std::time::Duration;

use serde_json::{Value, json};

use crate::Server;
use crate::rag::{run, write_handbook};

/// The answer's lineage record once its online scores are in.
async fn scored(client: &reqwest::Client, server: &Server, id: &str, metrics: usize) -> Value {
    crate::web::lineage_where(client, server, id, |record| {
        record["scores"].as_array().map_or(0, Vec::len) >= metrics
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_answers_are_judged_off_the_request_path() {
    let upstream = cairn_testkit::ScriptedUpstream::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    write_handbook(&dir.path().join("docs"));
    let base_url = upstream.base_url();
    let config = format!(
        "[[models]]\nname = \"writer\"\nprovider = \"openai-compatible\"\nbase_url = \"{base_url}\"\nmodel = \"echo\"\n\
         [[models]]\nname = \"judge\"\nprovider = \"openai-compatible\"\nbase_url = \"{base_url}\"\nmodel = \"judge\"\n\
         [[apps]]\nname = \"docs\"\ncollections = [\"handbook\"]\nroute = \"writer\"\ntop_k = 8\n\
         [[apps]]\nname = \"other\"\ncollections = [\"handbook\"]\nroute = \"writer\"\ntop_k = 8\n\
         [[evals.online]]\napp = \"docs\"\nsample = 1.0\njudge = \"judge\"\n"
    );
    std::fs::write(dir.path().join("cairn.toml"), &config).expect("config");
    let (ok, stdout, stderr) = run(
        dir.path(),
        &["ingest", "docs", "--collection", "handbook"],
        &[],
    );
    assert!(ok, "{stdout}\n{stderr}");
    let model = cairn_testkit::test_model("minilm").display().to_string();
    let server = Server::start(dir.path(), &[("CAIRN__EMBEDDING__LOCAL", &model)]);
    let client = reqwest::Client::new();

    let ask = |app: &str, question: &str, stream: bool| {
        client
            .post(server.url("/v1/chat/completions"))
            .json(&json!({"model": format!("app:{app}"), "stream": stream,
                          "messages": [{"role": "user", "content": question}]}))
            .send()
    };
    // The echo model answers with the question: the first is in the handbook, the second is not.
    let faithful = ask(
        "docs",
        "Without a URL, the catalog is an SQLite file under the data directory.",
        false,
    )
    .await
    .expect("answer");
    assert_eq!(faithful.status(), 200);
    let faithful_id = faithful.headers()["x-cairn-lineage-id"]
        .to_str()
        .expect("id")
        .to_owned();
    let made_up = ask("docs", "Cairn runs on the moon.", true)
        .await
        .expect("answer");
    assert_eq!(made_up.status(), 200);
    let made_up_id = made_up.headers()["x-cairn-lineage-id"]
        .to_str()
        .expect("id")
        .to_owned();
    let _ = made_up.text().await.expect("the stream to its end");
    let other = ask("other", "Cairn runs on the moon.", false)
        .await
        .expect("answer");
    let other_id = other.headers()["x-cairn-lineage-id"]
        .to_str()
        .expect("id")
        .to_owned();

    let record = scored(&client, &server, &faithful_id, 2).await;
    // The answer's prompt version links to the label move that made it live (the seeding at start).
    assert_eq!(record["label_move"]["label"], "production", "{record}");
    assert_eq!(
        record["label_move"]["to_version"], record["prompt_version"],
        "{record}"
    );
    let score = |record: &Value, metric: &str| {
        record["scores"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["metric"] == metric))
            .map(|s| (s["score"].as_f64(), s["judge"].as_str().map(str::to_owned)))
    };
    assert_eq!(
        score(&record, "faithfulness"),
        Some((Some(1.0), Some("judge".into()))),
        "{record}"
    );
    assert_eq!(
        score(&record, "answer_relevance").and_then(|s| s.0),
        Some(1.0),
        "{record}"
    );
    let record = scored(&client, &server, &made_up_id, 2).await;
    assert_eq!(
        score(&record, "faithfulness").and_then(|s| s.0),
        Some(0.0),
        "the streamed answer too: {record}"
    );
    assert!(
        record["scores"][1]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("Cairn runs on the moon")),
        "{record}"
    );

    let metrics = super::metrics_text(&server).await;
    assert!(
        metrics.contains("cairn_eval_online_score_count{app=\"docs\",metric=\"faithfulness\"} 2"),
        "{metrics}"
    );
    // The other app is not evaluated online.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let record = crate::web::lineage(&client, &server, &other_id).await;
    assert_eq!(record["scores"], json!([]), "{record}");
    drop(server);

    std::fs::write(
        dir.path().join("cairn.toml"),
        config.replace("app = \"docs\"\nsample", "app = \"nope\"\nsample"),
    )
    .expect("config");
    let (ok, _, stderr) = run(dir.path(), &["serve", "--check"], &[]);
    assert!(!ok, "a rule naming no app is refused");
    assert!(
        stderr.contains("evals.online[0].app") && stderr.contains("docs, other"),
        "{stderr}"
    );
}
