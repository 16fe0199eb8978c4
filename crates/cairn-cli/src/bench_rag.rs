//! `cairn bench embed | index | ingest`: the RAG pipeline's speed, reproducibly, with the figures
//! that docs/benchmarks.md quotes.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use cairn_candle::{BertEmbedder, ModelSource};
use cairn_core::index::{IndexPoint, IndexQuery, IndexSpec, Probe, VectorIndex};
use cairn_rag::{NoProgress, Source};
use cairn_server::config::{Config, EmbeddingConfig};
use clap::Args;
use serde_json::Value;
use uuid::Uuid;

/// A small deterministic generator (64-bit LCG), so every run measures the same data.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 11
    }
    fn unit(&mut self) -> f32 {
        (self.next() as f64 / (1u64 << 53) as f64) as f32
    }
    /// A standard normal sample (Box-Muller).
    fn normal(&mut self) -> f32 {
        let u = self.unit().max(1e-7);
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
    }
}

const WORDS: &[&str] = &[
    "the",
    "index",
    "query",
    "database",
    "server",
    "returns",
    "configures",
    "a",
    "connection",
    "pool",
    "with",
    "each",
    "request",
    "model",
    "answers",
    "cited",
    "passage",
    "from",
    "document",
    "collection",
    "user",
    "asks",
    "about",
    "latency",
    "throughput",
    "cache",
    "token",
    "embedding",
    "vector",
    "search",
    "results",
    "are",
    "ranked",
    "by",
    "score",
    "and",
    "filtered",
    "metadata",
    "operators",
    "deploy",
    "cluster",
    "replicas",
    "backup",
    "restore",
    "schema",
    "migration",
];

fn sentences(count: usize) -> Vec<String> {
    let mut rng = Lcg(42);
    (0..count)
        .map(|_| {
            let words = 10 + (rng.next() % 51) as usize;
            let mut text: Vec<&str> = (0..words)
                .map(|_| WORDS[(rng.next() % WORDS.len() as u64) as usize])
                .collect();
            text.push(".");
            text.join(" ")
        })
        .collect()
}

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
    let texts = sentences(args.sentences);
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
        let rate = tokio::task::spawn_blocking(move || -> Result<f64> {
            embedder.embed(&texts[..size.min(texts.len())])?;
            let started = Instant::now();
            for batch in texts.chunks(size) {
                embedder.embed(batch)?;
            }
            Ok(texts.len() as f64 / started.elapsed().as_secs_f64())
        })
        .await??;
        ours.push(rate);
    }
    let python = match &args.python {
        Some(python) => Some(run_python(
            python,
            &args.python_script,
            &model_dir,
            &texts,
            &args.batch_sizes,
            threads,
        )?),
        None => None,
    };
    println!(
        "| batch | cairn (candle) | sentence-transformers (PyTorch) | onnxruntime | cairn ÷ sentence-transformers |"
    );
    println!("|---|---|---|---|---|");
    for (size, rate) in sizes.iter().zip(&ours) {
        let theirs = |engine: &str| {
            python
                .as_ref()
                .and_then(|p| p[engine][size.to_string()].as_f64())
        };
        let st = theirs("sentence_transformers");
        let ort = theirs("onnxruntime");
        let show = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.1}/s"));
        println!(
            "| {size} | {rate:.1}/s | {} | {} | {} |",
            show(st),
            show(ort),
            st.map_or("-".to_owned(), |st| format!("{:.2}×", rate / st))
        );
    }
    if let Some(python) = python {
        println!("python: {}", python["versions"]);
    }
    Ok(())
}

fn run_python(
    python: &PathBuf,
    script: &PathBuf,
    model_dir: &std::path::Path,
    texts: &[String],
    sizes: &str,
    threads: usize,
) -> Result<Value> {
    let file =
        std::env::temp_dir().join(format!("cairn-bench-sentences-{}.json", std::process::id()));
    std::fs::write(&file, serde_json::to_vec(texts)?)?;
    let output = std::process::Command::new(python)
        .arg(script)
        .arg("--model")
        .arg(model_dir)
        .arg("--sentences")
        .arg(&file)
        .args(["--batch-sizes", sizes, "--threads", &threads.to_string()])
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run {}", python.display()))?;
    let _ = std::fs::remove_file(&file);
    if !output.status.success() {
        bail!("{} {} failed", python.display(), script.display());
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout
        .lines()
        .last()
        .context("the comparator printed nothing")?;
    Ok(serde_json::from_str(last)?)
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

/// Unit vectors around 64 centroids: clustered, as real embeddings are.
fn clustered(
    count: usize,
    dimension: usize,
    centroids: &[Vec<f32>],
    rng: &mut Lcg,
) -> Vec<Vec<f32>> {
    (0..count)
        .map(|_| {
            let centre = &centroids[(rng.next() % centroids.len() as u64) as usize];
            let mut v: Vec<f32> = centre
                .iter()
                .map(|c| c + 0.6 * rng.normal() / (dimension as f32).sqrt())
                .collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.iter_mut().for_each(|x| *x /= norm);
            v
        })
        .collect()
}

fn exact_top(points: &[Vec<f32>], query: &[f32], k: usize) -> Vec<usize> {
    let mut scored: Vec<(f32, usize)> = points
        .iter()
        .enumerate()
        .map(|(i, p)| (p.iter().zip(query).map(|(a, b)| a * b).sum(), i))
        .collect();
    scored.select_nth_unstable_by(k, |a, b| b.0.total_cmp(&a.0));
    scored.truncate(k);
    scored.into_iter().map(|(_, i)| i).collect()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(rank).copied().unwrap_or(f64::NAN)
}

/// Query latency and recall@k of an index against exact search.
pub async fn index(config: &Config, args: &IndexArgs) -> Result<()> {
    let mut rng = Lcg(7);
    let centroids: Vec<Vec<f32>> = (0..64)
        .map(|_| {
            let mut v: Vec<f32> = (0..args.dimension).map(|_| rng.normal()).collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.iter_mut().for_each(|x| *x /= norm);
            v
        })
        .collect();
    let points = clustered(args.points, args.dimension, &centroids, &mut rng);
    let queries = clustered(args.queries, args.dimension, &centroids, &mut rng);
    let ids: Vec<Uuid> = (0..points.len())
        .map(|i| Uuid::from_u128(i as u128 + 1))
        .collect();
    let collection = format!("bench-{}", Uuid::new_v4().simple());
    let scratch = tempfile_dir()?;

    let (index, pg, edge): (
        Arc<dyn VectorIndex>,
        Option<cairn_postgres::PgVectorIndex>,
        Option<cairn_qdrant::EdgeIndex>,
    ) = match args.backend.as_str() {
        "qdrant-edge" => {
            let index = cairn_qdrant::EdgeIndex::open_with(
                scratch.join("qdrant"),
                cairn_qdrant::EdgeOptions {
                    optimize_after_writes: false,
                    ..Default::default()
                },
            )?;
            (Arc::new(index.clone()), None, Some(index))
        }
        "pgvector" => {
            let catalog = cairn_server::serve::open_for_use(config).await?;
            let cairn_server::serve::OpenCatalog::Postgres(postgres) = catalog else {
                bail!(
                    "--backend pgvector needs a PostgreSQL catalog: pass --database-url postgres://…"
                );
            };
            let index = cairn_postgres::PgVectorIndex::new(postgres.pool().clone());
            (Arc::new(index.clone()), Some(index), None)
        }
        other => bail!("`{other}` is not a benchmarked backend; use qdrant-edge or pgvector"),
    };
    index
        .ensure_collection(&IndexSpec {
            collection: collection.clone(),
            embedding_model: "bench".into(),
            dimension: args.dimension,
        })
        .await?;
    if let Some(pg) = &pg {
        pg.drop_dense_index(&collection).await?;
    }
    let started = Instant::now();
    for (batch, ids) in points.chunks(1000).zip(ids.chunks(1000)) {
        let batch: Vec<IndexPoint> = batch
            .iter()
            .zip(ids)
            .map(|(vector, id)| IndexPoint {
                chunk_id: *id,
                document_id: *id,
                vector: vector.clone(),
                text: String::new(),
                metadata: serde_json::Map::new(),
            })
            .collect();
        index.upsert(&collection, batch).await?;
    }
    let loaded = started.elapsed();
    let started = Instant::now();
    if let Some(pg) = &pg {
        pg.build_dense_index(&collection).await?;
    } else if let Some(edge) = &edge {
        edge.optimize(&collection).await?;
    }
    let built = started.elapsed();

    let mut latencies = Vec::with_capacity(queries.len());
    let mut found = 0usize;
    for query in &queries {
        let started = Instant::now();
        let hits = index
            .search(&IndexQuery {
                collection: collection.clone(),
                probe: Probe::Dense(query.clone()),
                filter: None,
                top_k: args.k,
                with_vectors: false,
            })
            .await?;
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
        let truth = exact_top(&points, query, args.k);
        found += hits
            .iter()
            .filter(|h| truth.iter().any(|&i| ids[i] == h.chunk_id))
            .count();
    }
    index.drop_collection(&collection).await?;
    let _ = std::fs::remove_dir_all(&scratch);
    latencies.sort_by(f64::total_cmp);
    println!(
        "{}: {} points of {} dimensions (64 clusters), {} queries, k = {}",
        args.backend, args.points, args.dimension, args.queries, args.k
    );
    println!(
        "  load {:.1} s ({:.0} points/s), index build {:.1} s",
        loaded.as_secs_f64(),
        args.points as f64 / loaded.as_secs_f64(),
        built.as_secs_f64()
    );
    println!(
        "  query latency p50 {:.2} ms, p99 {:.2} ms; recall@{} {:.3}",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        args.k,
        found as f64 / (queries.len() * args.k) as f64
    );
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
    let catalog = cairn_server::serve::open_for_use(config).await?;
    let rag = cairn_server::rag::build(config, &catalog).await?;
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
