//! The adapters against a scripted OpenAI-compatible server on loopback: request shapes for OpenAI,
//! Azure and compatible servers, responses, streams with tool calls, and every failure class.

use cairn_core::model::{
    ChatChunk, ChatMessage, ChatModel, ChatRequest, EmbeddingModel, FinishReason, ModelError, Role,
    ToolChoice, ToolDefinition,
};
use cairn_openai::{Auth, Endpoint, OpenAiChatModel, OpenAiEmbeddingModel, Timeouts};
use cairn_testkit::ScriptedUpstream;
use futures_util::StreamExt;
use serde_json::json;

async fn start() -> (String, ScriptedUpstream) {
    let upstream = ScriptedUpstream::start().await;
    (upstream.root_url(), upstream)
}

fn openai(base: &str) -> Endpoint {
    Endpoint::OpenAi {
        base_url: format!("{base}/v1"),
        auth: Auth::Bearer("sk-test".to_owned().into()),
    }
}

fn model(base: &str, name: &str) -> OpenAiChatModel {
    OpenAiChatModel::new(&openai(base), name, Timeouts::default()).expect("model")
}

fn ask(text: &str) -> ChatRequest {
    ChatRequest {
        messages: vec![
            ChatMessage::new(Role::System, "Be brief."),
            ChatMessage::new(Role::User, text),
        ],
        max_tokens: Some(64),
        temperature: Some(0.2),
        ..Default::default()
    }
}

#[tokio::test]
async fn completes_and_sends_an_openai_request() {
    let (base, log) = start().await;
    let response = model(&base, "gpt-test")
        .complete(&ask("hi"))
        .await
        .expect("complete");
    assert_eq!(response.message.content, "answer from gpt-test");
    assert_eq!(response.finish_reason, FinishReason::Stop);
    assert_eq!(
        (
            response.usage.input_tokens,
            response.usage.cached_input_tokens
        ),
        (12, 4)
    );
    assert_eq!(
        (
            response.usage.output_tokens,
            response.usage.reasoning_tokens
        ),
        (3, 1)
    );
    assert_eq!(response.model, "gpt-test-2026");

    let seen = log.requests()[0].clone();
    assert_eq!(seen.path_and_query, "/v1/chat/completions");
    assert_eq!(seen.headers["authorization"], "Bearer sk-test");
    assert_eq!(
        seen.body["messages"],
        json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}])
    );
    assert_eq!(
        seen.body["max_tokens"], 64,
        "compatible servers get max_tokens"
    );
    assert!(seen.body.get("max_completion_tokens").is_none());
}

#[tokio::test]
async fn azure_deployments_use_their_url_key_and_max_completion_tokens() {
    let (base, log) = start().await;
    let endpoint = Endpoint::Azure {
        resource_url: base.clone(),
        deployment: "gpt4o-prod".into(),
        api_version: "2024-10-21".into(),
        auth: Auth::AzureApiKey("azure-key".to_owned().into()),
    };
    OpenAiChatModel::new(&endpoint, "gpt4o-prod", Timeouts::default())
        .expect("model")
        .complete(&ask("hi"))
        .await
        .expect("complete");
    let entra = Endpoint::Azure {
        resource_url: base.clone(),
        deployment: "gpt4o-prod".into(),
        api_version: "2024-10-21".into(),
        auth: Auth::Bearer("entra-token".to_owned().into()),
    };
    OpenAiChatModel::new(&entra, "gpt4o-prod", Timeouts::default())
        .expect("model")
        .complete(&ask("hi"))
        .await
        .expect("complete");

    let seen = log.requests();
    assert_eq!(
        seen[0].path_and_query,
        "/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21"
    );
    assert_eq!(seen[0].headers["api-key"], "azure-key");
    assert!(seen[0].headers.get("authorization").is_none());
    assert_eq!(seen[0].body["max_completion_tokens"], 64);
    assert_eq!(seen[1].headers["authorization"], "Bearer entra-token");
    assert!(seen[1].headers.get("api-key").is_none());
}

#[tokio::test]
async fn tools_round_trip() {
    let (base, log) = start().await;
    let mut request = ask("weather in Oslo?");
    request.tools = vec![ToolDefinition {
        name: "get_weather".into(),
        description: "Current weather".into(),
        parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}}),
    }];
    request.tool_choice = Some(ToolChoice::Function("get_weather".into()));
    let response = model(&base, "tools")
        .complete(&request)
        .await
        .expect("complete");
    assert_eq!(response.finish_reason, FinishReason::ToolCalls);
    assert_eq!(
        response.message.tool_calls[0].arguments,
        "{\"city\":\"Oslo\"}"
    );

    // The tool result goes back as an assistant message with the call and a tool message.
    let mut follow_up = request.clone();
    follow_up.messages.push(response.message.clone());
    let mut result = ChatMessage::new(Role::Tool, "12°C, cloudy");
    result.tool_call_id = Some("call_9".into());
    follow_up.messages.push(result);
    model(&base, "gpt-test")
        .complete(&follow_up)
        .await
        .expect("follow-up");

    let seen = log.requests();
    assert_eq!(
        seen[0].body["tools"][0],
        json!({"type": "function", "function": {"name": "get_weather", "description": "Current weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}})
    );
    assert_eq!(
        seen[0].body["tool_choice"],
        json!({"type": "function", "function": {"name": "get_weather"}})
    );
    assert_eq!(seen[1].body["messages"][2]["tool_calls"][0]["id"], "call_9");
    assert_eq!(
        seen[1].body["messages"][3],
        json!({"role": "tool", "content": "12°C, cloudy", "tool_call_id": "call_9"})
    );
}

async fn collect(
    model: &OpenAiChatModel,
    request: &ChatRequest,
) -> Vec<Result<ChatChunk, ModelError>> {
    model
        .stream(request)
        .await
        .expect("stream starts")
        .collect()
        .await
}

#[tokio::test]
async fn streams_text_then_finish_with_usage() {
    let (base, log) = start().await;
    let chunks = collect(&model(&base, "gpt-test"), &ask("hi")).await;
    let chunks: Vec<ChatChunk> = chunks.into_iter().map(|c| c.expect("ok")).collect();
    assert_eq!(
        chunks[..2],
        [
            ChatChunk::Delta("Hi".into()),
            ChatChunk::Delta(" there".into())
        ]
    );
    match &chunks[2] {
        ChatChunk::Finish { reason, usage, .. } => assert_eq!(
            (*reason, usage.input_tokens, usage.output_tokens),
            (FinishReason::Stop, 7, 2)
        ),
        other => panic!("expected Finish, got {other:?}"),
    }
    let seen = log.requests()[0].clone();
    assert_eq!(
        (
            seen.body["stream"].clone(),
            seen.body["stream_options"]["include_usage"].clone()
        ),
        (json!(true), json!(true))
    );
}

/// A server that reports no usage: tokens are counted with the o200k tokenizer, in both modes.
#[tokio::test]
async fn missing_usage_is_counted_with_a_tokenizer() {
    let (base, _log) = start().await;
    let request = ask("What is the capital of Norway?");
    let expected = cairn_openai::estimate_usage(&request.messages, "answer from unmetered");
    // "Be brief." is 3 tokens and the question 7, each message framed by 3, plus 3 for the reply.
    assert_eq!(expected.input_tokens, 3 + (3 + 3) + (3 + 7));
    assert!((3..=8).contains(&expected.output_tokens), "{expected:?}");
    let response = model(&base, "unmetered")
        .complete(&request)
        .await
        .expect("complete");
    assert_eq!(response.usage, expected);
    let chunks = collect(&model(&base, "unmetered"), &request).await;
    match chunks.last() {
        Some(Ok(ChatChunk::Finish { usage, .. })) => assert_eq!(
            *usage,
            cairn_openai::estimate_usage(&request.messages, "Hi there")
        ),
        other => panic!("expected Finish, got {other:?}"),
    }
}

#[tokio::test]
async fn streamed_tool_calls_are_assembled() {
    let (base, _log) = start().await;
    let chunks: Vec<ChatChunk> = collect(&model(&base, "tools"), &ask("weather?"))
        .await
        .into_iter()
        .map(|c| c.expect("ok"))
        .collect();
    assert_eq!(chunks.len(), 2, "{chunks:?}");
    match &chunks[0] {
        ChatChunk::ToolCall(call) => assert_eq!(
            (
                call.id.as_str(),
                call.name.as_str(),
                call.arguments.as_str()
            ),
            ("call_1", "get_weather", "{\"city\":\"Oslo\"}")
        ),
        other => panic!("expected a tool call, got {other:?}"),
    }
    assert!(matches!(
        chunks[1],
        ChatChunk::Finish {
            reason: FinishReason::ToolCalls,
            ..
        }
    ));
}

#[tokio::test]
async fn broken_streams_end_with_a_transient_error() {
    let (base, _log) = start().await;
    let chunks = collect(&model(&base, "cut"), &ask("hi")).await;
    assert_eq!(chunks[0], Ok(ChatChunk::Delta("partial ".into())));
    assert!(
        matches!(&chunks[1], Err(ModelError::Transient(m)) if m.contains("closed the stream")),
        "{chunks:?}"
    );
    assert_eq!(chunks.len(), 2);

    let chunks = collect(&model(&base, "inband"), &ask("hi")).await;
    assert_eq!(chunks[0], Ok(ChatChunk::Delta("Hel".into())));
    assert!(
        matches!(&chunks[1], Err(ModelError::Transient(m)) if m.contains("overloaded")),
        "{chunks:?}"
    );
    assert_eq!(chunks.len(), 2, "nothing after an error");
}

#[tokio::test]
async fn failures_are_classified_for_the_router() {
    let (base, log) = start().await;
    type Check = fn(&ModelError) -> bool;
    let cases: [(&str, Check); 9] = [
        (
            "context",
            |e| matches!(e, ModelError::ContextLengthExceeded(m) if m.contains("8192")),
        ),
        (
            "bad",
            |e| matches!(e, ModelError::InvalidRequest(m) if m.contains("temperature")),
        ),
        ("limited", |e| {
            matches!(e, ModelError::RateLimited { retry_after: None })
        }),
        ("slow-down", |e| {
            *e == ModelError::RateLimited {
                retry_after: Some(std::time::Duration::from_millis(1500)),
            }
        }),
        (
            "broke",
            |e| matches!(e, ModelError::Permanent(m) if m.contains("quota")),
        ),
        (
            "down",
            |e| matches!(e, ModelError::Transient(m) if m.contains("503") && m.contains("overloaded")),
        ),
        (
            "gateway",
            |e| matches!(e, ModelError::Transient(m) if m.contains("502")),
        ),
        (
            "locked",
            |e| matches!(e, ModelError::Permanent(m) if m.contains("check the API key")),
        ),
        ("missing", |e| matches!(e, ModelError::NotFound(_))),
    ];
    for (name, check) in cases {
        let error = model(&base, name)
            .complete(&ask("hi"))
            .await
            .expect_err("fails");
        assert!(check(&error), "{name}: {error:?}");
        let error = match model(&base, name).stream(&ask("hi")).await {
            Err(error) => error,
            Ok(_) => panic!("{name}: a failed request must not start a stream"),
        };
        assert!(check(&error), "{name} (stream): {error:?}");
    }
    assert_eq!(
        log.requests().len(),
        18,
        "one attempt per call: retries are the gateway's job"
    );

    // Nothing listens on port 1.
    let error = model("http://127.0.0.1:1", "x")
        .complete(&ask("hi"))
        .await
        .expect_err("no server");
    assert!(
        matches!(&error, ModelError::Transient(m) if m.contains("connect")),
        "{error:?}"
    );
}

#[tokio::test]
async fn embeddings_come_back_in_input_order_with_the_checked_dimension() {
    let (base, log) = start().await;
    let embedder =
        OpenAiEmbeddingModel::new(&openai(&base), "embed", 3, false, Timeouts::default())
            .expect("model");
    let texts: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
    let vectors = embedder.embed_documents(&texts).await.expect("embed");
    assert_eq!(vectors, vec![vec![0.0; 3], vec![1.0; 3], vec![2.0; 3]]);
    assert_eq!(
        embedder.embed_query("q").await.expect("query"),
        vec![0.0; 3]
    );
    assert_eq!(log.requests()[0].path_and_query, "/v1/embeddings");

    let wrong = OpenAiEmbeddingModel::new(
        &openai(&base),
        "wrong-dimension",
        3,
        false,
        Timeouts::default(),
    )
    .expect("model");
    let error = wrong
        .embed_documents(&texts)
        .await
        .expect_err("dimension checked");
    assert!(
        matches!(&error, ModelError::Permanent(m) if m.contains("returned 2 dimensions, configured for 3")),
        "{error:?}"
    );
}

#[test]
fn bad_endpoints_are_refused() {
    let bad_url = Endpoint::OpenAi {
        base_url: "ftp://x".into(),
        auth: Auth::None,
    };
    assert!(OpenAiChatModel::new(&bad_url, "m", Timeouts::default()).is_err());
    let bad_key = Endpoint::OpenAi {
        base_url: "http://x".into(),
        auth: Auth::Bearer("line\nbreak".to_owned().into()),
    };
    assert!(OpenAiChatModel::new(&bad_key, "m", Timeouts::default()).is_err());
}
