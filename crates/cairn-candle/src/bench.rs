//! Measuring embedding throughput: the fixed sentence set and the timing loop shared by
//! `cairn bench embed` and `cargo bench -p cairn-candle --bench embed`.

use std::time::Instant;

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
