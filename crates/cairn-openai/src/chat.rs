//! `ChatModel` over the chat-completions endpoint: requests, responses and streams converted between
//! Cairn's types and the OpenAI wire types.

use std::collections::{BTreeMap, VecDeque};

use async_openai::Client;
use async_openai::types::chat::{
    ChatCompletionMessageToolCall, ChatCompletionMessageToolCalls, ChatCompletionNamedToolChoice,
    ChatCompletionRequestAssistantMessage, ChatCompletionRequestMessage,
    ChatCompletionRequestSystemMessage, ChatCompletionRequestToolMessage,
    ChatCompletionRequestUserMessage, ChatCompletionResponseStream, ChatCompletionStreamOptions,
    ChatCompletionTool, ChatCompletionToolChoiceOption, ChatCompletionTools, CompletionUsage,
    CreateChatCompletionRequest, FinishReason as WireFinishReason, FunctionCall, FunctionName,
    FunctionObject, ResponseFormat as WireResponseFormat, ResponseFormatJsonSchema,
    StopConfiguration, ToolChoiceOptions,
};
use async_trait::async_trait;
use cairn_core::model::{
    ChatChunk, ChatMessage, ChatModel, ChatRequest, ChatResponse, ChatStream, FinishReason,
    ModelError, ResponseFormat, Role, ToolCall, ToolChoice, Usage,
};
use futures_util::StreamExt;

use crate::endpoint::{Endpoint, EndpointConfig, EndpointError, Timeouts};
use crate::errors::{Scrub, classify};

/// A chat model served over the OpenAI API. Bound to one upstream model (or Azure deployment).
#[derive(Debug, Clone)]
pub struct OpenAiChatModel {
    client: Client<EndpointConfig>,
    model: String,
    /// OpenAI and Azure want `max_completion_tokens`; most compatible servers know only `max_tokens`.
    use_max_completion_tokens: bool,
}

impl OpenAiChatModel {
    /// `model` is the upstream name (`gpt-4o-mini`, `Qwen/Qwen2.5-7B-Instruct`; the deployment on Azure).
    pub fn new(
        endpoint: &Endpoint,
        model: impl Into<String>,
        timeouts: Timeouts,
    ) -> Result<Self, EndpointError> {
        let use_max_completion_tokens = match endpoint {
            Endpoint::Azure { .. } => true,
            Endpoint::OpenAi { base_url, .. } => reqwest::Url::parse(base_url)
                .ok()
                .and_then(|u| u.host_str().map(|h| h == "api.openai.com"))
                .unwrap_or(false),
        };
        let client = EndpointConfig::new(endpoint)?.client(timeouts)?;
        Ok(OpenAiChatModel {
            client,
            model: model.into(),
            use_max_completion_tokens,
        })
    }

    fn wire_request(&self, request: &ChatRequest) -> CreateChatCompletionRequest {
        let tools: Vec<ChatCompletionTools> = request
            .tools
            .iter()
            .map(|tool| {
                ChatCompletionTools::Function(ChatCompletionTool {
                    function: FunctionObject {
                        name: tool.name.clone(),
                        description: Some(tool.description.clone()).filter(|d| !d.is_empty()),
                        parameters: Some(tool.parameters.clone()),
                        strict: None,
                    },
                })
            })
            .collect();
        let (max_tokens, max_completion_tokens) = if self.use_max_completion_tokens {
            (None, request.max_tokens)
        } else {
            (request.max_tokens, None)
        };
        #[allow(deprecated)] // `max_tokens` and `seed` are what compatible servers understand.
        CreateChatCompletionRequest {
            model: self.model.clone(),
            messages: request.messages.iter().map(wire_message).collect(),
            temperature: request.temperature,
            top_p: request.top_p,
            max_tokens,
            max_completion_tokens,
            stop: (!request.stop.is_empty())
                .then(|| StopConfiguration::StringArray(request.stop.clone())),
            tools: (!tools.is_empty()).then_some(tools),
            tool_choice: request.tool_choice.as_ref().map(wire_tool_choice),
            response_format: request.response_format.as_ref().map(wire_response_format),
            seed: request.seed.and_then(|seed| i64::try_from(seed).ok()),
            ..Default::default()
        }
    }
}

fn wire_message(message: &ChatMessage) -> ChatCompletionRequestMessage {
    match message.role {
        Role::System => ChatCompletionRequestMessage::System(
            ChatCompletionRequestSystemMessage::from(message.content.as_str()),
        ),
        Role::User => ChatCompletionRequestMessage::User(ChatCompletionRequestUserMessage::from(
            message.content.as_str(),
        )),
        Role::Assistant => {
            let tool_calls: Vec<ChatCompletionMessageToolCalls> = message
                .tool_calls
                .iter()
                .map(|call| {
                    ChatCompletionMessageToolCalls::Function(ChatCompletionMessageToolCall {
                        id: call.id.clone(),
                        function: FunctionCall {
                            name: call.name.clone(),
                            arguments: call.arguments.clone(),
                        },
                    })
                })
                .collect();
            #[allow(deprecated)]
            ChatCompletionRequestMessage::Assistant(ChatCompletionRequestAssistantMessage {
                content: (!message.content.is_empty() || tool_calls.is_empty())
                    .then(|| message.content.as_str().into()),
                tool_calls: (!tool_calls.is_empty()).then_some(tool_calls),
                ..Default::default()
            })
        }
        Role::Tool => ChatCompletionRequestMessage::Tool(ChatCompletionRequestToolMessage {
            content: message.content.as_str().into(),
            tool_call_id: message.tool_call_id.clone().unwrap_or_default(),
        }),
    }
}

fn wire_tool_choice(choice: &ToolChoice) -> ChatCompletionToolChoiceOption {
    match choice {
        ToolChoice::Auto => ChatCompletionToolChoiceOption::Mode(ToolChoiceOptions::Auto),
        ToolChoice::None => ChatCompletionToolChoiceOption::Mode(ToolChoiceOptions::None),
        ToolChoice::Required => ChatCompletionToolChoiceOption::Mode(ToolChoiceOptions::Required),
        ToolChoice::Function(name) => {
            ChatCompletionToolChoiceOption::Function(ChatCompletionNamedToolChoice {
                function: FunctionName { name: name.clone() },
            })
        }
    }
}

fn wire_response_format(format: &ResponseFormat) -> WireResponseFormat {
    match format {
        ResponseFormat::Text => WireResponseFormat::Text,
        ResponseFormat::JsonObject => WireResponseFormat::JsonObject,
        ResponseFormat::JsonSchema {
            name,
            schema,
            strict,
        } => WireResponseFormat::JsonSchema {
            json_schema: ResponseFormatJsonSchema {
                description: None,
                name: name.clone(),
                schema: schema.clone(),
                strict: Some(*strict),
            },
        },
    }
}

fn finish_reason(reason: WireFinishReason) -> FinishReason {
    match reason {
        WireFinishReason::Stop => FinishReason::Stop,
        WireFinishReason::Length => FinishReason::Length,
        WireFinishReason::ToolCalls | WireFinishReason::FunctionCall => FinishReason::ToolCalls,
        WireFinishReason::ContentFilter => FinishReason::ContentFilter,
    }
}

/// Token counts for a call whose server reported none (some OpenAI-compatible servers omit usage,
/// or do not honour `include_usage` on streams): counted with OpenAI's `o200k_base` encoding, and
/// OpenAI's framing of 3 tokens per message plus 3 to prime the answer. Exact for recent OpenAI
/// models; an estimate for others, whose own tokenizers differ.
pub fn estimate_usage(messages: &[ChatMessage], output: &str) -> Usage {
    let bpe = tiktoken_rs::o200k_base_singleton();
    let count = |text: &str| u32::try_from(bpe.encode_ordinary(text).len()).unwrap_or(u32::MAX);
    let input = messages.iter().fold(3u32, |total, message| {
        let calls: u32 = message
            .tool_calls
            .iter()
            .map(|call| count(&call.name).saturating_add(count(&call.arguments)))
            .sum();
        total
            .saturating_add(3)
            .saturating_add(count(&message.content))
            .saturating_add(calls)
    });
    Usage {
        input_tokens: input,
        cached_input_tokens: 0,
        output_tokens: count(output),
        reasoning_tokens: 0,
    }
}

fn answer_text(message: &ChatMessage) -> String {
    let mut text = message.content.clone();
    for call in &message.tool_calls {
        text.push_str(&call.name);
        text.push_str(&call.arguments);
    }
    text
}

fn usage(usage: Option<&CompletionUsage>) -> Usage {
    usage.map_or_else(Usage::default, |u| Usage {
        input_tokens: u.prompt_tokens,
        cached_input_tokens: u
            .prompt_tokens_details
            .as_ref()
            .and_then(|d| d.cached_tokens)
            .unwrap_or(0),
        output_tokens: u.completion_tokens,
        reasoning_tokens: u
            .completion_tokens_details
            .as_ref()
            .and_then(|d| d.reasoning_tokens)
            .unwrap_or(0),
    })
}

fn tool_call(call: &ChatCompletionMessageToolCalls) -> Option<ToolCall> {
    match call {
        ChatCompletionMessageToolCalls::Function(call) => Some(ToolCall {
            id: call.id.clone(),
            name: call.function.name.clone(),
            arguments: call.function.arguments.clone(),
        }),
        ChatCompletionMessageToolCalls::Custom(_) => None,
    }
}

impl OpenAiChatModel {
    /// What error text from this endpoint must not carry: its credential, among others.
    fn scrub(&self) -> Scrub {
        Scrub::new(async_openai::config::Config::api_key(self.client.config()))
    }
}

#[async_trait]
impl ChatModel for OpenAiChatModel {
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ModelError> {
        let response = crate::retry_after::scoped(async {
            self.client
                .chat()
                .create(self.wire_request(request))
                .await
                .map_err(|e| classify(e, &self.scrub()))
        })
        .await?;
        let choice = response.choices.into_iter().next().ok_or_else(|| {
            ModelError::Permanent("the model server answered with no choices".into())
        })?;
        let mut message =
            ChatMessage::new(Role::Assistant, choice.message.content.unwrap_or_default());
        message.tool_calls = choice
            .message
            .tool_calls
            .iter()
            .flatten()
            .filter_map(tool_call)
            .collect();
        let reason = choice.finish_reason.map_or(
            if message.tool_calls.is_empty() {
                FinishReason::Stop
            } else {
                FinishReason::ToolCalls
            },
            finish_reason,
        );
        let usage = match response.usage.as_ref() {
            Some(reported) => usage(Some(reported)),
            None => estimate_usage(&request.messages, &answer_text(&message)),
        };
        Ok(ChatResponse {
            message,
            finish_reason: reason,
            usage,
            model: response.model,
            cost_usd: None,
        })
    }

    async fn stream(&self, request: &ChatRequest) -> Result<ChatStream, ModelError> {
        let mut wire = self.wire_request(request);
        wire.stream_options = Some(ChatCompletionStreamOptions {
            include_usage: Some(true),
            include_obfuscation: None,
        });
        let upstream = crate::retry_after::scoped(async {
            self.client
                .chat()
                .create_stream(wire)
                .await
                .map_err(|e| classify(e, &self.scrub()))
        })
        .await?;
        let state = StreamState {
            scrub: self.scrub(),
            upstream,
            calls: BTreeMap::new(),
            finish: None,
            usage: None,
            messages: request.messages.clone(),
            text: String::new(),
            pending: VecDeque::new(),
            done: false,
        };
        Ok(Box::pin(futures_util::stream::unfold(
            state,
            StreamState::next,
        )))
    }
}

/// A tool call being assembled from stream deltas.
#[derive(Debug, Default)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
}

/// Turns the wire stream into Cairn's: text deltas as they come, tool calls once complete, and a
/// final `Finish` with usage; a stream that ends without a finish reason is an error, not a
/// silently truncated answer.
struct StreamState {
    /// Makes the provider's error text safe to pass on.
    scrub: Scrub,
    upstream: ChatCompletionResponseStream,
    calls: BTreeMap<u32, PartialCall>,
    finish: Option<FinishReason>,
    /// As the server reported it, if it did.
    usage: Option<Usage>,
    /// The request's messages and the answer so far, to count tokens when the server does not.
    messages: Vec<ChatMessage>,
    text: String,
    pending: VecDeque<Result<ChatChunk, ModelError>>,
    done: bool,
}

impl StreamState {
    async fn next(mut self) -> Option<(Result<ChatChunk, ModelError>, Self)> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some((item, self));
            }
            if self.done {
                return None;
            }
            match self.upstream.next().await {
                Some(Ok(chunk)) => {
                    if chunk.usage.is_some() {
                        self.usage = Some(usage(chunk.usage.as_ref()));
                    }
                    for choice in chunk.choices.into_iter().filter(|c| c.index == 0) {
                        if let Some(text) = choice.delta.content.filter(|t| !t.is_empty()) {
                            if self.usage.is_none() {
                                self.text.push_str(&text);
                            }
                            self.pending.push_back(Ok(ChatChunk::Delta(text)));
                        }
                        for delta in choice.delta.tool_calls.into_iter().flatten() {
                            let call = self.calls.entry(delta.index).or_default();
                            if let Some(id) = delta.id {
                                call.id = id;
                            }
                            if let Some(function) = delta.function {
                                call.name
                                    .push_str(function.name.as_deref().unwrap_or_default());
                                call.arguments
                                    .push_str(function.arguments.as_deref().unwrap_or_default());
                            }
                        }
                        if let Some(reason) = choice.finish_reason {
                            self.finish = Some(finish_reason(reason));
                        }
                    }
                }
                Some(Err(error)) => {
                    self.pending.push_back(Err(classify(error, &self.scrub)));
                    self.done = true;
                }
                None => {
                    self.done = true;
                    match self.finish {
                        Some(reason) => {
                            let usage = match self.usage {
                                Some(usage) => usage,
                                None => {
                                    for call in self.calls.values() {
                                        self.text.push_str(&call.name);
                                        self.text.push_str(&call.arguments);
                                    }
                                    estimate_usage(&self.messages, &self.text)
                                }
                            };
                            for (_, call) in std::mem::take(&mut self.calls) {
                                self.pending.push_back(Ok(ChatChunk::ToolCall(ToolCall {
                                    id: call.id,
                                    name: call.name,
                                    arguments: call.arguments,
                                })));
                            }
                            self.pending.push_back(Ok(ChatChunk::Finish {
                                reason,
                                usage,
                                cost_usd: None,
                            }));
                        }
                        None => self.pending.push_back(Err(ModelError::Transient(
                            "the model server closed the stream before the answer finished".into(),
                        ))),
                    }
                }
            }
        }
    }
}
