//! The audit log: who did what, when, from where, and how it ended. Append-only: there is no way
//! to change or delete an event through the catalog, and both databases refuse it underneath.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::CatalogResult;

/// How an audited action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditOutcome {
    /// It happened.
    Ok,
    /// The caller was not allowed to do it (401, 403).
    Refused,
    /// It was allowed but did not succeed.
    Failed,
}

impl AuditOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditOutcome::Ok => "ok",
            AuditOutcome::Refused => "refused",
            AuditOutcome::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<AuditOutcome> {
        [
            AuditOutcome::Ok,
            AuditOutcome::Refused,
            AuditOutcome::Failed,
        ]
        .into_iter()
        .find(|o| o.as_str() == text)
    }
}

/// One recorded action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub id: Uuid,
    pub at: DateTime<Utc>,
    /// `local`, `key:NAME`, `user:SUBJECT`, `cli:USER` or `anonymous`.
    pub actor: String,
    /// What was done: `key.create`, `prompt.label`, `sign_in`, or `METHOD /route/{template}` for
    /// an HTTP request.
    pub action: String,
    /// What it was done to: a key name, `prompt@label`, a request path.
    pub target: String,
    pub outcome: AuditOutcome,
    /// Where from: the client's address, or `cli`.
    pub source: String,
    /// Anything else worth keeping (status, request id, versions, the reason of a refusal).
    pub detail: Value,
}

/// An event to record; the catalog gives it its id and time.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAuditEvent {
    pub actor: String,
    pub action: String,
    pub target: String,
    pub outcome: AuditOutcome,
    pub source: String,
    pub detail: Value,
}

/// Which events to list, newest first.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    /// Events whose action starts with this.
    pub action: Option<String>,
    pub outcome: Option<AuditOutcome>,
    pub since: Option<DateTime<Utc>>,
    pub limit: u32,
}

#[async_trait]
pub trait AuditRepo: Send + Sync {
    async fn record_audit(&self, event: NewAuditEvent) -> CatalogResult<AuditEvent>;
    async fn list_audit(&self, filter: &AuditFilter) -> CatalogResult<Vec<AuditEvent>>;
}
