//! mistral.rs on the packaged SmolLM2-135M-Instruct GGUF (scripts/fetch-models.sh), on the CPU.

use std::path::PathBuf;

use cairn_core::model::{
    ChatChunk, ChatMessage, ChatModel, ChatRequest, FinishReason, ModelError, Role,
};
use cairn_local::{LocalError, LocalModelSource, LocalOptions, MistralRsChatModel};
use futures_util::StreamExt;
use tokio::sync::OnceCell;

fn models_dir() -> PathBuf {
    std::env::var("CAIRN_TEST_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/cairn-models")
        })
}

fn smollm2() -> PathBuf {
    let path = models_dir().join("smollm2-135m-instruct-q4_1.gguf");
    assert!(
        path.is_file(),
        "{} is missing: run scripts/fetch-models.sh (scripts/test.sh does)",
        path.display()
    );
    path
}

/// One engine for the whole test binary: loading takes seconds, requests are independent.
static MODEL: OnceCell<MistralRsChatModel> = OnceCell::const_new();

async fn model() -> &'static MistralRsChatModel {
    MODEL
        .get_or_init(|| async {
            MistralRsChatModel::load(
                &LocalModelSource::Gguf(smollm2()),
                LocalOptions {
                    force_cpu: true,
                    max_num_seqs: 4,
                },
            )
            .await
            .expect("SmolLM2 loads")
        })
        .await
}

fn ask(question: &str, max_tokens: u32) -> ChatRequest {
    ChatRequest {
        messages: vec![
            ChatMessage::new(
                Role::System,
                "You are a helpful assistant. Answer in one short sentence.",
            ),
            ChatMessage::new(Role::User, question),
        ],
        max_tokens: Some(max_tokens),
        temperature: Some(0.0),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_greedily_and_reproducibly() {
    let model = model().await;
    let first = model
        .complete(&ask("What is the capital of France?", 12))
        .await
        .expect("answer");
    assert!(!first.message.content.trim().is_empty(), "{first:?}");
    assert!(
        first.usage.input_tokens > 10 && first.usage.output_tokens <= 12,
        "{:?}",
        first.usage
    );
    assert!(matches!(
        first.finish_reason,
        FinishReason::Stop | FinishReason::Length
    ));
    let second = model
        .complete(&ask("What is the capital of France?", 12))
        .await
        .expect("answer");
    assert_eq!(
        first.message.content, second.message.content,
        "temperature 0 means greedy decoding"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_tokens_then_finishes_with_usage() {
    let model = model().await;
    let chunks: Vec<Result<ChatChunk, ModelError>> = model
        .stream(&ask("Name a colour.", 8))
        .await
        .expect("stream")
        .collect()
        .await;
    let text: String = chunks
        .iter()
        .filter_map(|c| match c {
            Ok(ChatChunk::Delta(text)) => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert!(!text.trim().is_empty(), "{chunks:?}");
    assert!(
        chunks
            .iter()
            .filter(|c| matches!(c, Ok(ChatChunk::Delta(_))))
            .count()
            > 1,
        "streamed in pieces: {chunks:?}"
    );
    match chunks.last() {
        Some(Ok(ChatChunk::Finish { usage, .. })) => assert!(
            usage.output_tokens >= 1 && usage.input_tokens > 0,
            "{usage:?}"
        ),
        other => panic!("the stream ends with Finish, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prompt_over_the_context_window_is_refused_as_such() {
    let model = model().await;
    let window = model
        .context_length()
        .expect("the GGUF declares its context length");
    let long = "word ".repeat(window + 100);
    let error = model.complete(&ask(&long, 4)).await.expect_err("too long");
    assert!(
        matches!(&error, ModelError::ContextLengthExceeded(m) if m.contains(&window.to_string())),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_missing_file_is_named_without_touching_the_hub() {
    let missing = models_dir().join("no-such-model.gguf");
    let error = MistralRsChatModel::load(
        &LocalModelSource::Gguf(missing.clone()),
        LocalOptions::default(),
    )
    .await
    .expect_err("missing");
    assert!(
        matches!(&error, LocalError::Missing(path) if path == &missing),
        "{error:?}"
    );
    assert!(error.to_string().contains("scripts/fetch-models.sh"));
}

#[test]
fn sources_are_recognised() {
    assert_eq!(
        LocalModelSource::from_path_or_id("/m/x.GGUF"),
        LocalModelSource::Gguf("/m/x.GGUF".into())
    );
    assert_eq!(
        LocalModelSource::from_path_or_id("HuggingFaceTB/SmolLM2-135M-Instruct"),
        LocalModelSource::Hub("HuggingFaceTB/SmolLM2-135M-Instruct".into())
    );
    let dir = std::env::temp_dir();
    assert_eq!(
        LocalModelSource::from_path_or_id(&dir.display().to_string()),
        LocalModelSource::Safetensors(dir)
    );
}

/// GPT-2's byte-to-character map, which byte-level BPE vocabularies are written in.
fn byte_chars() -> Vec<char> {
    let mut printable: Vec<u32> = (u32::from(b'!')..=u32::from(b'~'))
        .chain(0xA1..=0xAC)
        .chain(0xAE..=0xFF)
        .collect();
    let mut chars: Vec<u32> = printable.clone();
    let mut extra = 0;
    for byte in 0..256u32 {
        if !printable.contains(&byte) {
            printable.push(byte);
            chars.push(256 + extra);
            extra += 1;
        }
    }
    let mut map = vec!['?'; 256];
    for (byte, ch) in printable.iter().zip(chars) {
        map[*byte as usize] = char::from_u32(ch).expect("a char");
    }
    map
}

/// A tiny random Llama in a safetensors directory: one layer, 16 wide, a byte-level vocabulary.
fn tiny_llama(dir: &std::path::Path) {
    use candle_core::{DType, Device, Tensor};
    let vocab: serde_json::Map<String, serde_json::Value> = byte_chars()
        .into_iter()
        .enumerate()
        .map(|(id, ch)| (ch.to_string(), serde_json::json!(id)))
        .collect();
    let special = |id: u32, content: &str| {
        serde_json::json!({"id": id, "content": content, "single_word": false, "lstrip": false,
                           "rstrip": false, "normalized": false, "special": true})
    };
    let byte_level = serde_json::json!({"type": "ByteLevel", "add_prefix_space": false,
                                        "trim_offsets": true, "use_regex": true});
    let tokenizer = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null,
        "added_tokens": [special(256, "<s>"), special(257, "</s>")],
        "normalizer": null, "pre_tokenizer": byte_level, "post_processor": null, "decoder": byte_level,
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
                  "vocab": vocab, "merges": []}
    });
    let config = serde_json::json!({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 16,
        "intermediate_size": 32, "num_attention_heads": 2, "num_key_value_heads": 2,
        "num_hidden_layers": 1, "vocab_size": 258, "max_position_embeddings": 512,
        "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": false,
        "bos_token_id": 256, "eos_token_id": 257, "hidden_act": "silu", "torch_dtype": "bfloat16"
    });
    let tokenizer_config = serde_json::json!({
        "bos_token": "<s>", "eos_token": "</s>", "add_bos_token": false,
        "chat_template": "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}"
    });
    for (name, value) in [
        ("tokenizer.json", tokenizer),
        ("config.json", config),
        ("tokenizer_config.json", tokenizer_config),
    ] {
        std::fs::write(dir.join(name), value.to_string()).expect("write");
    }
    let device = Device::Cpu;
    let random = |shape: &[usize]| {
        Tensor::randn(0f32, 0.2, shape, &device)
            .and_then(|t| t.to_dtype(DType::BF16))
            .expect("tensor")
    };
    let ones = |n: usize| Tensor::ones(n, DType::BF16, &device).expect("tensor");
    let layer = "model.layers.0";
    let mut tensors = std::collections::HashMap::new();
    tensors.insert("model.embed_tokens.weight".to_owned(), random(&[258, 16]));
    tensors.insert("lm_head.weight".to_owned(), random(&[258, 16]));
    tensors.insert("model.norm.weight".to_owned(), ones(16));
    for proj in ["q_proj", "k_proj", "v_proj", "o_proj"] {
        tensors.insert(
            format!("{layer}.self_attn.{proj}.weight"),
            random(&[16, 16]),
        );
    }
    tensors.insert(format!("{layer}.mlp.gate_proj.weight"), random(&[32, 16]));
    tensors.insert(format!("{layer}.mlp.up_proj.weight"), random(&[32, 16]));
    tensors.insert(format!("{layer}.mlp.down_proj.weight"), random(&[16, 32]));
    tensors.insert(format!("{layer}.input_layernorm.weight"), ones(16));
    tensors.insert(format!("{layer}.post_attention_layernorm.weight"), ones(16));
    candle_core::safetensors::save(&tensors, dir.join("model.safetensors")).expect("save");
}

/// A safetensors directory loads (with F32 activations on the CPU) and answers.
#[tokio::test]
async fn a_safetensors_directory_loads_and_answers() {
    let dir = tempfile::tempdir().expect("temp dir");
    tiny_llama(dir.path());
    let model = MistralRsChatModel::load(
        &LocalModelSource::from_path_or_id(&dir.path().display().to_string()),
        LocalOptions {
            force_cpu: true,
            max_num_seqs: 1,
        },
    )
    .await
    .expect("the tiny model loads");
    let response = model.complete(&ask("Hi?", 4)).await.expect("an answer");
    assert_eq!(response.usage.output_tokens, 4, "{response:?}");
    assert_eq!(response.finish_reason, FinishReason::Length);
}
