//! The BERT embedder on the packaged all-MiniLM-L6-v2 against reference vectors from an independent
//! implementation (scripts/reference-embeddings.py), and the cross-encoder on a tiny generated model.

mod cross_encoder;

use std::sync::Arc;
use std::time::Duration;

use cairn_candle::{BatchSettings, DevicePreference, LocalEmbeddingModel, ModelSource};
use cairn_core::EmbeddingModel;
use serde::Deserialize;

#[derive(Deserialize)]
struct Reference {
    sentences: Vec<ReferenceSentence>,
}

#[derive(Deserialize)]
struct ReferenceSentence {
    text: String,
    tokens: usize,
    vector: Vec<f32>,
}

fn reference() -> Reference {
    serde_json::from_str(include_str!("../fixtures/minilm-reference.json")).expect("fixture")
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

async fn minilm(settings: BatchSettings) -> LocalEmbeddingModel {
    LocalEmbeddingModel::load(
        &ModelSource::Dir(cairn_testkit::test_model("minilm")),
        Some("all-MiniLM-L6-v2".into()),
        DevicePreference::Cpu,
        settings,
    )
    .await
    .expect("load all-MiniLM-L6-v2")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minilm_matches_the_reference_vectors_in_one_padded_batch() {
    let model = minilm(BatchSettings::default()).await;
    assert_eq!(model.dimension(), 384);
    assert_eq!(model.model_id(), "all-MiniLM-L6-v2");
    assert_eq!(
        model.max_tokens(),
        256,
        "sentence_bert_config.json's limit, not tokenizer.json's 128"
    );
    let reference = reference();
    let texts: Vec<String> = reference.sentences.iter().map(|s| s.text.clone()).collect();
    let vectors = model.embed_documents(&texts).await.expect("embed");
    for (sentence, vector) in reference.sentences.iter().zip(&vectors) {
        let similarity = cosine(&sentence.vector, vector);
        assert!(
            similarity >= 0.999,
            "cosine {similarity} for {:?} ({} tokens)",
            sentence.text.chars().take(40).collect::<String>(),
            sentence.tokens
        );
        let norm: f32 = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "vectors are unit length");
    }
    let long = reference
        .sentences
        .iter()
        .find(|s| s.tokens == 256)
        .expect("the fixture has a sentence truncated at 256 tokens");
    assert!(
        model
            .tokenizer()
            .encode(long.text.as_str(), true)
            .expect("count")
            .len()
            > 256
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_queries_share_forward_passes_and_match_single_embeddings() {
    let reference = reference();
    // One batch exactly as large as the queries: the worker gathers until it is full, whenever each
    // query arrives; the window is long enough that only a hang would reach it.
    let model = minilm(BatchSettings {
        max_batch: reference.sentences.len(),
        window: Duration::from_secs(3600),
    })
    .await;
    let model = Arc::new(model);
    let before = model.forward_passes();
    let calls: Vec<_> = reference
        .sentences
        .iter()
        .map(|s| {
            let model = model.clone();
            let text = s.text.clone();
            tokio::spawn(async move { model.embed_query(&text).await })
        })
        .collect();
    for (sentence, call) in reference.sentences.iter().zip(calls) {
        let vector = call.await.expect("join").expect("embed");
        assert!(cosine(&sentence.vector, &vector) >= 0.999);
    }
    let passes = model.forward_passes() - before;
    assert_eq!(
        passes,
        1,
        "{} concurrent queries took {passes} forward passes",
        reference.sentences.len()
    );
}

#[tokio::test]
async fn a_directory_that_is_not_a_model_is_refused_with_the_missing_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = LocalEmbeddingModel::load(
        &ModelSource::Dir(dir.path().to_owned()),
        None,
        DevicePreference::Cpu,
        BatchSettings::default(),
    )
    .await
    .expect_err("not a model");
    assert!(err.to_string().contains("config.json"), "{err}");
}
