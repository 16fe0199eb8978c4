//! `cairn dataset from-lineage`: answers given in the web UI, filtered by app, feedback and guard
//! verdicts, become a JSONL dataset the eval harness reads.

use cairn_core::catalog::*;
use cairn_sqlite::SqliteCatalog;
use serde_json::{Value, json};

use crate::run_cairn;

/// A question and its answer in `conversation`, answered by `app`, with optional feedback.
async fn exchange(
    catalog: &SqliteCatalog,
    conversation: uuid::Uuid,
    app: &str,
    question: &str,
    answer: &str,
    rating: Option<i16>,
    verdict: &str,
) -> uuid::Uuid {
    let id = uuid::Uuid::now_v7();
    catalog
        .append_message(NewMessage {
            conversation_id: conversation,
            role: "user".into(),
            content: question.into(),
            lineage_id: None,
        })
        .await
        .expect("question");
    catalog
        .record_lineage(LineageRecord {
            id,
            conversation_id: Some(conversation),
            app: Some(app.into()),
            prompt_name: Some("rag_answer".into()),
            prompt_version: Some(1),
            model: "local".into(),
            route: Some("local".into()),
            retrieval: json!([]),
            guard_verdicts: json!([{"guard": "pii", "stage": "input", "action": verdict}]),
            steps: json!([]),
            usage: cairn_core::model::Usage::default(),
            cost_usd: 0.0,
            latency_ms: 10,
            status: "ok".into(),
            error: None,
            created_at: chrono::Utc::now(),
        })
        .await
        .expect("lineage");
    catalog
        .append_message(NewMessage {
            conversation_id: conversation,
            role: "assistant".into(),
            content: answer.into(),
            lineage_id: Some(id),
        })
        .await
        .expect("answer");
    if let Some(rating) = rating {
        catalog
            .record_feedback(NewFeedback {
                lineage_id: id,
                rating,
                comment: (rating < 0).then(|| "wrong port".to_owned()),
                user: "local".into(),
            })
            .await
            .expect("feedback");
    }
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_answers_become_dataset_cases() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (ok, _, stderr) = run_cairn(dir.path(), &["migrate"]);
    assert!(ok, "{stderr}");
    let catalog = SqliteCatalog::open(&dir.path().join(".cairn/catalog.db"))
        .await
        .expect("open");
    let conversation = catalog
        .create_conversation("local", "ports")
        .await
        .expect("conversation");
    let bad = exchange(
        &catalog,
        conversation.id,
        "docs",
        "Which port does Cairn use? Mail me at <EMAIL_1>.",
        "Port 9090.",
        Some(-1),
        "redact",
    )
    .await;
    exchange(
        &catalog,
        conversation.id,
        "docs",
        "What is Cairn?",
        "A platform.",
        Some(1),
        "allow",
    )
    .await;
    exchange(
        &catalog,
        conversation.id,
        "chat",
        "Hello?",
        "Hi.",
        Some(-1),
        "allow",
    )
    .await;
    catalog.close().await;

    let out = dir.path().join("cases.jsonl");
    let out_arg = out.display().to_string();
    let (ok, _, stderr) = run_cairn(
        dir.path(),
        &[
            "dataset",
            "from-lineage",
            "--app",
            "docs",
            "--feedback",
            "down",
            "--since",
            "1h",
            "--with-answers",
            "--out",
            &out_arg,
        ],
    );
    assert!(ok && stderr.contains("wrote 1 case(s)"), "{stderr}");
    let text = std::fs::read_to_string(&out).expect("cases");
    let case: Value = serde_json::from_str(text.trim()).expect("one JSON line");
    assert_eq!(
        case["question"],
        "Which port does Cairn use? Mail me at <EMAIL_1>."
    );
    assert_eq!(case["response"], "Port 9090.");
    assert_eq!(case["variables"]["feedback_comments"], "wrong port");
    let tags: Vec<&str> = case["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for tag in [
        format!("lineage:{bad}").as_str(),
        "app:docs",
        "feedback:down",
        "guarded",
    ] {
        assert!(tags.contains(&tag), "{tag} in {tags:?}");
    }
    // The harness reads it as a dataset, the given answer included.
    let cases = cairn_eval::dataset::read_jsonl(&out).expect("a dataset");
    assert_eq!(cases.len(), 1);
    assert_eq!(
        cases[0].given.as_ref().map(|g| g.response.as_str()),
        Some("Port 9090.")
    );

    let (ok, _, stderr) = run_cairn(
        dir.path(),
        &["dataset", "from-lineage", "--flagged", "--out", &out_arg],
    );
    assert!(ok && stderr.contains("wrote 1 case(s)"), "{stderr}");
    let (ok, _, stderr) = run_cairn(
        dir.path(),
        &[
            "dataset",
            "from-lineage",
            "--feedback",
            "any",
            "--out",
            &out_arg,
        ],
    );
    assert!(ok && stderr.contains("wrote 3 case(s)"), "{stderr}");
}
