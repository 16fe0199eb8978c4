//! The audit log, append-only.

use cairn_core::catalog::{AuditEvent, AuditOutcome, CatalogError};
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

#[doc(hidden)]
#[macro_export]
macro_rules! audit_columns {
    () => {
        "id, at, actor, action, target, outcome, source, detail"
    };
}

#[derive(Debug, sqlx::FromRow)]
pub struct AuditRow {
    pub id: Uuid,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub source: String,
    pub detail: Json<Value>,
}

impl TryFrom<AuditRow> for AuditEvent {
    type Error = CatalogError;

    fn try_from(row: AuditRow) -> Result<Self, CatalogError> {
        Ok(AuditEvent {
            id: row.id,
            at: row.at,
            actor: row.actor,
            action: row.action,
            target: row.target,
            outcome: AuditOutcome::parse(&row.outcome).ok_or_else(|| {
                CatalogError::Backend(format!(
                    "audit event {} has outcome `{}`",
                    row.id, row.outcome
                ))
            })?,
            source: row.source,
            detail: row.detail.0,
        })
    }
}

/// Implements [`AuditRepo`](cairn_core::catalog::AuditRepo) for `$catalog`; expanded by
/// [`impl_catalog_repos!`](crate::impl_catalog_repos).
#[doc(hidden)]
#[macro_export]
macro_rules! impl_audit_repo {
    ($catalog:ident, $db:ty) => {
        #[$crate::async_trait::async_trait]
        impl AuditRepo for $catalog {
            async fn record_audit(&self, event: NewAuditEvent) -> CatalogResult<AuditEvent> {
                let row: AuditRow = sqlx::query_as(concat!(
                    "INSERT INTO audit_log (",
                    $crate::audit_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING ",
                    $crate::audit_columns!()
                ))
                .bind(Uuid::now_v7())
                .bind(Utc::now())
                .bind(&event.actor)
                .bind(&event.action)
                .bind(&event.target)
                .bind(event.outcome.as_str())
                .bind(&event.source)
                .bind(Json(&event.detail))
                .fetch_one(&self.pool)
                .await
                .map_err(db_error)?;
                AuditEvent::try_from(row)
            }

            async fn list_audit(&self, filter: &AuditFilter) -> CatalogResult<Vec<AuditEvent>> {
                let rows: Vec<AuditRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    $crate::audit_columns!(),
                    " FROM audit_log WHERE ($1 IS NULL OR actor = $1) \
                      AND ($2 IS NULL OR substr(action, 1, length($2)) = $2) \
                      AND ($3 IS NULL OR outcome = $3) AND ($4 IS NULL OR at >= $4) \
                      ORDER BY at DESC, id DESC LIMIT $5"
                ))
                .bind(filter.actor.as_deref())
                .bind(filter.action.as_deref())
                .bind(filter.outcome.map(AuditOutcome::as_str))
                .bind(filter.since)
                .bind(i64::from(filter.limit.max(1)))
                .fetch_all(&self.pool)
                .await
                .map_err(db_error)?;
                convert_all(rows)
            }
        }
    };
}
