//! The gateway's usage windows and shadow results.

use cairn_core::catalog::{CatalogError, ShadowResult, UsageDelta};
use cairn_core::model::Usage;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

use crate::unsigned;

#[doc(hidden)]
#[macro_export]
macro_rules! shadow_columns {
    () => {
        "id, route, primary_target, shadow_target, request, primary_output, primary_error, \
     primary_latency_ms, shadow_output, shadow_error, shadow_latency_ms, shadow_usage, shadow_cost_usd, \
     created_at"
    };
}

#[derive(Debug, sqlx::FromRow)]
pub struct UsageRow {
    pub requests: i64,
    pub tokens: i64,
    pub cost_usd: f64,
}

impl TryFrom<UsageRow> for UsageDelta {
    type Error = CatalogError;

    fn try_from(row: UsageRow) -> Result<Self, CatalogError> {
        Ok(UsageDelta {
            requests: unsigned("requests", row.requests)?,
            tokens: unsigned("tokens", row.tokens)?,
            cost_usd: row.cost_usd,
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct ShadowRow {
    pub id: Uuid,
    pub route: String,
    pub primary_target: Option<String>,
    pub shadow_target: String,
    pub request: Json<Value>,
    pub primary_output: Option<String>,
    pub primary_error: Option<String>,
    pub primary_latency_ms: i64,
    pub shadow_output: Option<String>,
    pub shadow_error: Option<String>,
    pub shadow_latency_ms: i64,
    pub shadow_usage: Json<Usage>,
    pub shadow_cost_usd: Option<f64>,
    pub created_at: DateTime<Utc>,
}

impl TryFrom<ShadowRow> for ShadowResult {
    type Error = CatalogError;

    fn try_from(row: ShadowRow) -> Result<Self, CatalogError> {
        Ok(ShadowResult {
            id: row.id,
            route: row.route,
            primary_target: row.primary_target,
            shadow_target: row.shadow_target,
            request: row.request.0,
            primary_output: row.primary_output,
            primary_error: row.primary_error,
            primary_latency_ms: unsigned("primary_latency_ms", row.primary_latency_ms)?,
            shadow_output: row.shadow_output,
            shadow_error: row.shadow_error,
            shadow_latency_ms: unsigned("shadow_latency_ms", row.shadow_latency_ms)?,
            shadow_usage: row.shadow_usage.0,
            shadow_cost_usd: row.shadow_cost_usd,
            created_at: row.created_at,
        })
    }
}

/// Implements [`GatewayRepo`](cairn_core::catalog::GatewayRepo) for `$catalog`; expanded by
/// [`impl_catalog_repos!`](crate::impl_catalog_repos).
#[doc(hidden)]
#[macro_export]
macro_rules! impl_gateway_repo {
    ($catalog:ident, $db:ty) => {
        #[$crate::async_trait::async_trait]
        impl GatewayRepo for $catalog {
            async fn add_usage(
                &self,
                bucket: &str,
                window_start: i64,
                delta: UsageDelta,
            ) -> CatalogResult<UsageDelta> {
                // One statement: the database serialises concurrent additions to a row, so each
                // caller sees the total including its own addition and every earlier one.
                let row: UsageRow = sqlx::query_as(
                    "INSERT INTO usage_windows (bucket, window_start, requests, tokens, cost_usd) \
                     VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (bucket, window_start) DO UPDATE SET \
                       requests = usage_windows.requests + excluded.requests, \
                       tokens = usage_windows.tokens + excluded.tokens, \
                       cost_usd = usage_windows.cost_usd + excluded.cost_usd \
                     RETURNING requests, tokens, cost_usd",
                )
                .bind(bucket)
                .bind(window_start)
                .bind(to_i64(delta.requests)?)
                .bind(to_i64(delta.tokens)?)
                .bind(delta.cost_usd)
                .fetch_one(&self.pool)
                .await
                .map_err(db_error)?;
                UsageDelta::try_from(row)
            }

            async fn prune_usage(&self, before: i64) -> CatalogResult<u64> {
                let result = sqlx::query("DELETE FROM usage_windows WHERE window_start < $1")
                    .bind(before)
                    .execute(&self.pool)
                    .await
                    .map_err(db_error)?;
                Ok(result.rows_affected())
            }

            async fn record_shadow(&self, result: ShadowResult) -> CatalogResult<()> {
                sqlx::query(concat!(
                    "INSERT INTO shadow_results (",
                    $crate::shadow_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
                ))
                .bind(result.id)
                .bind(&result.route)
                .bind(&result.primary_target)
                .bind(&result.shadow_target)
                .bind(Json(&result.request))
                .bind(&result.primary_output)
                .bind(&result.primary_error)
                .bind(to_i64(result.primary_latency_ms)?)
                .bind(&result.shadow_output)
                .bind(&result.shadow_error)
                .bind(to_i64(result.shadow_latency_ms)?)
                .bind(Json(&result.shadow_usage))
                .bind(result.shadow_cost_usd)
                .bind(result.created_at)
                .execute(&self.pool)
                .await
                .map_err(db_error)?;
                Ok(())
            }

            async fn list_shadow_results(
                &self,
                route: &str,
                limit: u32,
            ) -> CatalogResult<Vec<ShadowResult>> {
                let rows: Vec<ShadowRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    $crate::shadow_columns!(),
                    " FROM shadow_results WHERE route = $1 ORDER BY created_at DESC, id DESC LIMIT $2"
                ))
                .bind(route)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(db_error)?;
                convert_all(rows)
            }
        }
    };
}
