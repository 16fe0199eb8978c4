//! The gateway's usage windows (rate limits and budgets) and shadow comparisons.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::CatalogResult;

/// What one call adds to a usage window.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct UsageDelta {
    pub requests: u64,
    pub tokens: u64,
    pub cost_usd: f64,
}

/// A shadow target's answer next to the answer the client got, for comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShadowResult {
    pub id: Uuid,
    pub route: String,
    /// The target that answered the client; `None` when every target failed.
    pub primary_target: Option<String>,
    pub shadow_target: String,
    /// The request's messages, as sent to both.
    pub request: Value,
    /// The client's answer, or `None` when it failed or was stopped (see `primary_error`).
    pub primary_output: Option<String>,
    pub primary_error: Option<String>,
    pub primary_latency_ms: u64,
    pub shadow_output: Option<String>,
    pub shadow_error: Option<String>,
    pub shadow_latency_ms: u64,
    pub shadow_usage: crate::model::Usage,
    pub shadow_cost_usd: Option<f64>,
    pub created_at: DateTime<Utc>,
}

#[async_trait]
pub trait GatewayRepo: Send + Sync {
    /// Adds `delta` to the usage window `(bucket, window_start)` (a Unix time in seconds) and
    /// returns the window's totals after the addition, atomically: concurrent callers, in this
    /// process or another sharing the database, each see a distinct running total.
    async fn add_usage(
        &self,
        bucket: &str,
        window_start: i64,
        delta: UsageDelta,
    ) -> CatalogResult<UsageDelta>;
    /// Deletes windows that started before `before`; returns how many.
    async fn prune_usage(&self, before: i64) -> CatalogResult<u64>;
    async fn record_shadow(&self, result: ShadowResult) -> CatalogResult<()>;
    /// A route's comparisons, newest first.
    async fn list_shadow_results(
        &self,
        route: &str,
        limit: u32,
    ) -> CatalogResult<Vec<ShadowResult>>;
}
