//! Lineage records and feedback.

use std::sync::Arc;

use cairn_core::catalog::*;
use cairn_core::model::Usage;
use chrono::{SubsecRound, Utc};
use serde_json::json;
use uuid::Uuid;

use crate::{assert_conflict, assert_not_found};

pub(crate) fn lineage_record() -> LineageRecord {
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
        steps: json!([{"kind": "tool", "tool": "search"}]),
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

    // Listing: by app, time and whether the answer was given in a conversation, newest first.
    let mut loose = lineage_record();
    loose.conversation_id = None;
    loose.app = Some("other".into());
    loose.created_at += chrono::Duration::seconds(1);
    catalog.record_lineage(loose.clone()).await.expect("record");
    let ids = |records: Vec<LineageRecord>| records.into_iter().map(|r| r.id).collect::<Vec<_>>();
    let all = LineageFilter {
        limit: 10,
        ..LineageFilter::default()
    };
    assert_eq!(
        ids(catalog.list_lineage(&all).await.expect("list")),
        [loose.id, record.id]
    );
    let support = LineageFilter {
        app: Some("support".into()),
        ..all.clone()
    };
    assert_eq!(
        ids(catalog.list_lineage(&support).await.expect("list")),
        [record.id]
    );
    let talked = LineageFilter {
        in_conversations: true,
        ..all.clone()
    };
    assert_eq!(
        ids(catalog.list_lineage(&talked).await.expect("list")),
        [record.id]
    );
    let later = LineageFilter {
        since: Some(loose.created_at),
        ..all.clone()
    };
    assert_eq!(
        ids(catalog.list_lineage(&later).await.expect("list")),
        [loose.id]
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

    // Online-evaluation scores: recorded per metric (a later one replaces it), unmeasured kept with
    // its reason, and for an answer whose record has not landed yet.
    let score = |metric: &str, value: Option<f64>, reason: &str| LineageScore {
        lineage_id: record.id,
        metric: metric.into(),
        score: value,
        reason: reason.into(),
        judge: "judge".into(),
        created_at: Utc::now().trunc_subsecs(3),
    };
    for s in [
        score("faithfulness", Some(0.2), "first"),
        score("faithfulness", Some(0.5), "1 of 2 claims supported"),
        score("answer_relevance", None, "the judge failed"),
    ] {
        catalog.record_lineage_score(s).await.expect("score");
    }
    let scores = catalog
        .list_lineage_scores(record.id)
        .await
        .expect("scores");
    let found: Vec<(&str, Option<f64>, &str)> = scores
        .iter()
        .map(|s| (s.metric.as_str(), s.score, s.reason.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            ("answer_relevance", None, "the judge failed"),
            ("faithfulness", Some(0.5), "1 of 2 claims supported")
        ]
    );
    let early = Uuid::now_v7();
    catalog
        .record_lineage_score(LineageScore {
            lineage_id: early,
            ..score("faithfulness", Some(1.0), "ok")
        })
        .await
        .expect("a score before its answer's record");
    assert_eq!(
        catalog
            .list_lineage_scores(early)
            .await
            .expect("list")
            .len(),
        1
    );
}
