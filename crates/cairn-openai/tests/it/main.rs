//! The adapters against a scripted OpenAI-compatible server on loopback: request shapes for OpenAI,
//! Azure and compatible servers, responses, streams with tool calls, and every failure class.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use cairn_core::model::{
    ChatChunk, ChatMessage, ChatModel, ChatRequest, EmbeddingModel, FinishReason, ModelError, Role,
    ToolChoice, ToolDefinition,
};
use cairn_openai::{Auth, Endpoint, OpenAiChatModel, OpenAiEmbeddingModel, Timeouts};
use futures_util::StreamExt;
use serde_json::{Value, json};

/// What the scripted server saw.
#[derive(Debug, Clone)]
struct Seen {
    path_and_query: String,
    headers: HeaderMap,
    body: Value,
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// The server's behaviour is chosen by the `model` field of each request.
async fn scripted(State(log): State<Log>, request: Request) -> Response {
    let path_and_query = request
        .uri()
        .path_and_query()
        .map(ToString::to_string)
        .unwrap_or_default();
    let headers = request.headers().clone();
    let bytes = axum::body::to_bytes(request.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    log.lock().expect("lock").push(Seen {
        path_and_query: path_and_query.clone(),
        headers,
        body: body.clone(),
    });
    let model = body["model"].as_str().unwrap_or_default().to_owned();
    let streaming = body["stream"] == json!(true);
    if path_and_query.contains("/embeddings") {
        let inputs = body["input"].as_array().cloned().unwrap_or_default();
        let dimension = if model == "wrong-dimension" { 2 } else { 3 };
        // Out of order on purpose: the adapter must sort by index.
        let data: Vec<Value> = inputs
            .iter()
            .enumerate()
            .rev()
            .map(|(i, _)| json!({"object": "embedding", "index": i, "embedding": vec![i as f32; dimension]}))
            .collect();
        return json_response(
            StatusCode::OK,
            json!({"object": "list", "model": model, "data": data, "usage": {"prompt_tokens": 3, "total_tokens": 3}}),
        );
    }
    match (model.as_str(), streaming) {
        ("context", _) => error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            Some("context_length_exceeded"),
            "maximum context length is 8192 tokens",
        ),
        ("bad", _) => error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            None,
            "temperature must be at most 2",
        ),
        ("limited", _) => error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            None,
            "slow down",
        ),
        ("broke", _) => error(
            StatusCode::TOO_MANY_REQUESTS,
            "insufficient_quota",
            Some("insufficient_quota"),
            "no credits",
        ),
        ("down", _) => (StatusCode::BAD_GATEWAY, "upstream connect error").into_response(),
        ("locked", _) => error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            Some("invalid_api_key"),
            "Incorrect API key",
        ),
        ("missing", _) => error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            Some("model_not_found"),
            "The model `missing` does not exist",
        ),
        (_, false) => json_response(StatusCode::OK, completion(&model)),
        ("tools", true) => sse(
            &[
                chunk(
                    json!({"role": "assistant", "tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}),
                    None,
                ),
                chunk(
                    json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\":"}}]}),
                    None,
                ),
                chunk(
                    json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"Oslo\"}"}}]}),
                    None,
                ),
                chunk(json!({}), Some("tool_calls")),
                usage_chunk(),
            ],
            true,
        ),
        ("cut", true) => sse(&[chunk(json!({"content": "partial "}), None)], false),
        ("inband", true) => sse(
            &[
                chunk(json!({"content": "Hel"}), None),
                json!({"error": {"message": "The server is overloaded", "type": "server_error", "code": null}}),
            ],
            false,
        ),
        (_, true) => sse(
            &[
                chunk(json!({"role": "assistant", "content": ""}), None),
                chunk(json!({"content": "Hello"}), None),
                chunk(json!({"content": ", world"}), None),
                chunk(json!({}), Some("stop")),
                usage_chunk(),
            ],
            true,
        ),
    }
}

fn json_response(status: StatusCode, body: Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn error(status: StatusCode, kind: &str, code: Option<&str>, message: &str) -> Response {
    json_response(
        status,
        json!({"error": {"message": message, "type": kind, "param": null, "code": code}}),
    )
}

fn completion(model: &str) -> Value {
    let message = if model == "tools" {
        json!({"role": "assistant", "content": null, "tool_calls": [{"id": "call_9", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}}]})
    } else {
        json!({"role": "assistant", "content": "Hello, world"})
    };
    let finish = if model == "tools" {
        "tool_calls"
    } else {
        "stop"
    };
    json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": format!("{model}-2026"),
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15,
                  "prompt_tokens_details": {"cached_tokens": 4}, "completion_tokens_details": {"reasoning_tokens": 1}}
    })
}

fn chunk(delta: Value, finish: Option<&str>) -> Value {
    json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
}

fn usage_chunk() -> Value {
    json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [],
           "usage": {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}})
}

fn sse(events: &[Value], done: bool) -> Response {
    let mut text: String = events
        .iter()
        .map(|event| format!("data: {event}\n\n"))
        .collect();
    if done {
        text.push_str("data: [DONE]\n\n");
    }
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from(text))
        .expect("response")
}

async fn start() -> (String, Log) {
    let log: Log = Arc::default();
    let app = Router::new().fallback(scripted).with_state(log.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), log)
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
    assert_eq!(response.message.content, "Hello, world");
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

    let seen = log.lock().expect("lock")[0].clone();
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

    let seen = log.lock().expect("lock").clone();
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

    let seen = log.lock().expect("lock").clone();
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
            ChatChunk::Delta("Hello".into()),
            ChatChunk::Delta(", world".into())
        ]
    );
    match &chunks[2] {
        ChatChunk::Finish { reason, usage } => assert_eq!(
            (*reason, usage.input_tokens, usage.output_tokens),
            (FinishReason::Stop, 7, 2)
        ),
        other => panic!("expected Finish, got {other:?}"),
    }
    let seen = log.lock().expect("lock")[0].clone();
    assert_eq!(
        (
            seen.body["stream"].clone(),
            seen.body["stream_options"]["include_usage"].clone()
        ),
        (json!(true), json!(true))
    );
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
    let cases: [(&str, Check); 7] = [
        (
            "context",
            |e| matches!(e, ModelError::ContextLengthExceeded(m) if m.contains("8192")),
        ),
        (
            "bad",
            |e| matches!(e, ModelError::InvalidRequest(m) if m.contains("temperature")),
        ),
        ("limited", |e| matches!(e, ModelError::RateLimited { .. })),
        (
            "broke",
            |e| matches!(e, ModelError::Permanent(m) if m.contains("quota")),
        ),
        (
            "down",
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
        log.lock().expect("lock").len(),
        14,
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
    assert_eq!(
        log.lock().expect("lock")[0].path_and_query,
        "/v1/embeddings"
    );

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
