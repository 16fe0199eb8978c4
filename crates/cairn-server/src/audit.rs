//! The audit trail of the HTTP surface: every request that needs more than the read role, and
//! every refused one, is recorded in the catalog's append-only audit log; `GET /v1/audit` (admin)
//! lists it. Sign-ins are recorded by `auth.rs`; the CLI records its own changes.

use axum::Json;
use axum::extract::{ConnectInfo, MatchedPath, Query, State};
use axum::http::{HeaderMap, Request, StatusCode};
use cairn_auth::{Grant, Via};
use cairn_core::catalog::{AuditFilter, AuditOutcome, NewAuditEvent};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::AppState;
use crate::error::ApiError;

/// Refused requests written to the audit log per second at most: a flood of them (a scanner, a
/// misconfigured client) must not fill the catalog. The rest are counted, and the count is written
/// with the next refusal that is.
const REFUSALS_PER_SECOND: u64 = 20;

/// (the current second, refusals written in it, refusals not written since the last one that was)
static REFUSALS: std::sync::Mutex<(u64, u64, u64)> = std::sync::Mutex::new((0, 0, 0));

/// Whether a refusal may be written now, and how many were left out before it.
fn admit_refusal(now_secs: u64) -> Option<u64> {
    let mut window = REFUSALS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if window.0 != now_secs {
        window.0 = now_secs;
        window.1 = 0;
    }
    if window.1 >= REFUSALS_PER_SECOND {
        window.2 += 1;
        metrics::counter!("cairn_audit_refusals_suppressed_total").increment(1);
        return None;
    }
    window.1 += 1;
    Some(std::mem::take(&mut window.2))
}

/// How an audit event names its actor: `local`, `key:NAME`, `user:SUBJECT` or `anonymous`.
pub(crate) fn actor(grant: Option<&Grant>) -> String {
    match grant {
        Some(grant) => match grant.via {
            Via::Local => "local".into(),
            Via::Key => format!("key:{}", grant.principal),
            Via::Session => format!("user:{}", grant.principal),
            Via::Open | Via::Nobody => "anonymous".into(),
        },
        None => "anonymous".into(),
    }
}

/// What an audited HTTP request was, captured before it runs.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    action: String,
    target: String,
    source: String,
    request_id: Option<String>,
}

impl Seen {
    pub(crate) fn of<B>(request: &Request<B>) -> Seen {
        let template = request.extensions().get::<MatchedPath>().map_or_else(
            || request.uri().path().to_owned(),
            |p| p.as_str().to_owned(),
        );
        Seen {
            action: format!("{} {template}", request.method()),
            target: request.uri().path().to_owned(),
            source: source(
                request.headers(),
                request
                    .extensions()
                    .get::<ConnectInfo<std::net::SocketAddr>>(),
            ),
            request_id: request
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        }
    }

    /// Records the request with the status it got, and `reason` for a refusal.
    pub(crate) async fn record(
        self,
        state: &AppState,
        grant: Option<&Grant>,
        status: StatusCode,
        reason: Option<&str>,
    ) {
        let outcome = match status.as_u16() {
            401 | 403 => AuditOutcome::Refused,
            code if code < 400 => AuditOutcome::Ok,
            _ => AuditOutcome::Failed,
        };
        let mut detail = json!({"status": status.as_u16(), "request_id": self.request_id});
        if let Some(reason) = reason {
            detail["reason"] = json!(reason);
        }
        if outcome == AuditOutcome::Refused {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            match admit_refusal(now) {
                None => return,
                Some(0) => {}
                Some(left_out) => detail["refusals_not_recorded_before"] = json!(left_out),
            }
        }
        record(
            state,
            NewAuditEvent {
                actor: actor(grant),
                action: self.action,
                target: self.target,
                outcome,
                source: self.source,
                detail,
            },
        )
        .await;
    }
}

/// The peer's address, and what a proxy says it forwarded for (kept apart: it can be forged).
fn source(headers: &HeaderMap, peer: Option<&ConnectInfo<std::net::SocketAddr>>) -> String {
    let peer = peer.map_or_else(
        || "unknown".to_owned(),
        |ConnectInfo(addr)| addr.ip().to_string(),
    );
    match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(forwarded) => format!("{peer} (forwarded for {})", forwarded.trim()),
        None => peer,
    }
}

/// Writes an event; a catalog failure is logged, never turned into the request's failure (what was
/// audited has already happened).
pub(crate) async fn record(state: &AppState, event: NewAuditEvent) {
    if let Err(error) = state.catalog.record_audit(event.clone()).await {
        tracing::error!(%error, actor = %event.actor, action = %event.action, "cannot write the audit log");
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct AuditQuery {
    actor: Option<String>,
    action: Option<String>,
    outcome: Option<String>,
    since: Option<DateTime<Utc>>,
    limit: Option<u32>,
}

/// `GET /v1/audit?actor=&action=&outcome=&since=&limit=`: events, newest first.
pub(crate) async fn list(
    State(state): State<AppState>,
    Query(query): Query<AuditQuery>,
) -> Result<Json<Value>, ApiError> {
    let outcome = match query.outcome.as_deref() {
        None | Some("") => None,
        Some(text) => Some(AuditOutcome::parse(text).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_outcome",
                format!("outcome `{text}` is not one of ok, refused, failed"),
            )
        })?),
    };
    let filter = AuditFilter {
        actor: query.actor.filter(|a| !a.is_empty()),
        action: query.action.filter(|a| !a.is_empty()),
        outcome,
        since: query.since,
        limit: query.limit.unwrap_or(100).clamp(1, 1000),
    };
    let events = state.catalog.list_audit(&filter).await?;
    Ok(Json(json!({"object": "list", "data": events})))
}
