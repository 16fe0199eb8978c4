//! End-to-end ingest throughput and peak memory, release build:
//! `cargo bench -p cairn-rag --bench ingest` ingests the first CAIRN_BENCH_PAGES (default 200)
//! pages of the PostgreSQL manual (scripts/fetch-corpus.sh; $CAIRN_CORPUS) with all-MiniLM-L6-v2
//! into the embedded stack (SQLite + qdrant-edge), or, with CAIRN_BENCH_DATABASE=postgres, into a
//! fresh PostgreSQL database with pgvector. Reports documents/s, chunks/s, MB/s and peak RSS.
//!
//! Where the time goes: the embedder and the index are wrapped in timers, so the report splits the
//! ingest into time inside `embed_documents`, time inside the index's calls (upserts), and the rest
//! (discovering, loading and chunking files, catalog writes). Then the embedder alone encodes the
//! same chunk texts again, in the same batches, with nothing else running: its speed beside the
//! ingest's.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use cairn_candle::{BatchSettings, DevicePreference, LocalEmbeddingModel, ModelSource};
use cairn_core::Catalog;
use cairn_core::index::{IndexError, IndexPoint, IndexQuery, IndexSpec, ScoredPoint, VectorIndex};
use cairn_core::model::{EmbeddingModel, ModelError};
use cairn_rag::{Chunker, ChunkingOptions, IngestOptions, Ingestor, NoProgress, Sizer, Source};
use uuid::Uuid;

/// Runs `call`, adding its wall time to `total` (nanoseconds).
async fn timed<T>(total: &AtomicU64, call: impl std::future::Future<Output = T>) -> T {
    let started = Instant::now();
    let out = call.await;
    let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
    total.fetch_add(nanos, Ordering::Relaxed);
    out
}

fn secs(total: &AtomicU64) -> f64 {
    Duration::from_nanos(total.load(Ordering::Relaxed)).as_secs_f64()
}

/// The embedder, timed, keeping every batch it was given (to replay them alone afterwards).
#[derive(Debug)]
struct TimedEmbedder {
    inner: Arc<LocalEmbeddingModel>,
    nanos: AtomicU64,
    batches: Mutex<Vec<Vec<String>>>,
}

#[async_trait]
impl EmbeddingModel for TimedEmbedder {
    fn model_id(&self) -> &str {
        self.inner.model_id()
    }
    fn dimension(&self) -> usize {
        self.inner.dimension()
    }
    async fn embed_documents(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, ModelError> {
        self.batches.lock().expect("lock").push(texts.to_vec());
        timed(&self.nanos, self.inner.embed_documents(texts)).await
    }
}

/// The index, every call timed.
#[derive(Debug)]
struct TimedIndex {
    inner: Arc<dyn VectorIndex>,
    nanos: AtomicU64,
}

#[async_trait]
impl VectorIndex for TimedIndex {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    async fn ping(&self) -> Result<(), IndexError> {
        timed(&self.nanos, self.inner.ping()).await
    }
    async fn ensure_collection(&self, spec: &IndexSpec) -> Result<(), IndexError> {
        timed(&self.nanos, self.inner.ensure_collection(spec)).await
    }
    async fn drop_collection(&self, collection: &str) -> Result<bool, IndexError> {
        timed(&self.nanos, self.inner.drop_collection(collection)).await
    }
    async fn upsert(&self, collection: &str, points: Vec<IndexPoint>) -> Result<(), IndexError> {
        timed(&self.nanos, self.inner.upsert(collection, points)).await
    }
    async fn delete(&self, collection: &str, chunk_ids: &[Uuid]) -> Result<(), IndexError> {
        timed(&self.nanos, self.inner.delete(collection, chunk_ids)).await
    }
    async fn point_ids(&self, collection: &str) -> Result<Vec<Uuid>, IndexError> {
        timed(&self.nanos, self.inner.point_ids(collection)).await
    }
    async fn search(&self, query: &IndexQuery) -> Result<Vec<ScoredPoint>, IndexError> {
        timed(&self.nanos, self.inner.search(query)).await
    }
}

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
    let model = Arc::new(model);
    let embedder = Arc::new(TimedEmbedder {
        inner: model.clone(),
        nanos: AtomicU64::new(0),
        batches: Mutex::new(Vec::new()),
    });
    let index = Arc::new(TimedIndex {
        inner: index,
        nanos: AtomicU64::new(0),
    });
    let options = IngestOptions::default();
    let embed_batch = options.embed_batch;
    let ingestor = Ingestor::new(catalog, index.clone(), embedder.clone(), chunker, options);
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
    let (embedding, indexing) = (secs(&embedder.nanos), secs(&index.nanos));
    let rest = seconds - embedding - indexing;
    println!(
        "  where the time went: embedding {embedding:.1} s ({:.0}%), index calls {indexing:.1} s ({:.0}%), \
         the rest (discovery, loading, chunking, catalog writes) {rest:.1} s ({:.0}%)",
        100.0 * embedding / seconds,
        100.0 * indexing / seconds,
        100.0 * rest / seconds,
    );

    // The embedder alone on the same chunk texts, in the same batches, nothing else running.
    let batches = std::mem::take(&mut *embedder.batches.lock().expect("lock"));
    let chunks: usize = batches.iter().map(Vec::len).sum();
    let started = Instant::now();
    for batch in &batches {
        model.embed_documents(batch).await.expect("embed");
    }
    let alone = started.elapsed().as_secs_f64();
    println!(
        "  the embedder alone on the ingest's {chunks} chunks ({} calls of up to {embed_batch}): {alone:.1} s, \
         {:.1} chunks/s, {:.0} tokens/s",
        batches.len(),
        chunks as f64 / alone,
        report.tokens_embedded as f64 / alone,
    );
}
