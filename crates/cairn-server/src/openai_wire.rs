//! The OpenAI wire format of `/v1/chat/completions`: the request as clients send it, converted
//! explicitly into `cairn-core` types, and the JSON of answers and stream chunks.

use std::time::{SystemTime, UNIX_EPOCH};

use cairn_core::model::{
    ChatMessage, ChatRequest, ChatResponse, FinishReason, ResponseFormat, Role, ToolCall,
    ToolChoice, ToolDefinition, Usage,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::ApiError;

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

/// The request in core types, whether to stream, and whether the stream ends with a usage chunk.
pub(crate) fn to_core(request: CompletionRequest) -> Result<(ChatRequest, bool, bool), ApiError> {
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
        messages.push(message.into_core(index)?);
    }
    let mut tools = Vec::with_capacity(request.tools.len());
    for (index, tool) in request.tools.into_iter().enumerate() {
        tools.push(tool.into_core(index)?);
    }
    let tool_choice = request
        .tool_choice
        .map(WireToolChoice::into_core)
        .transpose()?;
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
        response_format: request.response_format.map(WireResponseFormat::into_core),
        seed: request.seed,
    };
    Ok((core, request.stream, include_usage))
}

impl WireMessage {
    /// `messages[index]` as a core message: a known role, text content, and a tool message's
    /// `tool_call_id`.
    fn into_core(self, index: usize) -> Result<ChatMessage, ApiError> {
        let role = match self.role.as_str() {
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
        let content = match self.content {
            None => String::new(),
            Some(Content::Text(text)) => text,
            Some(Content::Parts(parts)) => text_of_parts(index, parts)?,
        };
        if role == Role::Tool && self.tool_call_id.is_none() {
            return Err(invalid(format!(
                "messages[{index}]: a tool message needs `tool_call_id`"
            )));
        }
        let mut core = ChatMessage::new(role, content);
        core.tool_calls = self
            .tool_calls
            .into_iter()
            .map(|call| ToolCall {
                id: call.id,
                name: call.function.name,
                arguments: call.function.arguments,
            })
            .collect();
        core.tool_call_id = self.tool_call_id;
        Ok(core)
    }
}

/// The text parts of `messages[index]`, joined; any other kind of part is refused.
fn text_of_parts(index: usize, parts: Vec<ContentPart>) -> Result<String, ApiError> {
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
    Ok(text)
}

impl WireTool {
    /// `tools[index]` as a core tool: only functions; no parameters means an empty object.
    fn into_core(self, index: usize) -> Result<ToolDefinition, ApiError> {
        if self.kind != "function" {
            return Err(invalid(format!(
                "tools[{index}].type `{}` is not supported; use `function`",
                self.kind
            )));
        }
        Ok(ToolDefinition {
            name: self.function.name,
            description: self.function.description,
            parameters: self
                .function
                .parameters
                .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
        })
    }
}

impl WireToolChoice {
    fn into_core(self) -> Result<ToolChoice, ApiError> {
        match self {
            WireToolChoice::Mode(mode) => match mode.as_str() {
                "auto" => Ok(ToolChoice::Auto),
                "none" => Ok(ToolChoice::None),
                "required" => Ok(ToolChoice::Required),
                other => Err(invalid(format!(
                    "tool_choice `{other}` is not one of auto, none, required"
                ))),
            },
            WireToolChoice::Named { function } => Ok(ToolChoice::Function(function.name)),
        }
    }
}

impl WireResponseFormat {
    fn into_core(self) -> ResponseFormat {
        match self {
            WireResponseFormat::Text => ResponseFormat::Text,
            WireResponseFormat::JsonObject => ResponseFormat::JsonObject,
            WireResponseFormat::JsonSchema { json_schema } => ResponseFormat::JsonSchema {
                name: json_schema.name,
                schema: json_schema.schema,
                strict: json_schema.strict.unwrap_or(false),
            },
        }
    }
}

pub(crate) fn finish_reason(reason: FinishReason) -> &'static str {
    match reason {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
        FinishReason::ToolCalls => "tool_calls",
        FinishReason::ContentFilter => "content_filter",
    }
}

pub(crate) fn usage_json(usage: Usage) -> Value {
    json!({
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_input_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    })
}

pub(crate) fn tool_calls_json(calls: &[ToolCall]) -> Value {
    calls
        .iter()
        .enumerate()
        .map(|(index, call)| {
            json!({"index": index, "id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}})
        })
        .collect()
}

pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub(crate) fn completion_json(id: &str, model: &str, response: ChatResponse) -> Value {
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
