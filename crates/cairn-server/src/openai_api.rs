//! The OpenAI-compatible API: `POST /v1/chat/completions` (JSON and SSE streaming, tools,
//! response formats, usage in the last chunk on request) and `GET /v1/models` (chat models, routes
//! and the embedding model). Wire types are this
//! module's own and convert explicitly into `cairn-core` types.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use cairn_core::catalog::LineageRecord;
use cairn_core::model::{
    ChatChunk, ChatMessage, ChatRequest, ChatResponse, FinishReason, ResponseFormat, Role,
    ToolCall, ToolChoice, ToolDefinition, Usage,
};
use cairn_core::{Catalog, ChatModel, ModelError};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::AppState;
use crate::error::ApiError;
use crate::extract::ApiJson;

/// The request as OpenAI clients send it. Fields Cairn does not use (logprobs, penalties, user,
/// metadata, …) are accepted and ignored, as OpenAI-compatible servers commonly do.
#[derive(Debug, Deserialize)]
pub(crate) struct CompletionRequest {
    model: String,
    messages: Vec<WireMessage>,
    #[serde(default)]
    stream: bool,
    stream_options: Option<StreamOptions>,
    temperature: Option<f32>,
    top_p: Option<f32>,
    max_tokens: Option<u32>,
    max_completion_tokens: Option<u32>,
    stop: Option<Stop>,
    #[serde(default)]
    tools: Vec<WireTool>,
    tool_choice: Option<WireToolChoice>,
    response_format: Option<WireResponseFormat>,
    seed: Option<u64>,
    n: Option<u32>,
}

#[derive(Debug, Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Stop {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
struct WireMessage {
    role: String,
    content: Option<Content>,
    #[serde(default)]
    tool_calls: Vec<WireToolCall>,
    tool_call_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[derive(Debug, Deserialize)]
struct ContentPart {
    #[serde(rename = "type")]
    kind: String,
    text: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WireToolCall {
    id: String,
    function: WireFunctionCall,
}

#[derive(Debug, Deserialize)]
struct WireFunctionCall {
    name: String,
    #[serde(default)]
    arguments: String,
}

#[derive(Debug, Deserialize)]
struct WireTool {
    #[serde(rename = "type")]
    kind: String,
    function: WireFunction,
}

#[derive(Debug, Deserialize)]
struct WireFunction {
    name: String,
    #[serde(default)]
    description: String,
    parameters: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum WireToolChoice {
    Mode(String),
    Named { function: NamedFunction },
}

#[derive(Debug, Deserialize)]
struct NamedFunction {
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireResponseFormat {
    Text,
    JsonObject,
    JsonSchema { json_schema: WireJsonSchema },
}

#[derive(Debug, Deserialize)]
struct WireJsonSchema {
    name: String,
    #[serde(default)]
    schema: Value,
    #[serde(default)]
    strict: Option<bool>,
}

fn invalid(message: String) -> ApiError {
    ApiError::bad_request("invalid_request", message)
}

fn to_core(request: CompletionRequest) -> Result<(ChatRequest, bool, bool), ApiError> {
    if request.n.is_some_and(|n| n != 1) {
        return Err(invalid(
            "`n` must be 1: Cairn returns one choice per request".into(),
        ));
    }
    if request.messages.is_empty() {
        return Err(invalid(
            "`messages` is empty; send at least one message".into(),
        ));
    }
    let mut messages = Vec::with_capacity(request.messages.len());
    for (index, message) in request.messages.into_iter().enumerate() {
        let role = match message.role.as_str() {
            "system" | "developer" => Role::System,
            "user" => Role::User,
            "assistant" => Role::Assistant,
            "tool" => Role::Tool,
            other => {
                return Err(invalid(format!(
                    "messages[{index}].role `{other}` is not supported; use system, developer, user, assistant or tool"
                )));
            }
        };
        let content = match message.content {
            None => String::new(),
            Some(Content::Text(text)) => text,
            Some(Content::Parts(parts)) => {
                let mut text = String::new();
                for part in parts {
                    match (part.kind.as_str(), part.text) {
                        ("text", Some(part_text)) => text.push_str(&part_text),
                        (kind, _) => {
                            return Err(invalid(format!(
                                "messages[{index}]: content parts of type `{kind}` are not supported; send text"
                            )));
                        }
                    }
                }
                text
            }
        };
        if role == Role::Tool && message.tool_call_id.is_none() {
            return Err(invalid(format!(
                "messages[{index}]: a tool message needs `tool_call_id`"
            )));
        }
        let mut core = ChatMessage::new(role, content);
        core.tool_calls = message
            .tool_calls
            .into_iter()
            .map(|call| ToolCall {
                id: call.id,
                name: call.function.name,
                arguments: call.function.arguments,
            })
            .collect();
        core.tool_call_id = message.tool_call_id;
        messages.push(core);
    }
    let mut tools = Vec::with_capacity(request.tools.len());
    for (index, tool) in request.tools.into_iter().enumerate() {
        if tool.kind != "function" {
            return Err(invalid(format!(
                "tools[{index}].type `{}` is not supported; use `function`",
                tool.kind
            )));
        }
        tools.push(ToolDefinition {
            name: tool.function.name,
            description: tool.function.description,
            parameters: tool
                .function
                .parameters
                .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
        });
    }
    let tool_choice = match request.tool_choice {
        None => None,
        Some(WireToolChoice::Mode(mode)) => Some(match mode.as_str() {
            "auto" => ToolChoice::Auto,
            "none" => ToolChoice::None,
            "required" => ToolChoice::Required,
            other => {
                return Err(invalid(format!(
                    "tool_choice `{other}` is not one of auto, none, required"
                )));
            }
        }),
        Some(WireToolChoice::Named { function }) => Some(ToolChoice::Function(function.name)),
    };
    let response_format = request.response_format.map(|format| match format {
        WireResponseFormat::Text => ResponseFormat::Text,
        WireResponseFormat::JsonObject => ResponseFormat::JsonObject,
        WireResponseFormat::JsonSchema { json_schema } => ResponseFormat::JsonSchema {
            name: json_schema.name,
            schema: json_schema.schema,
            strict: json_schema.strict.unwrap_or(false),
        },
    });
    let include_usage = request
        .stream_options
        .is_some_and(|options| options.include_usage);
    let core = ChatRequest {
        model: request.model,
        messages,
        temperature: request.temperature,
        top_p: request.top_p,
        max_tokens: request.max_completion_tokens.or(request.max_tokens),
        stop: match request.stop {
            None => Vec::new(),
            Some(Stop::One(stop)) => vec![stop],
            Some(Stop::Many(stops)) => stops,
        },
        tools,
        tool_choice,
        response_format,
        seed: request.seed,
    };
    Ok((core, request.stream, include_usage))
}

fn finish_reason(reason: FinishReason) -> &'static str {
    match reason {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
        FinishReason::ToolCalls => "tool_calls",
        FinishReason::ContentFilter => "content_filter",
    }
}

fn usage_json(usage: Usage) -> Value {
    json!({
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_input_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    })
}

fn total_tokens(usage: &Usage) -> u64 {
    u64::from(usage.input_tokens) + u64::from(usage.output_tokens)
}

fn tool_calls_json(calls: &[ToolCall]) -> Value {
    calls
        .iter()
        .enumerate()
        .map(|(index, call)| {
            json!({"index": index, "id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}})
        })
        .collect()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn completion_json(id: &str, model: &str, response: ChatResponse) -> Value {
    let mut message = json!({"role": "assistant", "content": response.message.content});
    if !response.message.tool_calls.is_empty() {
        message["tool_calls"] = tool_calls_json(&response.message.tool_calls);
        for call in message["tool_calls"].as_array_mut().into_iter().flatten() {
            if let Some(call) = call.as_object_mut() {
                call.remove("index");
            }
        }
        if response.message.content.is_empty() {
            message["content"] = Value::Null;
        }
    }
    json!({
        "id": id,
        "object": "chat.completion",
        "created": now(),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason(response.finish_reason)}],
        "usage": usage_json(response.usage),
    })
}

/// A chat answer about to be produced: the model to call, the request, and what the response and
/// the lineage record carry besides the model's output.
pub(crate) struct Answer {
    pub model: Arc<dyn ChatModel>,
    pub request: ChatRequest,
    /// The model or route name, for the lineage record.
    pub route: String,
    pub app: Option<String>,
    /// The registered prompt (name, version) that produced the messages.
    pub prompt: Option<(String, Option<i64>)>,
    /// Retrieved chunks with their scores.
    pub retrieval: Value,
    /// Extra top-level fields of the response (and of the first stream chunk), e.g. `citations`.
    pub extension: serde_json::Map<String, Value>,
    pub lineage_id: uuid::Uuid,
    /// The web UI conversation the answer belongs to.
    pub conversation_id: Option<uuid::Uuid>,
}

impl Answer {
    pub fn new(model: Arc<dyn ChatModel>, request: ChatRequest, route: String) -> Self {
        Answer {
            model,
            request,
            route,
            app: None,
            prompt: None,
            retrieval: Value::Array(Vec::new()),
            extension: serde_json::Map::new(),
            lineage_id: uuid::Uuid::now_v7(),
            conversation_id: None,
        }
    }

    /// Runs the model without streaming and records the lineage.
    pub async fn complete(&self, catalog: Arc<dyn Catalog>) -> Result<ChatResponse, ModelError> {
        let started = Instant::now();
        let result = self.model.complete(&self.request).await;
        match &result {
            Ok(response) => self.record(catalog, Ok((response.usage, response.cost_usd)), started),
            Err(error) => self.record(catalog, Err(error), started),
        }
        result
    }

    /// The lineage record of this answer, once its outcome is known; written in the background.
    fn record(
        &self,
        catalog: Arc<dyn Catalog>,
        outcome: Result<(Usage, Option<f64>), &ModelError>,
        started: Instant,
    ) {
        match outcome {
            Ok((usage, cost)) => self.record_outcome(catalog, usage, cost, "ok", None, started),
            Err(error) => self.record_outcome(
                catalog,
                Usage::default(),
                None,
                error.class(),
                Some(error.to_string()),
                started,
            ),
        }
    }

    /// The lineage record with an explicit status: `ok`, an error class, or `cancelled` when the
    /// client stopped the answer.
    pub fn record_outcome(
        &self,
        catalog: Arc<dyn Catalog>,
        usage: Usage,
        cost_usd: Option<f64>,
        status: &str,
        error: Option<String>,
        started: Instant,
    ) {
        let record = LineageRecord {
            id: self.lineage_id,
            conversation_id: self.conversation_id,
            app: self.app.clone(),
            prompt_name: self.prompt.as_ref().map(|(name, _)| name.clone()),
            prompt_version: self.prompt.as_ref().and_then(|(_, version)| *version),
            model: self.request.model.clone(),
            route: Some(self.route.clone()),
            retrieval: self.retrieval.clone(),
            guard_verdicts: Value::Array(Vec::new()),
            usage,
            cost_usd: cost_usd.unwrap_or(0.0),
            latency_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            status: status.to_owned(),
            error,
            created_at: chrono::Utc::now(),
        };
        tokio::spawn(async move {
            if let Err(e) = catalog.record_lineage(record).await {
                tracing::warn!(error = %e, "could not write a lineage record");
            }
        });
    }
}

pub(crate) async fn chat_completions(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    ApiJson(request): ApiJson<CompletionRequest>,
) -> Result<Response, ApiError> {
    let received = Instant::now();
    let use_cache = !bypasses_cache(&headers);
    let model_name = request.model.clone();
    let (request, stream, include_usage) = to_core(request)?;
    let caller = state.keys.caller(state.catalog.as_ref(), &headers).await?;
    let admission = match &state.limiter {
        Some(limiter) => limiter
            .admit(&model_name, caller.as_deref(), SystemTime::now())
            .await
            .map_err(crate::gateway::limited)?,
        None => cairn_gateway::Admission::unlimited(),
    };
    let answer = match model_name.strip_prefix("app:") {
        Some(app) => crate::apps::prepare(&state, app, request).await?,
        None => {
            let Some(model) = state.models.get(&model_name) else {
                let known: Vec<String> = state
                    .models
                    .names()
                    .map(str::to_owned)
                    .chain(state.apps.iter().map(|a| format!("app:{}", a.name)))
                    .collect();
                return Err(ApiError::not_found(
                    "model_not_found",
                    format!(
                        "model `{model_name}` does not exist; models: {}",
                        if known.is_empty() {
                            "none configured (see [[models]] in cairn.example.toml)".to_owned()
                        } else {
                            known.join(", ")
                        }
                    ),
                ));
            };
            Answer::new(model, request, model_name.clone())
        }
    };
    let cache = state.cache.clone().filter(|_| use_cache && !stream);
    respond(
        &state,
        model_name,
        answer,
        Reply {
            stream,
            include_usage,
            received,
            cache,
            admission,
        },
    )
    .await
}

fn lineage_header(id: uuid::Uuid) -> [(HeaderName, String); 1] {
    [(
        HeaderName::from_static("x-cairn-lineage-id"),
        id.to_string(),
    )]
}

/// `x-cairn-cache: bypass` or `Cache-Control: no-cache` / `no-store`: answer afresh.
fn bypasses_cache(headers: &axum::http::HeaderMap) -> bool {
    let value = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_ascii_lowercase)
            .unwrap_or_default()
    };
    value("x-cairn-cache") == "bypass"
        || value("cache-control")
            .split(',')
            .any(|d| matches!(d.trim(), "no-cache" | "no-store"))
}

/// How to answer: streamed or not, and what the non-streamed answer may use.
struct Reply {
    stream: bool,
    include_usage: bool,
    /// When the parsed request reached the handler, for the overhead header.
    received: Instant,
    /// The answer cache, unless the request bypasses it or streams.
    cache: Option<Arc<cairn_gateway::ResponseCache>>,
    /// Where the answer's tokens and cost count against rate limits and budgets.
    admission: cairn_gateway::Admission,
}

async fn respond(
    state: &AppState,
    model_name: String,
    answer: Answer,
    reply: Reply,
) -> Result<Response, ApiError> {
    let Reply {
        stream,
        include_usage,
        received,
        cache,
        admission,
    } = reply;
    let started = Instant::now();
    let id = format!("chatcmpl-{}", uuid::Uuid::new_v4().simple());
    let catalog = state.catalog.clone();
    let mut extension = answer.extension.clone();
    extension.insert(
        "cairn".into(),
        json!({"lineage_id": answer.lineage_id, "app": answer.app,
               "prompt": answer.prompt.as_ref().map(|(name, version)| json!({"name": name, "version": version}))}),
    );
    if !stream {
        let cached = cache
            .as_ref()
            .and_then(|cache| cache.get(&answer.route, &answer.request));
        let hit = cached.is_some();
        let upstream_started = Instant::now();
        let result = match cached {
            Some(response) => Ok(response),
            None => answer.model.complete(&answer.request).await,
        };
        let upstream = upstream_started.elapsed();
        return match result {
            Ok(mut response) => {
                if hit {
                    // A cached answer costs nothing now; the lineage says where it came from.
                    response.cost_usd = response.cost_usd.map(|_| 0.0);
                    answer.record_outcome(
                        catalog,
                        response.usage,
                        response.cost_usd,
                        "cached",
                        None,
                        started,
                    );
                } else {
                    if let Some(cache) = &cache {
                        cache.put(&answer.route, &answer.request, &response);
                    }
                    answer.record(catalog, Ok((response.usage, response.cost_usd)), started);
                    admission.charge(
                        total_tokens(&response.usage),
                        response.cost_usd.unwrap_or(0.0),
                    );
                }
                let cost = response.cost_usd;
                if let Some(cairn) = extension.get_mut("cairn") {
                    cairn["cost_usd"] = json!(cost);
                }
                let mut body = completion_json(&id, &model_name, response);
                if let Some(object) = body.as_object_mut() {
                    object.extend(extension);
                }
                let mut response = (lineage_header(answer.lineage_id), Json(body)).into_response();
                // What Cairn added to the model call: everything since the request was parsed,
                // retrieval and prompt rendering included, minus the upstream call.
                let overhead = received.elapsed().saturating_sub(upstream);
                let headers = response.headers_mut();
                if cache.is_some() {
                    headers.insert(
                        HeaderName::from_static("x-cairn-cache"),
                        HeaderValue::from_static(if hit { "hit" } else { "miss" }),
                    );
                }
                if let Ok(value) =
                    HeaderValue::from_str(&format!("{:.3}", overhead.as_secs_f64() * 1000.0))
                {
                    headers.insert(HeaderName::from_static("x-cairn-overhead-ms"), value);
                }
                if let Some(cost) = cost
                    && let Ok(value) = HeaderValue::from_str(&format!("{cost:.8}"))
                {
                    headers.insert(HeaderName::from_static("x-cairn-cost-usd"), value);
                }
                Ok(response)
            }
            Err(error) => {
                answer.record(catalog, Err(&error), started);
                Err(error.into())
            }
        };
    }
    // Errors before the first chunk get a status code; after it, an error event ends the stream.
    let upstream = match answer.model.stream(&answer.request).await {
        Ok(upstream) => upstream,
        Err(error) => {
            answer.record(catalog, Err(&error), started);
            return Err(error.into());
        }
    };
    let created = now();
    let lineage_id = answer.lineage_id;
    let chunk = move |delta: Value, finish: Option<&str>| {
        json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model_name,
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let usage_chunk = {
        let chunk = chunk.clone();
        move |usage: Usage| {
            let mut value = chunk(Value::Null, None);
            value["choices"] = json!([]);
            value["usage"] = usage_json(usage);
            value
        }
    };
    let opening = futures_util::stream::once({
        let chunk = chunk.clone();
        async move {
            let mut first = chunk(json!({"role": "assistant", "content": ""}), None);
            if let Some(object) = first.as_object_mut() {
                object.extend(extension);
            }
            vec![first.to_string()]
        }
    });
    let mut tool_index = 0usize;
    let mut answer = Some(answer);
    let mut admission = Some(admission);
    let body = upstream.map(move |item| match item {
        Ok(ChatChunk::Delta(text)) => vec![chunk(json!({"content": text}), None).to_string()],
        Ok(ChatChunk::ToolCall(call)) => {
            let delta = json!({"tool_calls": [{"index": tool_index, "id": call.id, "type": "function",
                                               "function": {"name": call.name, "arguments": call.arguments}}]});
            tool_index += 1;
            vec![chunk(delta, None).to_string()]
        }
        Ok(ChatChunk::Finish { reason, usage, cost_usd }) => {
            if let Some(answer) = answer.take() {
                answer.record(catalog.clone(), Ok((usage, cost_usd)), started);
            }
            if let Some(admission) = admission.take() {
                admission.charge(total_tokens(&usage), cost_usd.unwrap_or(0.0));
            }
            let mut events = vec![chunk(json!({}), Some(finish_reason(reason))).to_string()];
            if include_usage {
                events.push(usage_chunk(usage).to_string());
            }
            events.push("[DONE]".to_owned());
            events
        }
        Err(error) => {
            if let Some(answer) = answer.take() {
                answer.record(catalog.clone(), Err(&error), started);
            }
            let error = ApiError::from(error);
            tracing::warn!(code = error.code, "stream ended with an error: {}", error.message);
            vec![json!({"error": {"message": error.message, "type": error.kind, "code": error.code}}).to_string()]
        }
    });
    let events = opening
        .chain(body)
        .flat_map(futures_util::stream::iter)
        .map(|data| Ok::<_, Infallible>(Event::default().data(data)));
    Ok((
        lineage_header(lineage_id),
        Sse::new(events).keep_alive(KeepAlive::default()),
    )
        .into_response())
}

/// No lineage record (yet): records are written in the background just after the answer.
pub(crate) fn lineage_not_found(id: uuid::Uuid) -> ApiError {
    ApiError::not_found(
        "lineage_not_found",
        format!(
            "no answer has lineage id {id} (records are written just after the answer; retry in a moment)"
        ),
    )
}

/// `GET /v1/lineage/{id}`: how an answer was produced (app, prompt version, route, retrieved
/// chunks, tokens, latency), with its feedback.
pub(crate) async fn get_lineage(
    State(state): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<uuid::Uuid>,
) -> Result<Json<Value>, ApiError> {
    let record = state
        .catalog
        .get_lineage(id)
        .await?
        .ok_or_else(|| lineage_not_found(id))?;
    let feedback = state.catalog.list_feedback(id).await?;
    let mut body = serde_json::to_value(&record)
        .map_err(|e| ApiError::internal(format!("cannot encode the lineage record: {e}")))?;
    body["feedback"] = serde_json::to_value(feedback)
        .map_err(|e| ApiError::internal(format!("cannot encode feedback: {e}")))?;
    Ok(Json(body))
}

pub(crate) async fn list_models(State(state): State<AppState>) -> Json<Value> {
    let embedding = state
        .rag()
        .ok()
        .map(|rag| rag.embedder.model_id().to_owned());
    let data: Vec<Value> = state
        .models
        .names()
        .map(str::to_owned)
        .chain(embedding)
        .map(|name| json!({"id": name, "object": "model", "created": 0, "owned_by": "cairn"}))
        .collect();
    Json(json!({"object": "list", "data": data}))
}
