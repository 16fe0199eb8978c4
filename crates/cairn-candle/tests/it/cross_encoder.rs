//! The cross-encoder on a tiny random BERT that the test writes (no cross-encoder weights are
//! available offline): loading, scoring, and that padding in a batch does not change a score.

use std::collections::HashMap;
use std::path::Path;

use cairn_candle::{DevicePreference, LocalReranker, ModelSource};
use cairn_core::Reranker;
use candle_core::{Device, Tensor};
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::bert::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::processors::bert::BertProcessing;

const WORDS: &[&str] = &[
    "[PAD]", "[CLS]", "[SEP]", "[UNK]", "how", "do", "i", "rotate", "keys", "the", "api", "key",
    "is", "stored", "hashed", "postgres", "uses", "mvcc", "cats", "sleep", "a", "lot", "?", ".",
];
const HIDDEN: usize = 16;
const INTERMEDIATE: usize = 32;

fn write_tiny_cross_encoder(dir: &Path, with_classifier: bool) {
    let config = serde_json::json!({
        "vocab_size": WORDS.len(), "hidden_size": HIDDEN, "num_hidden_layers": 2,
        "num_attention_heads": 4, "intermediate_size": INTERMEDIATE, "hidden_act": "gelu",
        "hidden_dropout_prob": 0.0, "max_position_embeddings": 64, "type_vocab_size": 2,
        "initializer_range": 0.02, "layer_norm_eps": 1e-12, "pad_token_id": 0,
        "model_type": "bert", "architectures": ["BertForSequenceClassification"]
    });
    std::fs::write(dir.join("config.json"), config.to_string()).expect("config");

    let vocab = dir.join("vocab.txt");
    std::fs::write(&vocab, WORDS.join("\n")).expect("vocab");
    let model = WordPiece::from_file(&vocab.display().to_string())
        .unk_token("[UNK]".into())
        .build()
        .expect("wordpiece");
    let mut tokenizer = tokenizers::Tokenizer::new(model);
    tokenizer.with_normalizer(Some(BertNormalizer::default()));
    tokenizer.with_pre_tokenizer(Some(BertPreTokenizer));
    tokenizer.with_post_processor(Some(BertProcessing::new(
        ("[SEP]".into(), 2),
        ("[CLS]".into(), 1),
    )));
    tokenizer
        .save(dir.join("tokenizer.json"), false)
        .expect("tokenizer");

    let device = Device::Cpu;
    let mut tensors: HashMap<String, Tensor> = HashMap::new();
    let mut add = |name: &str, shape: &[usize]| {
        let tensor = Tensor::randn(0f32, 0.3, shape, &device).expect("randn");
        tensors.insert(name.to_owned(), tensor);
    };
    add(
        "bert.embeddings.word_embeddings.weight",
        &[WORDS.len(), HIDDEN],
    );
    add("bert.embeddings.position_embeddings.weight", &[64, HIDDEN]);
    add("bert.embeddings.token_type_embeddings.weight", &[2, HIDDEN]);
    add("bert.embeddings.LayerNorm.weight", &[HIDDEN]);
    add("bert.embeddings.LayerNorm.bias", &[HIDDEN]);
    for layer in 0..2 {
        let p = format!("bert.encoder.layer.{layer}");
        for dense in [
            "attention.self.query",
            "attention.self.key",
            "attention.self.value",
            "attention.output.dense",
        ] {
            add(&format!("{p}.{dense}.weight"), &[HIDDEN, HIDDEN]);
            add(&format!("{p}.{dense}.bias"), &[HIDDEN]);
        }
        add(
            &format!("{p}.intermediate.dense.weight"),
            &[INTERMEDIATE, HIDDEN],
        );
        add(&format!("{p}.intermediate.dense.bias"), &[INTERMEDIATE]);
        add(&format!("{p}.output.dense.weight"), &[HIDDEN, INTERMEDIATE]);
        add(&format!("{p}.output.dense.bias"), &[HIDDEN]);
        for norm in ["attention.output.LayerNorm", "output.LayerNorm"] {
            add(&format!("{p}.{norm}.weight"), &[HIDDEN]);
            add(&format!("{p}.{norm}.bias"), &[HIDDEN]);
        }
    }
    add("bert.pooler.dense.weight", &[HIDDEN, HIDDEN]);
    add("bert.pooler.dense.bias", &[HIDDEN]);
    if with_classifier {
        add("classifier.weight", &[1, HIDDEN]);
        add("classifier.bias", &[1]);
    }
    candle_core::safetensors::save(&tensors, dir.join("model.safetensors")).expect("weights");
}

#[tokio::test]
async fn a_generated_cross_encoder_scores_each_passage_the_same_alone_or_padded_in_a_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_tiny_cross_encoder(dir.path(), true);
    let reranker = LocalReranker::load(
        &ModelSource::Dir(dir.path().to_owned()),
        DevicePreference::Cpu,
        8,
    )
    .await
    .expect("load the generated cross-encoder");
    let query = "how do i rotate api keys?";
    let passages: Vec<String> = [
        "the api key is stored hashed.",
        "cats sleep a lot.",
        "postgres uses mvcc, a lot, a lot, a lot, a lot.",
        "keys",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let batched = reranker.rerank(query, &passages).await.expect("rerank");
    assert_eq!(batched.len(), passages.len());
    for (passage, score) in passages.iter().zip(&batched) {
        assert!(
            (0.0..=1.0).contains(score),
            "score {score} is a probability"
        );
        let alone = reranker
            .rerank(query, std::slice::from_ref(passage))
            .await
            .expect("rerank one");
        assert!(
            (alone[0] - score).abs() < 1e-4,
            "{passage:?}: {} alone, {score} in a padded batch",
            alone[0]
        );
    }
    let distinct: std::collections::BTreeSet<String> =
        batched.iter().map(|s| format!("{s:.6}")).collect();
    assert!(
        distinct.len() > 1,
        "scores depend on the passage: {batched:?}"
    );
    assert!(reranker.rerank(query, &[]).await.expect("empty").is_empty());
}

#[tokio::test]
async fn weights_without_a_classifier_head_are_refused_as_not_a_cross_encoder() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_tiny_cross_encoder(dir.path(), false);
    let err = LocalReranker::load(
        &ModelSource::Dir(dir.path().to_owned()),
        DevicePreference::Cpu,
        8,
    )
    .await
    .expect_err("no classifier");
    let message = err.to_string();
    assert!(message.contains("cross-encoder"), "{message}");
    assert!(message.contains("model.safetensors"), "{message}");
}
