//! Where a route's shadow comparisons go: the catalog, written in the background.

use std::sync::Arc;
use std::time::Duration;

use cairn_core::Catalog;
use cairn_core::catalog::ShadowResult;
use cairn_gateway::{ShadowComparison, ShadowSink};
use serde_json::Value;

/// Stores shadow comparisons in the catalog, in the background.
#[derive(Debug)]
pub struct CatalogShadows {
    catalog: Arc<dyn Catalog>,
}

impl CatalogShadows {
    pub fn new(catalog: Arc<dyn Catalog>) -> Arc<Self> {
        Arc::new(CatalogShadows { catalog })
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl ShadowSink for CatalogShadows {
    fn record(&self, comparison: ShadowComparison) {
        let (shadow_output, shadow_error, shadow_usage, shadow_cost_usd) = match comparison.shadow {
            Ok(response) => (
                Some(cairn_gateway::answer_text(&response.message)),
                None,
                response.usage,
                response.cost_usd,
            ),
            Err(error) => (None, Some(error.to_string()), Default::default(), None),
        };
        let (primary_output, primary_error) = match comparison.primary {
            Ok(text) => (Some(text), None),
            Err(error) => (None, Some(error)),
        };
        let result = ShadowResult {
            id: uuid::Uuid::now_v7(),
            route: comparison.route,
            primary_target: comparison.primary_target,
            shadow_target: comparison.shadow_target,
            request: serde_json::to_value(&comparison.request.messages).unwrap_or(Value::Null),
            primary_output,
            primary_error,
            primary_latency_ms: millis(comparison.primary_latency),
            shadow_output,
            shadow_error,
            shadow_latency_ms: millis(comparison.shadow_latency),
            shadow_usage,
            shadow_cost_usd,
            created_at: chrono::Utc::now(),
        };
        let catalog = self.catalog.clone();
        tokio::spawn(async move {
            if let Err(e) = catalog.record_shadow(result).await {
                tracing::warn!(error = %e, "could not store a shadow comparison");
            }
        });
    }
}
