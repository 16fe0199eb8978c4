//! The audit log.

use std::sync::Arc;

use cairn_core::catalog::*;
use serde_json::json;

fn event(actor: &str, action: &str, outcome: AuditOutcome) -> NewAuditEvent {
    NewAuditEvent {
        actor: actor.into(),
        action: action.into(),
        target: "handbook".into(),
        outcome,
        source: "127.0.0.1".into(),
        detail: json!({"status": 204}),
    }
}

pub async fn audit_log(catalog: Arc<dyn Catalog>) {
    let first = catalog
        .record_audit(event(
            "key:ci",
            "DELETE /v1/collections/{name}",
            AuditOutcome::Ok,
        ))
        .await
        .expect("record");
    assert_eq!(
        (first.actor.as_str(), first.outcome, &first.detail),
        ("key:ci", AuditOutcome::Ok, &json!({"status": 204}))
    );
    catalog
        .record_audit(event(
            "anonymous",
            "GET /v1/collections",
            AuditOutcome::Refused,
        ))
        .await
        .expect("record");
    catalog
        .record_audit(event("cli:root", "key.create", AuditOutcome::Ok))
        .await
        .expect("record");

    let all = |filter: AuditFilter| {
        let catalog = catalog.clone();
        async move {
            catalog
                .list_audit(&AuditFilter {
                    limit: 100,
                    ..filter
                })
                .await
                .expect("list")
                .into_iter()
                .map(|e| e.action)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        all(AuditFilter::default()).await,
        [
            "key.create",
            "GET /v1/collections",
            "DELETE /v1/collections/{name}"
        ],
        "newest first"
    );
    assert_eq!(
        all(AuditFilter {
            actor: Some("key:ci".into()),
            ..AuditFilter::default()
        })
        .await,
        ["DELETE /v1/collections/{name}"]
    );
    assert_eq!(
        all(AuditFilter {
            action: Some("key.".into()),
            ..AuditFilter::default()
        })
        .await,
        ["key.create"]
    );
    assert_eq!(
        all(AuditFilter {
            outcome: Some(AuditOutcome::Refused),
            ..AuditFilter::default()
        })
        .await,
        ["GET /v1/collections"]
    );
    let later = first.at + chrono::Duration::milliseconds(1);
    assert_eq!(
        all(AuditFilter {
            since: Some(first.at),
            ..AuditFilter::default()
        })
        .await
        .len(),
        3
    );
    assert!(
        all(AuditFilter {
            since: Some(later + chrono::Duration::hours(1)),
            ..AuditFilter::default()
        })
        .await
        .is_empty()
    );
    let one = catalog
        .list_audit(&AuditFilter {
            limit: 1,
            ..AuditFilter::default()
        })
        .await
        .expect("list");
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].action, "key.create");
}
