//! Render latency and throughput, and label-resolution latency, for the shipped RAG answer prompt.
//! `cargo bench -p cairn-prompts --bench render`; figures in docs/benchmarks.md.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use cairn_prompts::render::CompiledPrompt;
use cairn_prompts::{PromptFile, PromptRegistry, RenderLimits, Selector};
use cairn_sqlite::SqliteCatalog;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;

const RAG_ANSWER: &str = include_str!("../../../prompts/rag_answer.prompt");

fn variables() -> serde_json::Value {
    let passages: Vec<_> = (0..8)
        .map(|i| {
            json!({
                "title": format!("Handbook section {i}"),
                "source": format!("handbook/section-{i}.md"),
                "heading": "Leave > Parental leave",
                "text": "Employees are entitled to sixteen weeks of paid parental leave. ".repeat(8),
            })
        })
        .collect();
    json!({"question": "How long is parental leave?", "passages": passages})
}

fn render(c: &mut Criterion) {
    let file =
        PromptFile::parse(RAG_ANSWER, "prompts/rag_answer.prompt").expect("shipped prompt parses");
    let compiled =
        CompiledPrompt::compile(file.clone(), Some(1), RenderLimits::default()).expect("compiles");
    let variables = variables();
    let mut group = c.benchmark_group("render");
    group.throughput(Throughput::Elements(1));
    group.bench_function("rag_answer, 8 passages", |b| {
        b.iter(|| compiled.render(black_box(&variables)).expect("renders"))
    });
    group.bench_function("compile rag_answer", |b| {
        b.iter(|| {
            CompiledPrompt::compile(black_box(file.clone()), Some(1), RenderLimits::default())
                .expect("compiles")
        })
    });
    group.finish();
}

/// A registry over `catalog` with `rag_answer` v1 published and labelled `production`.
async fn labelled_registry(catalog: Arc<dyn cairn_core::Catalog>) -> Arc<PromptRegistry> {
    let registry = PromptRegistry::new(catalog, RenderLimits::default(), Duration::from_secs(3600));
    let file = PromptFile::parse(RAG_ANSWER, "rag_answer.prompt").expect("parses");
    registry
        .publish(&file, "bench", "bench")
        .await
        .expect("publish");
    registry
        .set_label("rag_answer", "production", 1, "bench", "bench")
        .await
        .expect("label");
    registry
}

fn resolve_label(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let registry = runtime.block_on(async {
        let catalog = SqliteCatalog::open(&dir.path().join("catalog.db"))
            .await
            .expect("open");
        catalog.migrate().await.expect("migrate");
        labelled_registry(Arc::new(catalog)).await
    });
    let production = Selector::Label("production".into());
    let mut group = c.benchmark_group("resolve");
    group.bench_function("label, cached", |b| {
        b.to_async(&runtime).iter(|| async {
            registry
                .resolve_number("rag_answer", &production)
                .await
                .expect("resolves")
        })
    });
    group.bench_function("label, after invalidation (SQLite)", |b| {
        b.to_async(&runtime).iter(|| async {
            registry.invalidate_label("rag_answer", "production");
            registry
                .resolve_number("rag_answer", &production)
                .await
                .expect("resolves")
        })
    });
    let variables = variables();
    group.bench_function("render by label, end to end (cached)", |b| {
        b.to_async(&runtime).iter(|| async {
            registry
                .render("rag_answer", &production, &variables)
                .await
                .expect("renders")
        })
    });
    group.finish();
}

/// The uncached path on PostgreSQL (a round trip over loopback); needs the server scripts/pg-up.sh
/// provides.
fn resolve_label_postgres(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (registry, _database) = runtime.block_on(async {
        let database = cairn_postgres::testing::TestDatabase::create().await;
        let catalog = cairn_postgres::PostgresCatalog::connect(&database.url, &Default::default())
            .await
            .expect("connect");
        catalog.migrate().await.expect("migrate");
        (labelled_registry(Arc::new(catalog)).await, database)
    });
    let production = Selector::Label("production".into());
    c.bench_function("resolve/label, after invalidation (PostgreSQL)", |b| {
        b.to_async(&runtime).iter(|| async {
            registry.invalidate_label("rag_answer", "production");
            registry
                .resolve_number("rag_answer", &production)
                .await
                .expect("resolves")
        })
    });
}

criterion_group!(benches, render, resolve_label, resolve_label_postgres);
criterion_main!(benches);
