//! Usage windows and shadow results.

use std::collections::BTreeSet;
use std::sync::Arc;

use cairn_core::catalog::*;
use cairn_core::model::Usage;
use chrono::{SubsecRound, Utc};
use serde_json::json;
use uuid::Uuid;

/// Concurrent additions to one window are never lost, and each caller sees a distinct total.
pub async fn usage_windows(catalog: Arc<dyn Catalog>) {
    let one = UsageDelta {
        requests: 1,
        tokens: 10,
        cost_usd: 0.25,
    };
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let catalog = catalog.clone();
        tasks.push(tokio::spawn(async move {
            catalog.add_usage("route:a", 600, one).await.expect("add")
        }));
    }
    let mut seen = BTreeSet::new();
    for task in tasks {
        seen.insert(task.await.expect("task").requests);
    }
    assert_eq!(
        seen,
        (1..=20).collect::<BTreeSet<u64>>(),
        "each caller saw its own total"
    );
    let total = catalog
        .add_usage("route:a", 600, UsageDelta::default())
        .await
        .expect("read by adding nothing");
    assert_eq!((total.requests, total.tokens), (20, 200));
    assert!((total.cost_usd - 5.0).abs() < 1e-9, "{total:?}");
    // Other buckets and windows are apart.
    let other = catalog.add_usage("route:b", 600, one).await.expect("add");
    assert_eq!(other.requests, 1);
    let next = catalog.add_usage("route:a", 660, one).await.expect("add");
    assert_eq!(next.requests, 1);
    assert_eq!(catalog.prune_usage(660).await.expect("prune"), 2);
    let after = catalog
        .add_usage("route:a", 600, UsageDelta::default())
        .await
        .expect("read");
    assert_eq!(after.requests, 0, "the pruned window starts again");
}

pub async fn shadow_results(catalog: Arc<dyn Catalog>) {
    let now = Utc::now().trunc_subsecs(3);
    let result = |route: &str, seconds: i64| ShadowResult {
        id: Uuid::now_v7(),
        route: route.into(),
        primary_target: Some("gpt".into()),
        shadow_target: "local".into(),
        request: json!([{"role": "user", "content": "Hello?"}]),
        primary_output: Some("Hi".into()),
        primary_error: None,
        primary_latency_ms: 120,
        shadow_output: None,
        shadow_error: Some("timed out".into()),
        shadow_latency_ms: 5_000,
        shadow_usage: Usage {
            input_tokens: 5,
            cached_input_tokens: 0,
            output_tokens: 0,
            reasoning_tokens: 0,
        },
        shadow_cost_usd: Some(0.0),
        created_at: now + chrono::Duration::seconds(seconds),
    };
    let first = result("chat", 0);
    let second = result("chat", 1);
    catalog.record_shadow(first.clone()).await.expect("record");
    catalog.record_shadow(second.clone()).await.expect("record");
    catalog
        .record_shadow(result("other", 2))
        .await
        .expect("record");
    let listed = catalog.list_shadow_results("chat", 10).await.expect("list");
    assert_eq!(listed, vec![second, first], "newest first, this route only");
    assert_eq!(
        catalog
            .list_shadow_results("chat", 1)
            .await
            .expect("list")
            .len(),
        1
    );
}
