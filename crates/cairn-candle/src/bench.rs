//! Measuring embedding throughput: the fixed sentence set, the timing loop, the Python comparators
//! and the result table, shared by
//! `cairn bench embed` and `cargo bench -p cairn-candle --bench embed`.

use std::path::Path;
use std::time::Instant;

use serde_json::Value;

use crate::BertEmbedder;

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

/// `count` sentences of 10 to 60 words, the same on every run (a fixed-seed generator).
pub fn sentences(count: usize) -> Vec<String> {
    let mut state: u64 = 42;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        state >> 33
    };
    (0..count)
        .map(|_| {
            let words = 10 + (next() % 51) as usize;
            let mut text: Vec<&str> = (0..words)
                .map(|_| WORDS[(next() % WORDS.len() as u64) as usize])
                .collect();
            text.push(".");
            text.join(" ")
        })
        .collect()
}

/// Timed passes over the whole sentence list after the warm-up, for every engine (Cairn here, the
/// Python comparators through `--repeats`): each figure is the median pass.
pub const PASSES: usize = 3;

/// The batch size the engines' vectors are compared at.
const COMPARE_BATCH: usize = 32;

/// Sentences per second embedding `texts` in batches of `batch`: one warm-up batch, then
/// [`PASSES`] passes over every text, and the median pass. Texts are grouped by length first, as
/// the batching worker does (and as sentence-transformers does), so that a batch pads little.
pub fn throughput(
    embedder: &BertEmbedder,
    texts: &[String],
    batch: usize,
) -> candle_core::Result<f64> {
    let batch = batch.max(1);
    let mut texts = texts.to_vec();
    texts.sort_by_key(String::len);
    embedder.embed(&texts[..batch.min(texts.len())])?;
    let mut passes = Vec::with_capacity(PASSES);
    for _ in 0..PASSES {
        let started = Instant::now();
        for group in texts.chunks(batch) {
            embedder.embed(group)?;
        }
        passes.push(started.elapsed().as_secs_f64());
    }
    Ok(texts.len() as f64 / median(&mut passes).max(1e-9))
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// Cairn's vectors for `texts`, in their order (batches of 32), for the comparison with the Python
/// engines.
pub fn vectors(embedder: &BertEmbedder, texts: &[String]) -> candle_core::Result<Vec<Vec<f32>>> {
    let mut out = Vec::with_capacity(texts.len());
    for group in texts.chunks(COMPARE_BATCH) {
        out.extend(embedder.embed(group)?);
    }
    Ok(out)
}

/// The smallest cosine similarity between `a[i]` and `b[i]` over every `i`; `None` when the two
/// lists differ in length or a vector's dimension differs.
pub fn min_cosine(a: &[Vec<f32>], b: &[Vec<f32>]) -> Option<f64> {
    if a.len() != b.len() || a.is_empty() {
        return None;
    }
    let mut min = f64::INFINITY;
    for (x, y) in a.iter().zip(b) {
        if x.len() != y.len() {
            return None;
        }
        let dot: f64 = x
            .iter()
            .zip(y)
            .map(|(p, q)| f64::from(*p) * f64::from(*q))
            .sum();
        let nx: f64 = x.iter().map(|p| f64::from(*p).powi(2)).sum::<f64>().sqrt();
        let ny: f64 = y.iter().map(|q| f64::from(*q).powi(2)).sum::<f64>().sqrt();
        min = min.min(dot / (nx * ny).max(1e-12));
    }
    Some(min)
}

/// What `scripts/bench-embed-python.py` reports: its JSON summary, and each engine's vectors for
/// the benchmark's sentences (in their order).
#[derive(Debug)]
pub struct PythonRun {
    pub report: Value,
    pub vectors: Vec<(String, Vec<Vec<f32>>)>,
}

/// Runs `scripts/bench-embed-python.py` (sentence-transformers with PyTorch, and onnxruntime) on
/// the same sentences, timed the same way ([`PASSES`]), and reads back its report and vectors.
pub fn compare_python(
    python: &Path,
    script: &Path,
    model_dir: &Path,
    texts: &[String],
    sizes: &[usize],
    threads: usize,
) -> Result<PythonRun, String> {
    let stem = std::env::temp_dir().join(format!("cairn-bench-{}", std::process::id()));
    let file = stem.with_extension("sentences.json");
    let vectors_file = stem.with_extension("vectors.json");
    let json = serde_json::to_vec(texts).map_err(|e| e.to_string())?;
    std::fs::write(&file, json).map_err(|e| format!("{}: {e}", file.display()))?;
    let sizes: Vec<String> = sizes.iter().map(usize::to_string).collect();
    let output = std::process::Command::new(python)
        .arg(script)
        .arg("--model")
        .arg(model_dir)
        .arg("--sentences")
        .arg(&file)
        .args([
            "--batch-sizes",
            &sizes.join(","),
            "--threads",
            &threads.to_string(),
            "--repeats",
            &PASSES.to_string(),
            "--compare-batch",
            &COMPARE_BATCH.to_string(),
        ])
        .arg("--vectors-out")
        .arg(&vectors_file)
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", python.display()));
    let _ = std::fs::remove_file(&file);
    let vectors = std::fs::read(&vectors_file);
    let _ = std::fs::remove_file(&vectors_file);
    let output = output?;
    if !output.status.success() {
        return Err(format!("{} {} failed", python.display(), script.display()));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout
        .lines()
        .last()
        .ok_or("the comparator printed nothing")?;
    let report: Value = serde_json::from_str(last)
        .map_err(|e| format!("the comparator's report is not JSON: {e}"))?;
    let vectors = vectors.map_err(|e| format!("{}: {e}", vectors_file.display()))?;
    let vectors: std::collections::BTreeMap<String, Vec<Vec<f32>>> =
        serde_json::from_slice(&vectors).map_err(|e| format!("the comparator's vectors: {e}"))?;
    Ok(PythonRun {
        report,
        vectors: vectors.into_iter().collect(),
    })
}

/// Prints the Markdown table of docs/benchmarks.md (Cairn's rate per batch size beside the Python
/// comparators' when there are any), how each figure was timed, and how closely the engines'
/// vectors agree on the benchmark's sentences. Returns false when an engine disagrees with Cairn
/// (minimum cosine below 0.999) or its vectors are missing.
pub fn print_table(
    sizes: &[usize],
    ours: &[f64],
    ours_vectors: &[Vec<f32>],
    python: Option<&PythonRun>,
) -> bool {
    println!(
        "| batch | cairn (candle) | sentence-transformers (PyTorch) | onnxruntime | cairn ÷ sentence-transformers |"
    );
    println!("|---|---|---|---|---|");
    let report = python.map(|p| &p.report);
    for (size, rate) in sizes.iter().zip(ours) {
        let theirs = |engine: &str| report.and_then(|p| p[engine][size.to_string()].as_f64());
        let show = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.1}/s"));
        let st = theirs("sentence_transformers");
        println!(
            "| {size} | {rate:.1}/s | {} | {} | {} |",
            show(st),
            show(theirs("onnxruntime")),
            st.map_or("-".to_owned(), |st| format!("{:.2}×", rate / st))
        );
    }
    println!(
        "timing: every engine one warm-up batch, then the median of {PASSES} passes over all {} sentences",
        ours_vectors.len()
    );
    let Some(python) = python else {
        return true;
    };
    let mut agree = true;
    let mut pairs = Vec::new();
    for (engine, theirs) in &python.vectors {
        let min = min_cosine(ours_vectors, theirs);
        agree &= min.is_some_and(|m| m >= 0.999);
        pairs.push(format!(
            "cairn vs {engine} {}",
            min.map_or("MISSING".to_owned(), |m| format!("{m:.6}"))
        ));
    }
    agree &= python.vectors.len() == 2;
    if let Some(m) = python.report["min_cosine"].as_f64() {
        pairs.push(format!("sentence_transformers vs onnxruntime {m:.6}"));
    }
    println!(
        "agreement on the {} sentences (min cosine, batches of {COMPARE_BATCH}): {} -> {}",
        ours_vectors.len(),
        pairs.join(", "),
        if agree { "ok" } else { "MISMATCH" }
    );
    println!("python: {}", python.report["versions"]);
    agree
}
