//! Model ports: chat completion, embeddings and reranking, with the error classes the router acts on.
//!
//! The request and response types follow the OpenAI chat shape closely, since every provider Cairn
//! speaks to (OpenAI, Azure OpenAI, vLLM, TGI, mistral.rs) accepts it; provider quirks stay in adapters.

use std::fmt;
use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use futures_core::Stream;
use serde::{Deserialize, Serialize};

/// Who wrote a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
    Tool,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "system" => Ok(Role::System),
            "user" => Ok(Role::User),
            "assistant" => Ok(Role::Assistant),
            "tool" => Ok(Role::Tool),
            other => Err(format!(
                "unknown role `{other}`; expected system, user, assistant or tool"
            )),
        }
    }
}

/// One message of a conversation sent to or received from a chat model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
    /// Tool calls requested by the assistant in this message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// For `Role::Tool` messages: the call this message answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl ChatMessage {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        ChatMessage {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }
}

/// A function the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolDefinition {
    pub name: String,
    pub description: String,
    /// JSON schema of the arguments.
    pub parameters: serde_json::Value,
}

/// A call of a tool, as requested by a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// The arguments as the model produced them: a JSON text that may not parse.
    pub arguments: String,
}

/// Whether and which tool the model must call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolChoice {
    /// The model decides.
    Auto,
    /// No tool calls.
    None,
    /// At least one tool call.
    Required,
    /// This function.
    Function(String),
}

/// How the model's output must be shaped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseFormat {
    Text,
    JsonObject,
    JsonSchema {
        name: String,
        schema: serde_json::Value,
        strict: bool,
    },
}

/// The JSON inside a ```json … ``` fence, or `text` itself (trimmed): how models often wrap an
/// answer that was asked to be JSON.
pub fn unfenced_json(text: &str) -> &str {
    let trimmed = text.trim();
    trimmed
        .strip_prefix("```json")
        .or_else(|| trimmed.strip_prefix("```"))
        .and_then(|rest| rest.strip_suffix("```"))
        .map_or(trimmed, str::trim)
}

/// A chat-completion request, already rendered from a prompt version.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ChatRequest {
    /// The provider's model name (deployment name on Azure).
    pub model: String,
    pub messages: Vec<ChatMessage>,
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolDefinition>,
    pub tool_choice: Option<ToolChoice>,
    pub response_format: Option<ResponseFormat>,
    pub seed: Option<u64>,
}

/// Token counts reported for one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u32,
    pub cached_input_tokens: u32,
    pub output_tokens: u32,
    pub reasoning_tokens: u32,
}

/// Why generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    Stop,
    Length,
    ToolCalls,
    ContentFilter,
}

/// A complete answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    pub message: ChatMessage,
    pub finish_reason: FinishReason,
    pub usage: Usage,
    /// The model that actually answered, as the provider names it.
    pub model: String,
    /// What the call cost in US dollars, when the gateway knows the served model's prices.
    #[serde(default)]
    pub cost_usd: Option<f64>,
}

/// One increment of a streamed answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ChatChunk {
    /// Text to append to the answer.
    Delta(String),
    /// A tool call; streamed arguments are assembled by the adapter before this is emitted.
    ToolCall(ToolCall),
    /// A step of an agent run (a model call, or a tool call starting or done): shown to
    /// clients that ask, ignored by the rest.
    Step(crate::agent::AgentStep),
    /// The last item of a successful stream.
    Finish {
        reason: FinishReason,
        usage: Usage,
        /// What the call cost in US dollars, when the gateway knows the served model's prices.
        cost_usd: Option<f64>,
    },
}

/// A streamed answer. It ends after `ChatChunk::Finish` or after the first error.
pub type ChatStream = Pin<Box<dyn Stream<Item = Result<ChatChunk, ModelError>> + Send>>;

/// A model call failure, classified by what the caller should do about it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    /// The request is wrong and will fail the same way anywhere: never retried.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The prompt plus the requested output do not fit the model's context window.
    #[error("context length exceeded: {0}")]
    ContextLengthExceeded(String),
    /// The model (or deployment) does not exist on this provider.
    #[error("model not found: {0}")]
    NotFound(String),
    /// The provider throttled the call; retry after the given delay or fall back.
    #[error("rate limited by the provider{}", retry_after.map(|d| format!(" (retry after {} s)", d.as_secs())).unwrap_or_default())]
    RateLimited { retry_after: Option<Duration> },
    /// A failure that may pass: timeouts, connection resets, 5xx. Retry or fall back.
    #[error("transient model error: {0}")]
    Transient(String),
    /// A failure that will not pass by retrying here (bad credentials, content policy): fall back or fail.
    #[error("model error: {0}")]
    Permanent(String),
}

impl ModelError {
    /// A short stable name of the class, for metrics and logs.
    pub fn class(&self) -> &'static str {
        match self {
            ModelError::InvalidRequest(_) => "invalid_request",
            ModelError::ContextLengthExceeded(_) => "context_length_exceeded",
            ModelError::NotFound(_) => "not_found",
            ModelError::RateLimited { .. } => "rate_limited",
            ModelError::Transient(_) => "transient",
            ModelError::Permanent(_) => "permanent",
        }
    }

    /// Whether retrying the same target may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ModelError::RateLimited { .. } | ModelError::Transient(_)
        )
    }
}

/// A chat-completion backend: Azure OpenAI, an OpenAI-compatible server, mistral.rs, or the router itself.
#[async_trait]
pub trait ChatModel: Send + Sync + fmt::Debug {
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ModelError>;
    async fn stream(&self, request: &ChatRequest) -> Result<ChatStream, ModelError>;
}

/// A text-embedding backend. All vectors of one model have the same dimension.
#[async_trait]
pub trait EmbeddingModel: Send + Sync + fmt::Debug {
    /// A stable identifier of the model; a collection is bound to it.
    fn model_id(&self) -> &str;
    fn dimension(&self) -> usize;
    /// Embeds documents (passages to be indexed).
    async fn embed_documents(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, ModelError>;
    /// Embeds a search query; models with asymmetric prompts override this.
    async fn embed_query(&self, text: &str) -> Result<Vec<f32>, ModelError> {
        let mut vectors = self.embed_documents(&[text.to_owned()]).await?;
        vectors
            .pop()
            .ok_or_else(|| ModelError::Permanent("embedding model returned no vector".into()))
    }
}

/// Scores (query, passage) pairs; higher is more relevant.
#[async_trait]
pub trait Reranker: Send + Sync + fmt::Debug {
    async fn rerank(&self, query: &str, passages: &[String]) -> Result<Vec<f32>, ModelError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_transient_failures_are_retryable() {
        assert!(ModelError::Transient("reset".into()).is_retryable());
        assert!(ModelError::RateLimited { retry_after: None }.is_retryable());
        assert!(!ModelError::InvalidRequest("bad".into()).is_retryable());
        assert!(!ModelError::ContextLengthExceeded("8k".into()).is_retryable());
        assert!(!ModelError::Permanent("401".into()).is_retryable());
    }

    #[test]
    fn roles_round_trip_through_their_names() {
        for role in [Role::System, Role::User, Role::Assistant, Role::Tool] {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!("robot".parse::<Role>().is_err());
    }
}
