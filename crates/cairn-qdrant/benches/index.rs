//! Embedded Qdrant at 100k chunks: `cargo bench -p cairn-qdrant --bench index` (release).
//! Query latency p50/p99 and recall@10 against exact search; the workload is
//! `cairn_index_contract::bench` (CAIRN_BENCH_POINTS overrides the size).

use cairn_index_contract::bench::{Workload, run};
use cairn_qdrant::{EdgeIndex, EdgeOptions};

#[tokio::main]
async fn main() {
    let points = std::env::var("CAIRN_BENCH_POINTS")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(100_000);
    let workload = Workload {
        points,
        ..Workload::default()
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let index = EdgeIndex::open_with(
        dir.path(),
        EdgeOptions {
            optimize_after_writes: false,
            ..EdgeOptions::default()
        },
    )
    .expect("open");
    let report = run(
        &index,
        &workload,
        |_| async { Ok(()) },
        |collection| {
            let index = index.clone();
            async move { index.optimize(&collection).await.map(|_| ()) }
        },
    )
    .await
    .expect("benchmark");
    println!(
        "qdrant-edge: {} points x {} dimensions, {} queries, k = {}: {report}",
        workload.points, workload.dimension, workload.queries, workload.k
    );
}
