//! Continuous evaluation of changes made over the API: an upload into a watched collection and a
//! label move of a watched prompt each run the attached suite in the background, stored and
//! compared with the previous run, while the request that made the change returns at once.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::Server;
use crate::eval::setup;
use crate::rag::minilm;

/// The suite's stored runs, once there are at least `count`.
async fn runs(client: &reqwest::Client, server: &Server, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let body: Value =
            crate::json_body(client.get(server.url("/v1/evals/runs?suite=watch"))).await;
        let runs = body["data"].as_array().cloned().unwrap_or_default();
        if runs.len() >= count {
            return runs;
        }
        assert!(
            Instant::now() < deadline,
            "{count} run(s) of the watched suite never appeared: {body}\n{}",
            server.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_and_label_moves_over_the_api_rerun_the_attached_suite() {
    let upstream = cairn_testkit::ScriptedUpstream::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().to_owned();
    let base_url = upstream.base_url();
    tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(path.join("evals")).expect("evals dir");
        // The gate suite's cases, watched: faithful answers hold its gate.
        let suite = crate::promotion::GATE_SUITE.replace("name: gate", "name: watch");
        std::fs::write(path.join("evals/watch.yaml"), suite).expect("suite");
        setup(
            &path,
            &base_url,
            "[[evals.continuous]]\nsuite = \"evals/watch.yaml\"\nprompts = [\"rag_answer\"]\ncollections = [\"handbook\"]\n",
        );
    })
    .await
    .expect("setup");
    let model = minilm();
    let server = Server::start(dir.path(), &[("CAIRN__EMBEDDING__LOCAL", &model)]);
    let client = reqwest::Client::new();

    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(b"# Backups\n\nBackups run nightly.\n".to_vec())
            .file_name("backups.md"),
    );
    let uploaded = client
        .post(server.url("/v1/collections/handbook/documents"))
        .multipart(form)
        .send()
        .await
        .expect("upload");
    assert_eq!(uploaded.status(), 201);
    let first = runs(&client, &server, 1).await;
    assert_eq!(first[0]["suite"], "watch", "{first:?}");

    let moved = client
        .put(server.url("/v1/prompts/rag_answer/labels/staging"))
        .json(&json!({"version": 1, "reason": "try it"}))
        .send()
        .await
        .expect("label");
    assert_eq!(moved.status(), 200);
    let second = runs(&client, &server, 2).await;
    assert_ne!(second[0]["id"], second[1]["id"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let holds = "continuous eval: suite `watch` on app:docs holds";
    while server.logs().matches(holds).count() < 2 {
        assert!(Instant::now() < deadline, "{}", server.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
