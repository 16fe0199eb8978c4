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
