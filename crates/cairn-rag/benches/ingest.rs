//! End-to-end ingest throughput and peak memory, release build:
//! `cargo bench -p cairn-rag --bench ingest` ingests the first CAIRN_BENCH_PAGES (default 200)
//! pages of the PostgreSQL manual (scripts/fetch-corpus.sh; $CAIRN_CORPUS) with all-MiniLM-L6-v2
//! into the embedded stack (SQLite + qdrant-edge), or, with CAIRN_BENCH_DATABASE=postgres, into a
//! fresh PostgreSQL database with pgvector. Reports documents/s, chunks/s, MB/s and peak RSS.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use cairn_candle::{BatchSettings, DevicePreference, LocalEmbeddingModel, ModelSource};
use cairn_core::Catalog;
use cairn_core::index::VectorIndex;
use cairn_rag::{Chunker, ChunkingOptions, IngestOptions, Ingestor, NoProgress, Sizer, Source};

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        })
        .and_then(|kib| kib.parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

#[tokio::main]
async fn main() {
    let corpus = std::env::var("CAIRN_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join(".cache/cairn-corpus/postgresql-15/usr/share/doc/postgresql-doc-15/html")
        });
    let pages: usize = std::env::var("CAIRN_BENCH_PAGES")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(200);
    let scratch = tempfile::tempdir().expect("tempdir");
    let docs = scratch.path().join("docs");
    std::fs::create_dir_all(&docs).expect("mkdir");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&corpus)
        .unwrap_or_else(|e| panic!("{}: {e}; run scripts/fetch-corpus.sh", corpus.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "html"))
        .collect();
    files.sort();
    for file in files.iter().take(pages) {
        std::fs::copy(file, docs.join(file.file_name().expect("name"))).expect("copy");
    }

    let model = LocalEmbeddingModel::load(
        &ModelSource::Dir(cairn_testkit::test_model("minilm")),
        Some("all-MiniLM-L6-v2".into()),
        DevicePreference::Auto,
        BatchSettings::default(),
    )
    .await
    .expect("model");
    let postgres = std::env::var("CAIRN_BENCH_DATABASE").is_ok_and(|d| d == "postgres");
    let _database;
    let (catalog, index, mode): (Arc<dyn Catalog>, Arc<dyn VectorIndex>, &str) = if postgres {
        let database = cairn_postgres::testing::TestDatabase::create().await;
        let catalog = cairn_postgres::PostgresCatalog::connect(
            &database.url,
            &cairn_postgres::PostgresOptions::default(),
        )
        .await
        .expect("connect");
        catalog.migrate().await.expect("migrate");
        let index = cairn_postgres::PgVectorIndex::new(catalog.pool().clone());
        _database = Some(database);
        (Arc::new(catalog), Arc::new(index), "PostgreSQL + pgvector")
    } else {
        _database = None;
        let catalog = cairn_sqlite::SqliteCatalog::open(&scratch.path().join("catalog.db"))
            .await
            .expect("catalog");
        catalog.migrate().await.expect("migrate");
        let index = cairn_qdrant::EdgeIndex::open(scratch.path().join("qdrant")).expect("index");
        (Arc::new(catalog), Arc::new(index), "SQLite + qdrant-edge")
    };
    let chunker = Chunker::new(
        Sizer::Tokens {
            id: "all-MiniLM-L6-v2".into(),
            tokenizer: model.tokenizer(),
        },
        ChunkingOptions::default(),
    );
    let ingestor = Ingestor::new(
        catalog,
        index,
        Arc::new(model),
        chunker,
        IngestOptions::default(),
    );
    let started = Instant::now();
    let report = ingestor
        .ingest("bench", Source::Path(docs), &NoProgress)
        .await
        .expect("ingest");
    let seconds = started.elapsed().as_secs_f64();
    let documents = report.added + report.updated + report.unchanged;
    println!(
        "{mode}: {documents} documents, {} chunks ({} tokens), {:.2} MB of text, {} failed, in {seconds:.1} s",
        report.chunks_embedded,
        report.tokens_embedded,
        report.bytes as f64 / 1e6,
        report.failed.len()
    );
    println!(
        "  {:.2} documents/s, {:.1} chunks/s, {:.3} MB/s, {:.0} tokens/s, peak RSS {:.0} MiB",
        documents as f64 / seconds,
        report.chunks_embedded as f64 / seconds,
        report.bytes as f64 / 1e6 / seconds,
        report.tokens_embedded as f64 / seconds,
        peak_rss_mib()
    );
}
