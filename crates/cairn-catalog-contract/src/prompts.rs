//! Prompt versions and labels.

use std::sync::Arc;

use cairn_core::catalog::*;
use serde_json::json;
use uuid::Uuid;

use crate::assert_not_found;

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

/// A label move as compared: label, from, to, reason, the vouching eval run.
type MoveRow<'a> = (&'a str, Option<i64>, i64, &'a str, Option<Uuid>);

fn set_label(label: &str, version: i64, reason: &str) -> SetLabel {
    SetLabel {
        name: "rag_answer".into(),
        label: label.into(),
        version,
        actor: "grace".into(),
        reason: reason.into(),
        eval_run: None,
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
    // The run that vouched for an eval-gated move is kept in the audit trail.
    let vouching = Uuid::now_v7();
    let moved = catalog
        .set_prompt_label(SetLabel {
            eval_run: Some(vouching),
            ..set_label("production", 2, "better answers")
        })
        .await
        .expect("move");
    assert_eq!(moved.eval_run, Some(vouching));
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
    let moves: Vec<MoveRow<'_>> = history
        .iter()
        .map(|m| {
            (
                m.label.as_str(),
                m.from_version,
                m.to_version,
                m.reason.as_str(),
                m.eval_run,
            )
        })
        .collect();
    assert_eq!(
        moves,
        [
            ("production", None, 1, "launch", None),
            ("production", Some(1), 2, "better answers", Some(vouching)),
            ("staging", None, 2, "try", None)
        ]
    );
    assert!(matches!(
        catalog
            .set_prompt_label(set_label("Not A Label", 1, "x"))
            .await,
        Err(CatalogError::Invalid(_))
    ));
}
