//! `cairn bench embed | index | ingest`: the RAG pipeline's speed, reproducibly, with the figures
//! that docs/benchmarks.md quotes.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use cairn_candle::{BertEmbedder, ModelSource};
use cairn_rag::{NoProgress, Source};
use cairn_runtime::config::{Config, EmbeddingConfig};
use clap::Args;
use uuid::Uuid;

#[derive(Debug, Args)]
pub struct EmbedArgs {
    /// Batch sizes to measure, comma-separated.
    #[arg(long, default_value = "1,8,32,64")]
    pub batch_sizes: String,
    /// Sentences per measurement (10 to 60 words each).
    #[arg(long, default_value_t = 256)]
    pub sentences: usize,
    /// Also run the Python comparators (sentence-transformers with PyTorch, onnxruntime) with this
    /// interpreter (scripts/bench-python-env.sh prints one).
    #[arg(long)]
    pub python: Option<PathBuf>,
    /// The comparator script.
    #[arg(long, default_value = "scripts/bench-embed-python.py")]
    pub python_script: PathBuf,
}

fn batch_sizes(text: &str) -> Result<Vec<usize>> {
    text.split(',')
        .map(|s| {
            s.trim()
                .parse::<usize>()
                .ok()
                .filter(|&n| n > 0)
                .with_context(|| format!("`{s}` is not a batch size"))
        })
        .collect()
}

/// Sentences per second of the configured local embedding model, by batch size, beside the same
/// model in Python when asked.
pub async fn embed(config: &Config, args: &EmbedArgs) -> Result<()> {
    let EmbeddingConfig::Local {
        source,
        name,
        cpu_only,
        ..
    } = &config.embedding
    else {
        bail!("cairn bench embed measures a local model; embedding.remote is set");
    };
    let sizes = batch_sizes(&args.batch_sizes)?;
    let files = ModelSource::from_path_or_id(source).resolve().await?;
    let device = cairn_candle::device(if *cpu_only {
        cairn_candle::DevicePreference::Cpu
    } else {
        cairn_candle::DevicePreference::Auto
    })?;
    let model_dir = files
        .config
        .parent()
        .map(PathBuf::from)
        .context("the model's files have no directory")?;
    let embedder = {
        let device = device.clone();
        tokio::task::spawn_blocking(move || BertEmbedder::load(&files, &device)).await??
    };
    let texts = cairn_candle::bench::sentences(args.sentences);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "model {name} on {device:?}, {} sentences of 10-60 words, {threads} threads",
        texts.len()
    );
    let embedder = Arc::new(embedder);
    let mut ours = Vec::new();
    for &size in &sizes {
        let embedder = embedder.clone();
        let texts = texts.clone();
        let rate = tokio::task::spawn_blocking(move || {
            cairn_candle::bench::throughput(&embedder, &texts, size)
        })
        .await??;
        ours.push(rate);
    }
    let python = match &args.python {
        Some(python) => Some(
            cairn_candle::bench::compare_python(
                python,
                &args.python_script,
                &model_dir,
                &texts,
                &sizes,
                threads,
            )
            .map_err(anyhow::Error::msg)?,
        ),
        None => None,
    };
    let vectors = {
        let embedder = embedder.clone();
        let texts = texts.clone();
        tokio::task::spawn_blocking(move || cairn_candle::bench::vectors(&embedder, &texts))
            .await??
    };
    if !cairn_candle::bench::print_table(&sizes, &ours, &vectors, python.as_ref()) {
        bail!("the engines' vectors disagree (see the agreement line)");
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct IndexArgs {
    /// Points in the collection.
    #[arg(long, default_value_t = 100_000)]
    pub points: usize,
    #[arg(long, default_value_t = 384)]
    pub dimension: usize,
    /// Queries measured (each also answered exactly, for recall).
    #[arg(long, default_value_t = 200)]
    pub queries: usize,
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// `qdrant-edge` (in a temporary directory) or `pgvector` (in the configured PostgreSQL).
    #[arg(long, default_value = "qdrant-edge")]
    pub backend: String,
}

/// Query latency and recall@k of an index against exact search.
pub async fn index(config: &Config, args: &IndexArgs) -> Result<()> {
    let workload = cairn_index_contract::bench::Workload {
        points: args.points,
        dimension: args.dimension,
        queries: args.queries,
        k: args.k,
    };
    let report = match args.backend.as_str() {
        "qdrant-edge" => {
            let scratch = tempfile_dir()?;
            let index = cairn_qdrant::EdgeIndex::open_with(
                scratch.join("qdrant"),
                cairn_qdrant::EdgeOptions {
                    optimize_after_writes: false,
                    ..Default::default()
                },
            )?;
            let report = cairn_index_contract::bench::run(
                &index,
                &workload,
                |_| async { Ok(()) },
                |collection| {
                    let index = index.clone();
                    async move { index.optimize(&collection).await.map(|_| ()) }
                },
            )
            .await;
            let _ = std::fs::remove_dir_all(&scratch);
            report?
        }
        "pgvector" => {
            let catalog = cairn_runtime::catalog::open_for_use(config).await?;
            let cairn_runtime::catalog::OpenCatalog::Postgres(postgres) = catalog else {
                bail!(
                    "--backend pgvector needs a PostgreSQL catalog: pass --database-url postgres://…"
                );
            };
            let index = cairn_postgres::PgVectorIndex::new(postgres.pool().clone());
            cairn_index_contract::bench::run(
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
            .await?
        }
        other => bail!("`{other}` is not a benchmarked backend; use qdrant-edge or pgvector"),
    };
    println!(
        "{}: {} points of {} dimensions (64 clusters), {} queries, k = {}",
        args.backend, args.points, args.dimension, args.queries, args.k
    );
    println!("  {report}");
    Ok(())
}

fn tempfile_dir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("cairn-bench-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

#[derive(Debug, Args)]
pub struct IngestBenchArgs {
    /// A directory to ingest (e.g. the corpus scripts/fetch-corpus.sh fetches).
    pub path: PathBuf,
    /// The collection to ingest into (a fresh name gives a cold ingest).
    #[arg(long, default_value = "bench")]
    pub collection: String,
}

/// Peak resident memory of this process, from /proc (Linux), in MiB.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// End-to-end ingest throughput into the configured catalog and index.
pub async fn ingest(config: &Config, args: &IngestBenchArgs) -> Result<()> {
    let catalog = cairn_runtime::catalog::open_for_use(config).await?;
    let rag = cairn_runtime::rag::build(config, &catalog).await?;
    let started = Instant::now();
    let report = rag
        .ingestor
        .ingest(
            &args.collection,
            Source::Path(args.path.clone()),
            &NoProgress,
        )
        .await?;
    let seconds = started.elapsed().as_secs_f64().max(1e-9);
    let documents = report.added + report.updated + report.unchanged;
    println!(
        "{} ({} + {}): {documents} documents, {} chunks embedded, {} failed, {:.1} MB of text in {seconds:.1} s",
        config.database.describe(),
        rag.index.backend(),
        rag.embedder.model_id(),
        report.chunks_embedded,
        report.failed.len(),
        report.bytes as f64 / 1e6
    );
    println!(
        "  {:.1} documents/s, {:.1} chunks/s, {:.2} MB/s, peak RSS {}",
        documents as f64 / seconds,
        report.chunks_embedded as f64 / seconds,
        report.bytes as f64 / 1e6 / seconds,
        peak_rss_mib().map_or("unknown".into(), |m| format!("{m:.0} MiB"))
    );
    catalog.close().await;
    Ok(())
}
