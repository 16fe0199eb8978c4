//! pgvector at 100k chunks: `cargo bench -p cairn-postgres --bench index` (release; PostgreSQL
//! with pgvector on 127.0.0.1:5432, see scripts/pg-up.sh). Query latency p50/p99 and recall@10
//! against exact search, with the HNSW index built after the bulk load; the workload is
//! `cairn_index_contract::bench` (CAIRN_BENCH_POINTS overrides the size).

use cairn_index_contract::bench::{Workload, run};
use cairn_postgres::PgVectorIndex;
use cairn_postgres::testing::TestDatabase;

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
    let database = TestDatabase::create().await;
    let pool = sqlx::PgPool::connect(&database.url).await.expect("connect");
    let index = PgVectorIndex::new(pool);
    index.migrate().await.expect("migrate");
    let report = run(
        &index,
        &workload,
        |collection| {
            let index = index.clone();
            async move { index.drop_dense_index(&collection).await }
        },
        |collection| {
            let index = index.clone();
            async move { index.build_dense_index(&collection).await }
        },
    )
    .await
    .expect("benchmark");
    println!(
        "pgvector (ef_search {}): {} points x {} dimensions, {} queries, k = {}: {report}",
        index.options().ef_search,
        workload.points,
        workload.dimension,
        workload.queries,
        workload.k
    );
}
