//! Agents' port: the tools an agent may call ([`AgentTool`]), the steps a run records
//! ([`AgentStep`], kept in a [`StepLog`]), and the [`AgentRunner`] that turns one run's parts
//! (the route, the rendered system prompt, the tools, the limits) into a [`ChatModel`] the answer
//! pipeline completes or streams like any other.
//!
//! The pipeline (`cairn-app`) assembles a run: it resolves the agent's route and prompt, binds
//! Cairn's own tools to the caller, and adds the external tools the runner offers; the runner
//! (`cairn-agent`) runs the loop.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::{ChatMessage, ChatModel, ToolDefinition, Usage};

/// A tool as the model sees it, and where it comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// The name the model calls it by: unique within one agent.
    pub name: String,
    pub description: String,
    /// JSON Schema of the arguments (an object schema).
    pub parameters: Value,
    /// `cairn` for Cairn's own tools, else the `[[mcp_servers]]` name that serves it.
    pub source: String,
}

impl ToolSpec {
    pub fn definition(&self) -> ToolDefinition {
        ToolDefinition {
            name: self.name.clone(),
            description: self.description.clone(),
            parameters: self.parameters.clone(),
        }
    }
}

/// The name the model knows an external server's tool by: `SERVER__TOOL`, in the characters
/// OpenAI function names allow, at most 64 of them.
pub fn external_name(server: &str, tool: &str) -> String {
    format!("{server}__{tool}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect()
}

/// Why a tool call gave no result. The agent's model sees the message and may try otherwise.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ToolError {
    /// The arguments do not fit the tool's schema (or are not JSON).
    #[error("invalid arguments: {0}")]
    InvalidArguments(String),
    /// The tool ran and failed.
    #[error("{0}")]
    Failed(String),
    /// The tool's server is not running or went away.
    #[error("tool unavailable: {0}")]
    Unavailable(String),
    /// The call ran past its timeout.
    #[error("no result within {} ms", .0.as_millis())]
    TimedOut(Duration),
    /// A guardrail stopped the result before the model saw it.
    #[error("guardrail `{guard}` withheld the result: {reason}")]
    Blocked { guard: String, reason: String },
}

impl ToolError {
    /// A short stable name, for lineage and metrics.
    pub fn status(&self) -> &'static str {
        match self {
            ToolError::InvalidArguments(_) => "invalid_arguments",
            ToolError::Failed(_) => "failed",
            ToolError::Unavailable(_) => "unavailable",
            ToolError::TimedOut(_) => "timed_out",
            ToolError::Blocked { .. } => "blocked",
        }
    }
}

/// A tool an agent may call: one of Cairn's own, or one an external MCP server serves.
#[async_trait]
pub trait AgentTool: Send + Sync + fmt::Debug {
    fn spec(&self) -> &ToolSpec;
    /// Runs the tool; the text is what the model reads as the result.
    async fn call(&self, arguments: Value) -> Result<String, ToolError>;
}

/// One step of an agent run, as lineage records it and a stream shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AgentStep {
    /// A call of the agent's model.
    Model {
        /// 1-based, counting model calls.
        step: u32,
        route: String,
        /// The model that answered, as the provider names it.
        model: String,
        usage: Usage,
        cost_usd: Option<f64>,
        latency_ms: u64,
        /// The tools it asked for, in order.
        tool_calls: Vec<String>,
        /// `ok`, or the model error's class.
        status: String,
    },
    /// A call of a tool the model asked for.
    Tool {
        /// The model step that asked for it.
        step: u32,
        call_id: String,
        /// `cairn`, or the MCP server's name.
        source: String,
        tool: String,
        arguments: Value,
        /// `running` (streamed when it starts), `ok`, `awaiting_approval`, `denied`, or a
        /// [`ToolError::status`].
        status: String,
        /// Characters of the result the model read.
        result_chars: usize,
        latency_ms: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
}

/// How a run ended, besides a model error (which ends the answer with that error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// The model gave its final answer.
    Answered,
    /// It used its `max_steps` model calls without a final answer.
    StepLimit,
    /// It used its token or cost budget.
    Budget,
    /// It stopped at tool calls that need the user's approval; they are the answer's tool calls,
    /// and the run goes on when the caller sends the decisions back.
    AwaitingApproval,
    /// Its deadline passed.
    Deadline,
}

impl RunOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Answered => "ok",
            RunOutcome::StepLimit => "step_limit",
            RunOutcome::Budget => "budget",
            RunOutcome::AwaitingApproval => "awaiting_approval",
            RunOutcome::Deadline => "deadline",
        }
    }
}

/// The steps of one run, shared by the run that writes them and the lineage record that reads
/// them when the answer's outcome is known (a dropped run keeps what it did).
#[derive(Debug, Clone, Default)]
pub struct StepLog {
    inner: Arc<Mutex<StepLogInner>>,
}

#[derive(Debug, Default)]
struct StepLogInner {
    steps: Vec<AgentStep>,
    outcome: Option<RunOutcome>,
}

impl StepLog {
    pub fn push(&self, step: AgentStep) {
        self.lock().steps.push(step);
    }

    pub fn finish(&self, outcome: RunOutcome) {
        self.lock().outcome = Some(outcome);
    }

    pub fn steps(&self) -> Vec<AgentStep> {
        self.lock().steps.clone()
    }

    pub fn outcome(&self) -> Option<RunOutcome> {
        self.lock().outcome
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, StepLogInner> {
        // A panic while holding the lock leaves plain data behind: still readable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What bounds one run.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentLimits {
    /// Model calls at most.
    pub max_steps: u32,
    /// Tokens (input and output, all steps) at most; 0: no limit.
    pub max_tokens: u64,
    /// US dollars at most, when the route knows its prices; `None`: no limit.
    pub max_cost_usd: Option<f64>,
    /// The whole run's time.
    pub deadline: Duration,
    /// Each tool call's time.
    pub tool_timeout: Duration,
    /// Whether the tool calls of one model step run at once.
    pub parallel_tools: bool,
}

impl Default for AgentLimits {
    fn default() -> Self {
        AgentLimits {
            max_steps: 8,
            max_tokens: 0,
            max_cost_usd: None,
            deadline: Duration::from_secs(120),
            tool_timeout: Duration::from_secs(30),
            parallel_tools: true,
        }
    }
}

/// Everything one run needs, assembled by the pipeline.
#[derive(Debug, Clone)]
pub struct AgentRun {
    /// The agent's name.
    pub agent: String,
    /// The route (or model) its model calls go to, by name and as a model.
    pub route: String,
    pub model: Arc<dyn ChatModel>,
    /// The rendered system prompt, placed before the caller's messages.
    pub system: Vec<ChatMessage>,
    pub tools: Vec<Arc<dyn AgentTool>>,
    /// The tools (by the name the model calls) that run only once the user approves the call.
    pub approval: Vec<String>,
    pub limits: AgentLimits,
    pub steps: StepLog,
}

/// Runs agents, and serves the tools of external MCP servers.
#[async_trait]
pub trait AgentRunner: Send + Sync + fmt::Debug {
    /// The external tools there are now (`[[mcp_servers]]`), each named as the model sees it;
    /// the first call waits for the servers to start.
    async fn external_tools(&self) -> Vec<Arc<dyn AgentTool>>;
    /// The run as a model: completing it runs the loop to the final answer; streaming it shows
    /// each step (`ChatChunk::Step`) as it happens.
    fn bind(&self, run: AgentRun) -> Arc<dyn ChatModel>;
}
