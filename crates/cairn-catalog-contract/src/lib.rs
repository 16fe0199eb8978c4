//! The contract every catalog backend must honour, as one suite of async checks.
//!
//! Each backend's integration tests expand [`catalog_contract_tests!`] with a function that returns a
//! fresh, migrated, empty catalog (and a guard that removes it afterwards). The checks use only the
//! `cairn-core` traits, so SQLite and PostgreSQL are held to exactly the same behaviour.

use std::collections::BTreeSet;
use std::sync::Arc;

use cairn_core::catalog::*;
use cairn_core::model::Usage;
use chrono::{SubsecRound, Utc};
use serde_json::json;
use uuid::Uuid;

/// Expands to one `#[tokio::test]` per contract check. `$setup` is an async fn returning
/// `(Arc<dyn Catalog>, G)`, where `G` cleans up when dropped.
#[macro_export]
macro_rules! catalog_contract_tests {
    ($setup:path) => {
        $crate::catalog_contract_tests!(@each $setup;
            ping, collections, collection_binding, documents, chunks, document_sync, prompt_versions, concurrent_publishes,
            prompt_labels, conversations, lineage_and_feedback, eval_runs, api_keys, usage_windows, shadow_results);
    };
    (@each $setup:path; $($check:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let (catalog, _guard) = $setup().await;
                $crate::$check(catalog).await;
            }
        )*
    };
}

fn assert_not_found<T: std::fmt::Debug>(result: CatalogResult<T>, what: &str) {
    match result {
        Err(CatalogError::NotFound { .. }) => {}
        other => panic!("{what}: expected NotFound, got {other:?}"),
    }
}

fn assert_conflict<T: std::fmt::Debug>(result: CatalogResult<T>, what: &str) -> String {
    match result {
        Err(CatalogError::Conflict(message)) => message,
        other => panic!("{what}: expected Conflict, got {other:?}"),
    }
}

pub async fn ping(catalog: Arc<dyn Catalog>) {
    catalog.ping().await.expect("ping");
    assert!(["sqlite", "postgres"].contains(&catalog.backend()));
}

async fn new_collection(catalog: &dyn Catalog, name: &str) -> Collection {
    catalog
        .create_collection(NewCollection {
            name: name.into(),
            description: format!("{name} docs"),
            ..Default::default()
        })
        .await
        .expect("create collection")
}

pub async fn collections(catalog: Arc<dyn Catalog>) {
    let b = new_collection(&*catalog, "handbook").await;
    let a = new_collection(&*catalog, "api-docs").await;
    assert_eq!(
        catalog.get_collection("handbook").await.expect("get"),
        Some(b.clone())
    );
    let names: Vec<String> = catalog
        .list_collections()
        .await
        .expect("list")
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["api-docs", "handbook"]);

    let message = assert_conflict(
        catalog
            .create_collection(NewCollection {
                name: "handbook".into(),
                ..Default::default()
            })
            .await,
        "duplicate collection",
    );
    assert!(message.contains("handbook"), "{message}");
    assert!(matches!(
        catalog
            .create_collection(NewCollection {
                name: "Bad Name".into(),
                ..Default::default()
            })
            .await,
        Err(CatalogError::Invalid(_))
    ));

    assert!(catalog.delete_collection(&a.name).await.expect("delete"));
    assert!(
        !catalog
            .delete_collection(&a.name)
            .await
            .expect("delete again")
    );
    assert_eq!(
        catalog.get_collection(&a.name).await.expect("get deleted"),
        None
    );
    assert_eq!(catalog.list_collections().await.expect("list").len(), 1);
}

pub async fn collection_binding(catalog: Arc<dyn Catalog>) {
    new_collection(&*catalog, "kb").await;
    let bound = catalog
        .bind_embedding_model("kb", "all-minilm-l6-v2", 384)
        .await
        .expect("bind");
    assert_eq!(
        (bound.embedding_model.as_deref(), bound.embedding_dimension),
        (Some("all-minilm-l6-v2"), Some(384))
    );
    catalog
        .bind_embedding_model("kb", "all-minilm-l6-v2", 384)
        .await
        .expect("binding again to the same model");
    let message = assert_conflict(
        catalog
            .bind_embedding_model("kb", "text-embedding-3-small", 1536)
            .await,
        "rebinding",
    );
    assert!(message.contains("reindex"), "{message}");
    let stored = catalog
        .get_collection("kb")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(
        stored.embedding_model.as_deref(),
        Some("all-minilm-l6-v2"),
        "a refused rebind changes nothing"
    );
    assert_not_found(
        catalog.bind_embedding_model("missing", "m", 3).await,
        "binding a missing collection",
    );
}

fn new_document(collection_id: Uuid, source: &str, hash: &str) -> NewDocument {
    NewDocument {
        collection_id,
        source: source.into(),
        title: format!("Title of {source}"),
        content_hash: hash.into(),
        metadata: json!({"lang": "en"}),
    }
}

pub async fn documents(catalog: Arc<dyn Catalog>) {
    let kb = new_collection(&*catalog, "kb").await;
    let (doc, outcome) = catalog
        .upsert_document(new_document(kb.id, "guide.md", "h1"))
        .await
        .expect("add");
    assert_eq!((outcome, doc.version), (UpsertOutcome::Added, 1));
    let (same, outcome) = catalog
        .upsert_document(new_document(kb.id, "guide.md", "h1"))
        .await
        .expect("again");
    assert_eq!(
        (outcome, same.id, same.version),
        (UpsertOutcome::Unchanged, doc.id, 1)
    );
    let (changed, outcome) = catalog
        .upsert_document(new_document(kb.id, "guide.md", "h2"))
        .await
        .expect("change");
    assert_eq!(
        (outcome, changed.id, changed.version),
        (UpsertOutcome::Updated, doc.id, 2)
    );
    assert_eq!(changed.content_hash, "h2");
    assert_eq!(changed.metadata, json!({"lang": "en"}));

    catalog
        .upsert_document(new_document(kb.id, "faq.md", "h3"))
        .await
        .expect("second document");
    let sources: Vec<String> = catalog
        .list_documents(kb.id)
        .await
        .expect("list")
        .into_iter()
        .map(|d| d.source)
        .collect();
    assert_eq!(sources, ["faq.md", "guide.md"]);
    assert_eq!(
        catalog
            .get_document(doc.id)
            .await
            .expect("get")
            .map(|d| d.version),
        Some(2)
    );

    assert_not_found(
        catalog
            .upsert_document(new_document(Uuid::now_v7(), "x.md", "h"))
            .await,
        "a document in a missing collection",
    );
    assert!(catalog.delete_document(doc.id).await.expect("delete"));
    assert!(!catalog.delete_document(doc.id).await.expect("delete again"));
    assert!(
        catalog
            .delete_collection("kb")
            .await
            .expect("delete collection")
    );
    assert!(
        catalog
            .list_documents(kb.id)
            .await
            .expect("list after delete")
            .is_empty(),
        "documents cascade"
    );
}

fn new_chunk(index: u32, text: &str) -> NewChunk {
    NewChunk {
        chunk_index: index,
        content: text.into(),
        content_hash: format!("hash-{text}"),
        char_start: u64::from(index) * 100,
        char_end: u64::from(index) * 100 + text.len() as u64,
        heading_path: vec!["Guide".into(), format!("Section {index}")],
        token_count: 7,
        metadata: json!({"page": index}),
    }
}

pub async fn chunks(catalog: Arc<dyn Catalog>) {
    let kb = new_collection(&*catalog, "kb").await;
    let (doc, _) = catalog
        .upsert_document(new_document(kb.id, "guide.md", "h1"))
        .await
        .expect("doc");
    let first = catalog
        .replace_chunks(
            doc.id,
            vec![
                new_chunk(0, "alpha"),
                new_chunk(1, "beta"),
                new_chunk(2, "gamma"),
            ],
        )
        .await
        .expect("first chunks");
    assert_eq!(
        (first.kept.len(), first.added.len(), first.removed.len()),
        (0, 3, 0)
    );
    let stored = catalog.list_chunks(doc.id).await.expect("list");
    assert_eq!(
        stored, first.added,
        "stored chunks equal what was returned, in order"
    );

    // Insert a chunk at the front and change the last one: alpha and beta move but keep their ids.
    let second = catalog
        .replace_chunks(
            doc.id,
            vec![
                new_chunk(0, "intro"),
                new_chunk(1, "alpha"),
                new_chunk(2, "beta"),
                new_chunk(3, "delta"),
            ],
        )
        .await
        .expect("second chunks");
    let kept_ids: BTreeSet<Uuid> = second.kept.iter().map(|c| c.id).collect();
    let expected_kept: BTreeSet<Uuid> = first.added[..2].iter().map(|c| c.id).collect();
    assert_eq!(kept_ids, expected_kept);
    assert_eq!(
        second
            .added
            .iter()
            .map(|c| c.content.as_str())
            .collect::<Vec<_>>(),
        ["intro", "delta"]
    );
    assert_eq!(second.removed, vec![first.added[2].id]);
    let stored = catalog.list_chunks(doc.id).await.expect("list");
    let texts: Vec<&str> = stored.iter().map(|c| c.content.as_str()).collect();
    assert_eq!(texts, ["intro", "alpha", "beta", "delta"]);
    assert_eq!(
        stored[1].char_start, 100,
        "a kept chunk takes its new offsets"
    );
    assert_eq!(stored[1].heading_path, ["Guide", "Section 1"]);

    let wanted = [stored[3].id, stored[0].id, Uuid::now_v7()];
    let fetched = catalog.get_chunks(&wanted).await.expect("get chunks");
    assert_eq!(
        fetched
            .iter()
            .map(|c| c.content.as_str())
            .collect::<Vec<_>>(),
        ["intro", "delta"]
    );
    assert!(catalog.get_chunks(&[]).await.expect("no ids").is_empty());

    assert_not_found(
        catalog
            .replace_chunks(Uuid::now_v7(), vec![new_chunk(0, "x")])
            .await,
        "chunks of a missing document",
    );
    catalog
        .delete_document(doc.id)
        .await
        .expect("delete document");
    assert!(
        catalog.list_chunks(doc.id).await.expect("list").is_empty(),
        "chunks cascade"
    );
}

pub async fn document_sync(catalog: Arc<dyn Catalog>) {
    let kb = new_collection(&*catalog, "kb").await;
    let other = new_collection(&*catalog, "other").await;
    let first = catalog
        .sync_document(
            new_document(kb.id, "guide.md", "h1"),
            vec![new_chunk(0, "alpha"), new_chunk(1, "beta")],
        )
        .await
        .expect("first sync");
    assert_eq!(first.outcome, UpsertOutcome::Added);
    assert_eq!(first.document.version, 1);
    assert_eq!(first.diff.added.len(), 2);

    let second = catalog
        .sync_document(
            new_document(kb.id, "guide.md", "h2"),
            vec![new_chunk(0, "alpha"), new_chunk(1, "gamma")],
        )
        .await
        .expect("second sync");
    assert_eq!(second.outcome, UpsertOutcome::Updated);
    assert_eq!(second.document.id, first.document.id);
    assert_eq!(second.document.version, 2);
    assert_eq!(second.diff.kept.len(), 1);
    assert_eq!(second.diff.added[0].content, "gamma");
    assert_eq!(second.diff.removed, vec![first.diff.added[1].id]);

    let faq = catalog
        .sync_document(
            new_document(kb.id, "faq.md", "h3"),
            vec![new_chunk(0, "delta")],
        )
        .await
        .expect("faq");
    catalog
        .sync_document(
            new_document(other.id, "guide.md", "h1"),
            vec![new_chunk(0, "elsewhere")],
        )
        .await
        .expect("other collection");
    let ids: BTreeSet<Uuid> = catalog
        .chunk_ids(kb.id)
        .await
        .expect("chunk ids")
        .into_iter()
        .collect();
    let expected: BTreeSet<Uuid> = catalog
        .list_chunks(first.document.id)
        .await
        .expect("list")
        .iter()
        .chain(&faq.diff.added)
        .map(|c| c.id)
        .collect();
    assert_eq!(ids, expected, "chunk ids of this collection only");
    assert_not_found(
        catalog
            .sync_document(new_document(Uuid::now_v7(), "x.md", "h"), vec![])
            .await,
        "a document in a missing collection",
    );
}

fn new_prompt(name: &str, template: &str) -> NewPromptVersion {
    NewPromptVersion {
        name: name.into(),
        template: template.into(),
        spec: json!({"variables": {"question": {"type": "string"}}}),
        content_hash: format!("sha-{template}"),
        author: "ada".into(),
        message: format!("publish {template}"),
    }
}

pub async fn prompt_versions(catalog: Arc<dyn Catalog>) {
    let v1 = catalog
        .publish_prompt_version(new_prompt("rag_answer", "one"))
        .await
        .expect("v1");
    assert!(v1.created);
    assert_eq!(v1.version.version, 1);
    let again = catalog
        .publish_prompt_version(new_prompt("rag_answer", "one"))
        .await
        .expect("same content");
    assert!(!again.created, "publishing unchanged content is a no-op");
    assert_eq!(again.version, v1.version);
    let v2 = catalog
        .publish_prompt_version(new_prompt("rag_answer", "two"))
        .await
        .expect("v2");
    assert_eq!((v2.created, v2.version.version), (true, 2));
    // Going back to old content is a new version: history only grows.
    let v3 = catalog
        .publish_prompt_version(new_prompt("rag_answer", "one"))
        .await
        .expect("v3");
    assert_eq!(v3.version.version, 3);

    assert_eq!(
        catalog
            .get_prompt_version("rag_answer", 2)
            .await
            .expect("get"),
        Some(v2.version.clone())
    );
    assert_eq!(
        catalog
            .get_prompt_version("rag_answer", 9)
            .await
            .expect("get missing"),
        None
    );
    assert_eq!(
        catalog
            .latest_prompt_version("rag_answer")
            .await
            .expect("latest"),
        Some(v3.version)
    );
    assert_eq!(
        catalog
            .latest_prompt_version("nope")
            .await
            .expect("latest of missing"),
        None
    );
    let versions: Vec<i64> = catalog
        .list_prompt_versions("rag_answer")
        .await
        .expect("list")
        .into_iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(versions, [1, 2, 3]);
    assert_eq!(
        v2.version.spec,
        json!({"variables": {"question": {"type": "string"}}})
    );

    catalog
        .publish_prompt_version(new_prompt("query_rewrite", "q"))
        .await
        .expect("other prompt");
    let summaries = catalog.list_prompts().await.expect("list prompts");
    let summary: Vec<(String, i64)> = summaries
        .into_iter()
        .map(|s| (s.name, s.latest_version))
        .collect();
    assert_eq!(
        summary,
        [
            ("query_rewrite".to_owned(), 1),
            ("rag_answer".to_owned(), 3)
        ]
    );
    assert!(matches!(
        catalog
            .publish_prompt_version(new_prompt("Bad Name", "x"))
            .await,
        Err(CatalogError::Invalid(_))
    ));
}

pub async fn concurrent_publishes(catalog: Arc<dyn Catalog>) {
    let n_writers = 8;
    let tasks: Vec<_> = (0..n_writers)
        .map(|i| {
            let catalog = catalog.clone();
            tokio::spawn(async move {
                catalog
                    .publish_prompt_version(new_prompt("busy", &format!("t{i}")))
                    .await
            })
        })
        .collect();
    let mut versions = Vec::new();
    for task in tasks {
        let outcome = task.await.expect("join").expect("publish");
        assert!(outcome.created);
        versions.push(outcome.version.version);
    }
    versions.sort();
    assert_eq!(
        versions,
        (1..=n_writers).collect::<Vec<i64>>(),
        "versions form a gap-free sequence"
    );
}

fn set_label(label: &str, version: i64, reason: &str) -> SetLabel {
    SetLabel {
        name: "rag_answer".into(),
        label: label.into(),
        version,
        actor: "grace".into(),
        reason: reason.into(),
    }
}

pub async fn prompt_labels(catalog: Arc<dyn Catalog>) {
    catalog
        .publish_prompt_version(new_prompt("rag_answer", "one"))
        .await
        .expect("v1");
    catalog
        .publish_prompt_version(new_prompt("rag_answer", "two"))
        .await
        .expect("v2");

    assert_not_found(
        catalog
            .set_prompt_label(set_label("production", 7, "typo"))
            .await,
        "label on a missing version",
    );
    assert!(
        catalog
            .get_prompt_label("rag_answer", "production")
            .await
            .expect("get")
            .is_none(),
        "nothing half-done"
    );

    let first = catalog
        .set_prompt_label(set_label("production", 1, "launch"))
        .await
        .expect("set");
    assert_eq!((first.from_version, first.to_version), (None, 1));
    let moved = catalog
        .set_prompt_label(set_label("production", 2, "better answers"))
        .await
        .expect("move");
    assert_eq!((moved.from_version, moved.to_version), (Some(1), 2));
    catalog
        .set_prompt_label(set_label("staging", 2, "try"))
        .await
        .expect("staging");

    let production = catalog
        .get_prompt_label("rag_answer", "production")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(
        (production.version, production.updated_by.as_str()),
        (2, "grace")
    );
    let labels: Vec<(String, i64)> = catalog
        .list_prompt_labels("rag_answer")
        .await
        .expect("list")
        .into_iter()
        .map(|l| (l.label, l.version))
        .collect();
    assert_eq!(
        labels,
        [("production".to_owned(), 2), ("staging".to_owned(), 2)]
    );

    let history = catalog
        .prompt_label_history("rag_answer")
        .await
        .expect("history");
    let moves: Vec<(&str, Option<i64>, i64, &str)> = history
        .iter()
        .map(|m| {
            (
                m.label.as_str(),
                m.from_version,
                m.to_version,
                m.reason.as_str(),
            )
        })
        .collect();
    assert_eq!(
        moves,
        [
            ("production", None, 1, "launch"),
            ("production", Some(1), 2, "better answers"),
            ("staging", None, 2, "try")
        ]
    );
    assert!(matches!(
        catalog
            .set_prompt_label(set_label("Not A Label", 1, "x"))
            .await,
        Err(CatalogError::Invalid(_))
    ));
}

pub async fn conversations(catalog: Arc<dyn Catalog>) {
    let first = catalog
        .create_conversation("ada", "First")
        .await
        .expect("first");
    let second = catalog
        .create_conversation("ada", "Second")
        .await
        .expect("second");
    catalog
        .create_conversation("bob", "Not yours")
        .await
        .expect("other owner");

    let ids: Vec<Uuid> = catalog
        .list_conversations("ada")
        .await
        .expect("list")
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(ids, [second.id, first.id], "most recent first");

    let lineage_id = Uuid::now_v7();
    catalog
        .append_message(NewMessage {
            conversation_id: first.id,
            role: "user".into(),
            content: "hi".into(),
            lineage_id: None,
        })
        .await
        .expect("user message");
    catalog
        .append_message(NewMessage {
            conversation_id: first.id,
            role: "assistant".into(),
            content: "hello [1]".into(),
            lineage_id: Some(lineage_id),
        })
        .await
        .expect("assistant message");
    let ids: Vec<Uuid> = catalog
        .list_conversations("ada")
        .await
        .expect("list")
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(
        ids,
        [first.id, second.id],
        "a new message moves the conversation to the top"
    );

    let messages = catalog.list_messages(first.id).await.expect("messages");
    let roles: Vec<&str> = messages.iter().map(|m| m.role.as_str()).collect();
    assert_eq!(roles, ["user", "assistant"]);
    assert_eq!(messages[1].lineage_id, Some(lineage_id));

    let renamed = catalog
        .rename_conversation(first.id, "Renamed")
        .await
        .expect("rename");
    assert_eq!(renamed.title, "Renamed");
    assert_not_found(
        catalog.rename_conversation(Uuid::now_v7(), "x").await,
        "renaming a missing conversation",
    );
    assert_not_found(
        catalog
            .append_message(NewMessage {
                conversation_id: Uuid::now_v7(),
                role: "user".into(),
                content: "x".into(),
                lineage_id: None,
            })
            .await,
        "a message in a missing conversation",
    );

    assert!(catalog.delete_conversation(first.id).await.expect("delete"));
    assert!(
        !catalog
            .delete_conversation(first.id)
            .await
            .expect("delete again")
    );
    assert!(
        catalog
            .get_conversation(first.id)
            .await
            .expect("get")
            .is_none()
    );
    assert!(
        catalog
            .list_messages(first.id)
            .await
            .expect("messages")
            .is_empty(),
        "messages cascade"
    );
}

fn lineage_record() -> LineageRecord {
    LineageRecord {
        id: Uuid::now_v7(),
        conversation_id: Some(Uuid::now_v7()),
        app: Some("support".into()),
        prompt_name: Some("rag_answer".into()),
        prompt_version: Some(3),
        model: "smollm2-135m".into(),
        route: Some("default".into()),
        retrieval: json!([{"chunk_id": Uuid::nil(), "score": 0.83}]),
        guard_verdicts: json!({"input": "allow"}),
        usage: Usage {
            input_tokens: 120,
            cached_input_tokens: 20,
            output_tokens: 42,
            reasoning_tokens: 0,
        },
        cost_usd: 0.00123,
        latency_ms: 850,
        status: "ok".into(),
        error: None,
        // Both backends keep microseconds.
        created_at: Utc::now().trunc_subsecs(6),
    }
}

pub async fn lineage_and_feedback(catalog: Arc<dyn Catalog>) {
    let record = lineage_record();
    catalog
        .record_lineage(record.clone())
        .await
        .expect("record");
    assert_eq!(
        catalog.get_lineage(record.id).await.expect("get"),
        Some(record.clone())
    );
    assert_conflict(
        catalog.record_lineage(record.clone()).await,
        "recording twice",
    );
    assert_eq!(
        catalog
            .get_lineage(Uuid::now_v7())
            .await
            .expect("get missing"),
        None
    );

    let up = catalog
        .record_feedback(NewFeedback {
            lineage_id: record.id,
            rating: 1,
            comment: Some("spot on".into()),
            user: "ada".into(),
        })
        .await
        .expect("feedback");
    catalog
        .record_feedback(NewFeedback {
            lineage_id: record.id,
            rating: -1,
            comment: None,
            user: "bob".into(),
        })
        .await
        .expect("second feedback");
    let all = catalog.list_feedback(record.id).await.expect("list");
    assert_eq!(all.len(), 2);
    assert_eq!(all[0], up);
    assert_not_found(
        catalog
            .record_feedback(NewFeedback {
                lineage_id: Uuid::now_v7(),
                rating: 1,
                comment: None,
                user: "x".into(),
            })
            .await,
        "feedback on a missing answer",
    );
    assert!(matches!(
        catalog
            .record_feedback(NewFeedback {
                lineage_id: record.id,
                rating: 3,
                comment: None,
                user: "x".into()
            })
            .await,
        Err(CatalogError::Invalid(_))
    ));
}

pub async fn eval_runs(catalog: Arc<dyn Catalog>) {
    let older = catalog
        .create_eval_run("rag-smoke", json!({"app": "support"}))
        .await
        .expect("run");
    let run = catalog
        .create_eval_run(
            "rag-smoke",
            json!({"app": "support", "prompt": "rag_answer@2"}),
        )
        .await
        .expect("run");
    catalog
        .create_eval_run("other", json!({}))
        .await
        .expect("other suite");
    assert_eq!(run.status, EvalStatus::Running);

    for (case, passed) in [("q2", false), ("q1", true)] {
        catalog
            .record_eval_result(NewEvalResult {
                run_id: run.id,
                case_id: case.into(),
                passed,
                metrics: json!({"faithfulness": if passed { 0.9 } else { 0.2 }}),
                output: json!({"answer": "…"}),
            })
            .await
            .expect("result");
    }
    assert_conflict(
        catalog
            .record_eval_result(NewEvalResult {
                run_id: run.id,
                case_id: "q1".into(),
                passed: true,
                metrics: json!({}),
                output: json!({}),
            })
            .await,
        "recording a case twice",
    );
    assert_not_found(
        catalog
            .record_eval_result(NewEvalResult {
                run_id: Uuid::now_v7(),
                case_id: "q1".into(),
                passed: true,
                metrics: json!({}),
                output: json!({}),
            })
            .await,
        "a result of a missing run",
    );
    let results = catalog.list_eval_results(run.id).await.expect("results");
    assert_eq!(
        results
            .iter()
            .map(|r| (r.case_id.as_str(), r.passed))
            .collect::<Vec<_>>(),
        [("q1", true), ("q2", false)]
    );

    let finished = catalog
        .finish_eval_run(run.id, EvalStatus::Failed, json!({"pass_rate": 0.5}))
        .await
        .expect("finish");
    assert_eq!(finished.status, EvalStatus::Failed);
    assert!(finished.finished_at.is_some());
    assert_conflict(
        catalog
            .finish_eval_run(run.id, EvalStatus::Passed, json!({}))
            .await,
        "finishing twice",
    );
    assert_not_found(
        catalog
            .finish_eval_run(Uuid::now_v7(), EvalStatus::Passed, json!({}))
            .await,
        "finishing a missing run",
    );
    assert!(matches!(
        catalog
            .finish_eval_run(older.id, EvalStatus::Running, json!({}))
            .await,
        Err(CatalogError::Invalid(_))
    ));

    let runs: Vec<Uuid> = catalog
        .list_eval_runs("rag-smoke", 10)
        .await
        .expect("runs")
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(runs, [run.id, older.id], "newest first");
    assert_eq!(
        catalog
            .list_eval_runs("rag-smoke", 1)
            .await
            .expect("limited")
            .len(),
        1
    );
    assert_eq!(
        catalog.get_eval_run(run.id).await.expect("get"),
        Some(finished)
    );
}

fn new_key(name: &str, hash: &str) -> NewApiKey {
    NewApiKey {
        name: name.into(),
        prefix: "cairn_ab12".into(),
        key_hash: hash.into(),
        tools: vec!["search_knowledge".into()],
        collections: vec!["handbook".into()],
    }
}

pub async fn api_keys(catalog: Arc<dyn Catalog>) {
    let key = catalog
        .create_api_key(new_key("ci-bot", "hash-1"))
        .await
        .expect("create");
    assert_eq!(
        catalog.find_active_api_key("hash-1").await.expect("find"),
        Some(key.clone())
    );
    assert_eq!(
        catalog
            .find_active_api_key("hash-x")
            .await
            .expect("find unknown"),
        None
    );
    let message = assert_conflict(
        catalog.create_api_key(new_key("ci-bot", "hash-2")).await,
        "duplicate active name",
    );
    assert!(message.contains("ci-bot"), "{message}");

    assert!(catalog.revoke_api_key("ci-bot").await.expect("revoke"));
    assert!(
        !catalog
            .revoke_api_key("ci-bot")
            .await
            .expect("revoke again")
    );
    assert_eq!(
        catalog
            .find_active_api_key("hash-1")
            .await
            .expect("find revoked"),
        None
    );
    catalog
        .create_api_key(new_key("ci-bot", "hash-3"))
        .await
        .expect("a revoked name can be reused");
    let keys = catalog.list_api_keys().await.expect("list");
    assert_eq!(keys.len(), 2);
    assert_eq!(keys.iter().filter(|k| k.revoked_at.is_some()).count(), 1);
    assert_eq!(keys[0].tools, ["search_knowledge"]);
    assert_eq!(keys[0].collections, ["handbook"]);
}

/// Concurrent additions to one window are never lost, and each caller sees a distinct total.
pub async fn usage_windows(catalog: Arc<dyn Catalog>) {
    let one = UsageDelta {
        requests: 1,
        tokens: 10,
        cost_usd: 0.25,
    };
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let catalog = catalog.clone();
        tasks.push(tokio::spawn(async move {
            catalog.add_usage("route:a", 600, one).await.expect("add")
        }));
    }
    let mut seen = BTreeSet::new();
    for task in tasks {
        seen.insert(task.await.expect("task").requests);
    }
    assert_eq!(
        seen,
        (1..=20).collect::<BTreeSet<u64>>(),
        "each caller saw its own total"
    );
    let total = catalog
        .add_usage("route:a", 600, UsageDelta::default())
        .await
        .expect("read by adding nothing");
    assert_eq!((total.requests, total.tokens), (20, 200));
    assert!((total.cost_usd - 5.0).abs() < 1e-9, "{total:?}");
    // Other buckets and windows are apart.
    let other = catalog.add_usage("route:b", 600, one).await.expect("add");
    assert_eq!(other.requests, 1);
    let next = catalog.add_usage("route:a", 660, one).await.expect("add");
    assert_eq!(next.requests, 1);
    assert_eq!(catalog.prune_usage(660).await.expect("prune"), 2);
    let after = catalog
        .add_usage("route:a", 600, UsageDelta::default())
        .await
        .expect("read");
    assert_eq!(after.requests, 0, "the pruned window starts again");
}

pub async fn shadow_results(catalog: Arc<dyn Catalog>) {
    let now = Utc::now().trunc_subsecs(3);
    let result = |route: &str, seconds: i64| ShadowResult {
        id: Uuid::now_v7(),
        route: route.into(),
        primary_target: Some("gpt".into()),
        shadow_target: "local".into(),
        request: json!([{"role": "user", "content": "Hello?"}]),
        primary_output: Some("Hi".into()),
        primary_error: None,
        primary_latency_ms: 120,
        shadow_output: None,
        shadow_error: Some("timed out".into()),
        shadow_latency_ms: 5_000,
        shadow_usage: Usage {
            input_tokens: 5,
            cached_input_tokens: 0,
            output_tokens: 0,
            reasoning_tokens: 0,
        },
        shadow_cost_usd: Some(0.0),
        created_at: now + chrono::Duration::seconds(seconds),
    };
    let first = result("chat", 0);
    let second = result("chat", 1);
    catalog.record_shadow(first.clone()).await.expect("record");
    catalog.record_shadow(second.clone()).await.expect("record");
    catalog
        .record_shadow(result("other", 2))
        .await
        .expect("record");
    let listed = catalog.list_shadow_results("chat", 10).await.expect("list");
    assert_eq!(listed, vec![second, first], "newest first, this route only");
    assert_eq!(
        catalog
            .list_shadow_results("chat", 1)
            .await
            .expect("list")
            .len(),
        1
    );
}
