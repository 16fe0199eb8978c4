//! Test support: a scripted OpenAI-compatible server on loopback, shared by the adapter, gateway,
//! server and client-compatibility tests (and usable as a fixed-latency upstream for benchmarks),
//! and a fake OpenID Connect provider ([`oidc::FakeOidc`]) for sign-in tests.
//!
//! The server's behaviour is chosen by the `model` field of each request:
//!
//! | model | answer |
//! |---|---|
//! | `tools` | a `get_weather` tool call (also streamed, in argument fragments) |
//! | `context` | 400 `context_length_exceeded` |
//! | `bad` | 400 invalid request |
//! | `limited` | 429 rate limited |
//! | `slow-down` | 429 rate limited, asking for 1.5 s (`retry-after-ms: 1500`, `retry-after: 2`) |
//! | `broke` | 429 `insufficient_quota` |
//! | `down` | 503 with an OpenAI error body |
//! | `gateway` | 502 with a plain-text body |
//! | `locked` | 401 `invalid_api_key` |
//! | `missing` | 404 `model_not_found` |
//! | `cut` | a stream that stops before finishing |
//! | `inband` | a stream with an error event after the first chunk |
//! | `hostile` | a stream of markup that tries to run script or load from elsewhere ([`HOSTILE`]) |
//! | `trickle` | a stream of a word every 100 ms for 10 s |
//! | `slow-N` | waits N milliseconds, then answers normally |
//! | `judge` | a deterministic LLM judge for Cairn's built-in judge prompts ([`judge`]) |
//! | `unmetered` | answers normally but reports no usage (streamed: no usage chunk) |
//! | `agent` | a deterministic tool user ([`agent_turn`]): calls the offered tools it knows, all at once, then answers quoting their results (streamed: word by word) |
//! | anything else | `answer from MODEL` (streamed as `Hi`, ` there`), with usage |
//!
//! Embedding requests get one vector per input, `[i, i, i]`, returned out of order; the model
//! `wrong-dimension` gets 2-dimensional vectors.

pub mod judge;
pub mod oidc;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// A request the upstream received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path_and_query: String,
    pub headers: HeaderMap,
    pub body: Value,
}

/// A running scripted upstream; it stops with the Tokio runtime.
#[derive(Debug, Clone)]
pub struct ScriptedUpstream {
    pub addr: std::net::SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl ScriptedUpstream {
    /// Starts on a free loopback port.
    pub async fn start() -> ScriptedUpstream {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let app = Router::new().fallback(answer).with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        ScriptedUpstream { addr, seen }
    }

    /// The base URL OpenAI clients use: `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The server root (Azure-style URLs are built below it).
    pub fn root_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<Seen> {
        self.seen
            .lock()
            .map(|seen| seen.clone())
            .unwrap_or_default()
    }

    /// How many chat completions were asked for so far.
    pub fn chat_calls(&self) -> usize {
        self.requests()
            .iter()
            .filter(|seen| seen.path_and_query.ends_with("/chat/completions"))
            .count()
    }

    /// The `model` field of every request so far.
    pub fn models_called(&self) -> Vec<String> {
        self.requests()
            .iter()
            .map(|seen| seen.body["model"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    pub fn clear(&self) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.clear();
        }
    }
}

async fn answer(State(seen): State<Arc<Mutex<Vec<Seen>>>>, request: Request) -> Response {
    let path_and_query = request
        .uri()
        .path_and_query()
        .map(ToString::to_string)
        .unwrap_or_default();
    let headers = request.headers().clone();
    let bytes = axum::body::to_bytes(request.into_body(), 16 << 20)
        .await
        .unwrap_or_default();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let authorization = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if let Ok(mut seen) = seen.lock() {
        seen.push(Seen {
            path_and_query: path_and_query.clone(),
            headers,
            body: body.clone(),
        });
    }
    let model = body["model"].as_str().unwrap_or_default().to_owned();
    if let Some(millis) = model
        .strip_prefix("slow-")
        .and_then(|n| n.parse::<u64>().ok())
    {
        tokio::time::sleep(Duration::from_millis(millis)).await;
    }
    if path_and_query.contains("/embeddings") {
        return embeddings(&model, &body);
    }
    let streaming = body["stream"] == json!(true);
    match model.as_str() {
        "context" => error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            Some("context_length_exceeded"),
            "maximum context length is 8192 tokens",
        ),
        "bad" => error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            None,
            "temperature must be at most 2",
        ),
        "limited" => error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            None,
            "slow down",
        ),
        "slow-down" => {
            let mut response = error(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                None,
                "slow down",
            );
            let headers = response.headers_mut();
            headers.insert(
                "retry-after-ms",
                axum::http::HeaderValue::from_static("1500"),
            );
            headers.insert("retry-after", axum::http::HeaderValue::from_static("2"));
            response
        }
        "broke" => error(
            StatusCode::TOO_MANY_REQUESTS,
            "insufficient_quota",
            Some("insufficient_quota"),
            "no credits",
        ),
        "down" => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            Some("overloaded"),
            "overloaded, try later",
        ),
        "gateway" => (StatusCode::BAD_GATEWAY, "upstream connect error").into_response(),
        "locked" => error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            Some("invalid_api_key"),
            "Incorrect API key",
        ),
        // A provider that echoes the credential it was sent, with a forged log line after it.
        "leaky" => error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            Some("invalid_api_key"),
            &format!(
                "Incorrect API key provided: {authorization}\n\u{1b}[31m2026-01-01T00:00:00Z ERROR forged log line"
            ),
        ),
        "missing" => error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            Some("model_not_found"),
            "The model `missing` does not exist",
        ),
        "trickle" if streaming => trickle(),
        "chunks" => chunks(&body, streaming),
        "echo" => echo(&body, streaming),
        "judge" if !streaming => {
            let last = body["messages"]
                .as_array()
                .and_then(|m| m.last())
                .and_then(|m| m["content"].as_str())
                .unwrap_or_default();
            text_completion("judge", &judge::answer(last), 50, 20)
        }
        "json-on-second-try" if !streaming => json_on_second_try(&body),
        "agent" if streaming => agent_turn_streamed(&body),
        "agent" => agent_turn(&body),
        _ if streaming => stream(&model),
        _ => completion(&model),
    }
}

/// The arguments the `agent` model calls a tool with, by the tool's name as offered, from the
/// user's question; tools not listed here are not called.
fn agent_arguments(tool: &str, question: &str) -> Option<Value> {
    match tool {
        "search" => Some(json!({"query": question})),
        "everything__echo" => Some(json!({"message": question})),
        "everything__get-sum" => Some(json!({"a": 2, "b": 3})),
        "self__search_knowledge" => Some(json!({"collection": "handbook", "query": question})),
        "self__list_collections" => Some(json!({})),
        _ => None,
    }
}

/// The `agent` model's turn (finish reason, message): with no tool results after the last user
/// message, it calls every offered tool it knows ([`agent_arguments`]) in one response; with
/// results, it answers `Found: ` and the first line of each result, in call order.
fn agent_message(body: &Value) -> (&'static str, Value) {
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let question = messages
        .iter()
        .rev()
        .find(|m| m["role"] == "user")
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_owned();
    let results: Vec<String> = messages
        .iter()
        .rev()
        .take_while(|m| m["role"] != "user")
        .filter(|m| m["role"] == "tool")
        .map(|m| {
            m["content"]
                .as_str()
                .unwrap_or_default()
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    let calls: Vec<Value> = body["tools"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|t| {
            let name = t["function"]["name"].as_str()?;
            agent_arguments(name, &question).map(|args| (name.to_owned(), args))
        })
        .enumerate()
        .map(|(i, (name, args))| {
            json!({"id": format!("call_{i}"), "type": "function",
                   "function": {"name": name, "arguments": args.to_string()}})
        })
        .collect();
    if results.is_empty() && !calls.is_empty() {
        (
            "tool_calls",
            json!({"role": "assistant", "content": null, "tool_calls": calls}),
        )
    } else {
        let mut ordered = results;
        ordered.reverse();
        (
            "stop",
            json!({"role": "assistant", "content": format!("Found: {}", ordered.join(" | "))}),
        )
    }
}

/// The `agent` model's turn as a completion.
pub fn agent_turn(body: &Value) -> Response {
    let (finish, message) = agent_message(body);
    json_response(
        StatusCode::OK,
        &json!({
            "id": "chatcmpl-upstream", "object": "chat.completion", "created": 1, "model": "agent-2026",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25}
        }),
    )
}

/// [`agent_turn`] as a stream: the answer word by word, or each tool call whole.
fn agent_turn_streamed(body: &Value) -> Response {
    let (_, turn) = agent_message(body);
    let model = "agent-2026";
    let mut events = vec![chunk(
        model,
        json!({"role": "assistant", "content": ""}),
        None,
    )];
    let finish = if let Some(calls) = turn["tool_calls"].as_array() {
        for (index, call) in calls.iter().enumerate() {
            let mut call = call.clone();
            call["index"] = json!(index);
            events.push(chunk(model, json!({"tool_calls": [call]}), None));
        }
        "tool_calls"
    } else {
        let text = turn["content"].as_str().unwrap_or_default();
        for word in text.split_inclusive(' ') {
            events.push(chunk(model, json!({"content": word}), None));
        }
        "stop"
    };
    events.push(chunk(model, json!({}), Some(finish)));
    events.push(json!({"id": "chatcmpl-upstream", "object": "chat.completion.chunk", "created": 1, "model": model,
                       "choices": [], "usage": {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25}}));
    let mut text: String = events
        .iter()
        .map(|event| format!("data: {event}\n\n"))
        .collect();
    text.push_str("data: [DONE]\n\n");
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from(text))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

fn json_response(status: StatusCode, body: &Value) -> Response {
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
        &json!({"error": {"message": message, "type": kind, "param": null, "code": code}}),
    )
}

fn completion(model: &str) -> Response {
    let (message, finish) = if model == "tools" {
        (
            json!({"role": "assistant", "content": null, "tool_calls": [{"id": "call_9", "type": "function",
                   "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}}]}),
            "tool_calls",
        )
    } else {
        (
            json!({"role": "assistant", "content": format!("answer from {model}")}),
            "stop",
        )
    };
    let mut body = json!({
        "id": "chatcmpl-upstream", "object": "chat.completion", "created": 1, "model": format!("{model}-2026"),
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15,
                  "prompt_tokens_details": {"cached_tokens": 4}, "completion_tokens_details": {"reasoning_tokens": 1}}
    });
    if model == "unmetered"
        && let Some(body) = body.as_object_mut()
    {
        body.remove("usage");
    }
    json_response(StatusCode::OK, &body)
}

/// The streamed pieces of the `hostile` model's answer: a script, an image with an error handler,
/// a Markdown image pointing elsewhere and a `javascript:` link.
pub const HOSTILE: [&str; 5] = [
    "Here is [1]. ",
    "<script>window.__cairnPwned=1</script> ",
    "<img src=x onerror=\"window.__cairnPwned=2\"> ",
    "![tracker](http://127.0.0.1:9/pixel.png) ",
    "[click](javascript:window.__cairnPwned=3)",
];

fn chunk(model: &str, delta: Value, finish: Option<&str>) -> Value {
    json!({"id": "chatcmpl-upstream", "object": "chat.completion.chunk", "created": 1, "model": model,
           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
}

fn stream(model: &str) -> Response {
    let usage = json!({"id": "chatcmpl-upstream", "object": "chat.completion.chunk", "created": 1, "model": model,
                       "choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}});
    let (events, done) = match model {
        "tools" => (
            vec![
                chunk(
                    model,
                    json!({"role": "assistant", "tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}),
                    None,
                ),
                chunk(
                    model,
                    json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\":"}}]}),
                    None,
                ),
                chunk(
                    model,
                    json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"Oslo\"}"}}]}),
                    None,
                ),
                chunk(model, json!({}), Some("tool_calls")),
                usage,
            ],
            true,
        ),
        "cut" => (
            vec![chunk(model, json!({"content": "partial "}), None)],
            false,
        ),
        // An answer that tries to inject markup into whatever renders it.
        "hostile" => (
            HOSTILE
                .iter()
                .map(|piece| chunk(model, json!({"content": piece}), None))
                .chain([chunk(model, json!({}), Some("stop")), usage])
                .collect(),
            true,
        ),
        "inband" => (
            vec![
                chunk(model, json!({"content": "Hel"}), None),
                json!({"error": {"message": "The server is overloaded", "type": "server_error", "code": null}}),
            ],
            false,
        ),
        _ => (
            vec![
                chunk(model, json!({"role": "assistant", "content": ""}), None),
                chunk(model, json!({"content": "Hi"}), None),
                chunk(model, json!({"content": " there"}), None),
                chunk(model, json!({}), Some("stop")),
            ]
            .into_iter()
            .chain((model != "unmetered").then_some(usage))
            .collect(),
            true,
        ),
    };
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
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// A non-streamed answer of `model` with `content` and the given token counts.
fn text_completion(model: &str, content: &str, prompt: usize, completion: usize) -> Response {
    json_response(
        StatusCode::OK,
        &json!({"id": "chatcmpl-upstream", "object": "chat.completion", "created": 1, "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}}),
    )
}

/// The `echo` model answers with its last message's text (streamed in pieces of 7 characters).
fn echo(body: &Value, streaming: bool) -> Response {
    let last = body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default();
    if streaming {
        let chars: Vec<char> = last.chars().collect();
        let pieces: Vec<String> = chars.chunks(7).map(|c| c.iter().collect()).collect();
        return chunks(
            &json!({"messages": [{"content": serde_json::to_string(&pieces).unwrap_or_default()}]}),
            true,
        );
    }
    text_completion("echo", last, 5, 5)
}

/// The `json-on-second-try` model answers in prose, and with `{"answer": "fixed"}` once told its
/// answer does not match a JSON schema.
fn json_on_second_try(body: &Value) -> Response {
    let told = body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_str())
        .is_some_and(|c| c.contains("JSON schema"));
    let content = if told {
        "```json\n{\"answer\": \"fixed\"}\n```"
    } else {
        "Sure! The answer is: fixed."
    };
    text_completion("json", content, 10, 4)
}

/// The `chunks` model answers with the pieces its last message lists as a JSON array of strings:
/// streamed one piece per event, or joined.
fn chunks(body: &Value, streaming: bool) -> Response {
    let pieces: Vec<String> = body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_str())
        .and_then(|c| serde_json::from_str(c).ok())
        .unwrap_or_default();
    if !streaming {
        return text_completion("chunks", &pieces.concat(), 5, pieces.len());
    }
    let mut text: String = pieces
        .iter()
        .map(|piece| {
            format!(
                "data: {}\n\n",
                chunk("chunks", json!({"content": piece}), None)
            )
        })
        .collect();
    text.push_str(&format!(
        "data: {}\n\n",
        chunk("chunks", json!({}), Some("stop"))
    ));
    text.push_str("data: [DONE]\n\n");
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from(text))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// A stream that sends a word every 100 ms for 10 s: long enough to stop it halfway.
fn trickle() -> Response {
    let events = futures_util::stream::unfold(0u32, |i| async move {
        if i > 100 {
            return None;
        }
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let data = match i {
            100 => format!(
                "data: {}\n\ndata: [DONE]\n\n",
                chunk("trickle", json!({}), Some("stop"))
            ),
            _ => format!(
                "data: {}\n\n",
                chunk("trickle", json!({"content": format!("word{i} ")}), None)
            ),
        };
        Some((Ok::<_, std::convert::Infallible>(data), i + 1))
    });
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(events))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

fn embeddings(model: &str, body: &Value) -> Response {
    let inputs = match &body["input"] {
        Value::Array(items) => items.len(),
        Value::String(_) => 1,
        _ => 0,
    };
    let dimension = if model == "wrong-dimension" { 2 } else { 3 };
    let data: Vec<Value> = (0..inputs)
        .rev()
        .map(|i| json!({"object": "embedding", "index": i, "embedding": vec![i as f32; dimension]}))
        .collect();
    json_response(
        StatusCode::OK,
        &json!({"object": "list", "model": model, "data": data, "usage": {"prompt_tokens": 3, "total_tokens": 3}}),
    )
}

/// The packaged test models (scripts/fetch-models.sh): `$CAIRN_TEST_MODELS`, else
/// `~/.cache/cairn-models`.
pub fn test_models_dir() -> std::path::PathBuf {
    std::env::var("CAIRN_TEST_MODELS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| {
            std::path::PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join(".cache/cairn-models")
        })
}

/// A file or directory among the packaged test models; panics with the fix when it is missing.
pub fn test_model(name: &str) -> std::path::PathBuf {
    let path = test_models_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: run scripts/fetch-models.sh (scripts/test.sh does)",
        path.display()
    );
    path
}

/// Where `scripts/npm-tools.sh NAME` installed an npm package set (`mcp-servers`: its
/// `node_modules/.bin`; `node-clients`: the install directory): `$VAR` when set, else the default
/// location; panics with the fix when `check` (a path below it) is missing.
pub fn npm_tools(name: &str, var: &str, check: &str) -> std::path::PathBuf {
    let dir = std::env::var(var)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| {
            let installed = std::path::PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join(".cache/cairn-tools")
                .join(name);
            match name {
                "mcp-servers" => installed.join("node_modules/.bin"),
                _ => installed,
            }
        });
    assert!(
        dir.join(check).exists(),
        "{} is missing: run scripts/npm-tools.sh {name} (scripts/test.sh does) or set {var}",
        dir.join(check).display()
    );
    dir
}

/// The `node_modules/.bin` directory of the reference MCP servers (`scripts/npm-tools.sh
/// mcp-servers`).
pub fn mcp_servers_bin() -> std::path::PathBuf {
    npm_tools("mcp-servers", "CAIRN_MCP_SERVERS", "mcp-server-everything")
}
