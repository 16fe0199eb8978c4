//! Retention, and deletes that take what belongs to a record with it.

use std::sync::Arc;

use cairn_core::catalog::*;
use chrono::{Duration, Utc};
use uuid::Uuid;

use crate::lineage::lineage_record;

/// An answer in `conversation` (or none) at `age` ago, with feedback and a score.
async fn answer(catalog: &dyn Catalog, conversation: Option<Uuid>, age: Duration) -> Uuid {
    let mut record = lineage_record();
    record.conversation_id = conversation;
    record.created_at -= age;
    catalog
        .record_lineage(record.clone())
        .await
        .expect("lineage");
    catalog
        .record_feedback(NewFeedback {
            lineage_id: record.id,
            rating: -1,
            comment: Some("wrong".into()),
            user: "ada".into(),
        })
        .await
        .expect("feedback");
    catalog
        .record_lineage_score(LineageScore {
            lineage_id: record.id,
            metric: "faithfulness".into(),
            score: Some(0.5),
            reason: "half".into(),
            judge: "judge".into(),
            created_at: Utc::now(),
        })
        .await
        .expect("score");
    record.id
}

async fn gone(catalog: &dyn Catalog, lineage: Uuid) -> bool {
    catalog.get_lineage(lineage).await.expect("get").is_none()
        && catalog
            .list_feedback(lineage)
            .await
            .expect("feedback")
            .is_empty()
        && catalog
            .list_lineage_scores(lineage)
            .await
            .expect("scores")
            .is_empty()
}

pub async fn retention(catalog: Arc<dyn Catalog>) {
    // Deleting a conversation takes its answers' lineage, feedback and scores.
    let conversation = catalog
        .create_conversation("ada", "to delete")
        .await
        .expect("conversation");
    let in_it = answer(catalog.as_ref(), Some(conversation.id), Duration::zero()).await;
    let elsewhere = answer(catalog.as_ref(), None, Duration::zero()).await;
    assert!(
        catalog
            .delete_conversation(conversation.id)
            .await
            .expect("delete")
    );
    assert!(
        gone(catalog.as_ref(), in_it).await,
        "the conversation's answers went with it"
    );
    assert!(
        !gone(catalog.as_ref(), elsewhere).await,
        "other answers stay"
    );

    // Lineage older than the cut goes, with its feedback and scores; newer stays.
    let old = answer(catalog.as_ref(), None, Duration::days(40)).await;
    let cut = Utc::now() - Duration::days(30);
    assert_eq!(
        catalog
            .prune(RecordKind::Lineage, cut)
            .await
            .expect("prune"),
        1
    );
    assert!(gone(catalog.as_ref(), old).await);
    assert!(!gone(catalog.as_ref(), elsewhere).await);

    // Conversations not touched since the cut go with their answers.
    let stale = catalog
        .create_conversation("ada", "stale")
        .await
        .expect("conversation");
    let stale_answer = answer(catalog.as_ref(), Some(stale.id), Duration::zero()).await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let cut = Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let fresh = catalog
        .create_conversation("bob", "fresh")
        .await
        .expect("conversation");
    assert_eq!(
        catalog
            .prune(RecordKind::Conversations, cut)
            .await
            .expect("prune"),
        1
    );
    assert!(
        catalog
            .get_conversation(stale.id)
            .await
            .expect("get")
            .is_none()
    );
    assert!(gone(catalog.as_ref(), stale_answer).await);
    assert!(
        catalog
            .get_conversation(fresh.id)
            .await
            .expect("get")
            .is_some(),
        "a conversation touched after the cut stays"
    );

    // Sessions that ended before the cut go; live ones stay.
    let ended = catalog
        .create_session(NewSession {
            user_id: "sub-ada".into(),
            name: "ada".into(),
            roles: vec!["read".into()],
            expires_at: Utc::now() - Duration::days(2),
        })
        .await
        .expect("session");
    let live = catalog
        .create_session(NewSession {
            user_id: "sub-bob".into(),
            name: "bob".into(),
            roles: vec!["read".into()],
            expires_at: Utc::now() + Duration::days(2),
        })
        .await
        .expect("session");
    assert_eq!(
        catalog
            .prune(RecordKind::Sessions, Utc::now() - Duration::days(1))
            .await
            .expect("prune"),
        1
    );
    assert!(
        catalog
            .find_active_session(live.id, Utc::now())
            .await
            .expect("find")
            .is_some()
    );
    assert!(
        !catalog.revoke_session(ended.id).await.expect("revoke"),
        "the ended session is gone"
    );

    // The other kinds prune without error (their records are covered by their own checks).
    for kind in [RecordKind::EvalRuns, RecordKind::ShadowResults] {
        catalog
            .prune(kind, Utc::now() - Duration::days(365))
            .await
            .expect("prune");
    }
}
