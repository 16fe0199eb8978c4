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

/// Sentences per second embedding `texts` in batches of `batch`, after one warm-up batch. Texts
/// are grouped by length first, as the batching worker does (and as sentence-transformers does),
/// so that a batch pads little.
pub fn throughput(
    embedder: &BertEmbedder,
    texts: &[String],
    batch: usize,
) -> candle_core::Result<f64> {
    let batch = batch.max(1);
    let mut texts = texts.to_vec();
    texts.sort_by_key(String::len);
    embedder.embed(&texts[..batch.min(texts.len())])?;
    let started = Instant::now();
    for group in texts.chunks(batch) {
        embedder.embed(group)?;
    }
    Ok(texts.len() as f64 / started.elapsed().as_secs_f64())
}

/// Runs `scripts/bench-embed-python.py` (sentence-transformers with PyTorch, and onnxruntime) on
/// the same sentences and returns its JSON report.
pub fn compare_python(
    python: &Path,
    script: &Path,
    model_dir: &Path,
    texts: &[String],
    sizes: &[usize],
    threads: usize,
) -> Result<Value, String> {
    let file =
        std::env::temp_dir().join(format!("cairn-bench-sentences-{}.json", std::process::id()));
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
        ])
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", python.display()));
    let _ = std::fs::remove_file(&file);
    let output = output?;
    if !output.status.success() {
        return Err(format!("{} {} failed", python.display(), script.display()));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout
        .lines()
        .last()
        .ok_or("the comparator printed nothing")?;
    serde_json::from_str(last).map_err(|e| format!("the comparator's report is not JSON: {e}"))
}

/// Prints the Markdown table of docs/benchmarks.md: Cairn's rate per batch size beside the
/// Python comparators' when there are any.
pub fn print_table(sizes: &[usize], ours: &[f64], python: Option<&Value>) {
    println!(
        "| batch | cairn (candle) | sentence-transformers (PyTorch) | onnxruntime | cairn ÷ sentence-transformers |"
    );
    println!("|---|---|---|---|---|");
    for (size, rate) in sizes.iter().zip(ours) {
        let theirs = |engine: &str| python.and_then(|p| p[engine][size.to_string()].as_f64());
        let show = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.1}/s"));
        let st = theirs("sentence_transformers");
        println!(
            "| {size} | {rate:.1}/s | {} | {} | {} |",
            show(st),
            show(theirs("onnxruntime")),
            st.map_or("-".to_owned(), |st| format!("{:.2}×", rate / st))
        );
    }
    if let Some(python) = python {
        println!("python: {}", python["versions"]);
    }
}
