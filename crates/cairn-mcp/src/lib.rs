//! Cairn as an MCP tool server for IDE agents (VS Code, Cursor, Claude Code, Codex).
//!
//! [`CairnMcp`] exposes the knowledge base (search, documents, collections), cited answers, the
//! prompt registry and eval suites (stored runs, and a suite run on request) as MCP tools, registry prompts through the prompts capability, and documents as
//! resources (`cairn://collections/{collection}/documents/{id}`). It runs over stdio
//! ([`CairnMcp::serve_stdio`], as the local user) or streamable HTTP ([`http::router`], behind
//! API-key auth with RFC 9728 protected-resource metadata). Every tool checks the caller's
//! [`Grant`]: which tools it may call and which collections it may read.
//!
//! Answering goes through the [`Answerer`] port, which the server crate implements with its apps
//! and routes, so this crate depends on the core, retrieval and prompt crates only.

pub mod http;
mod server;
mod tools;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use cairn_core::Catalog;
use cairn_prompts::PromptRegistry;
use cairn_rag::Retriever;

pub use cairn_auth::{Grant, keys};
pub use server::CairnMcp;
pub use tools::evals::{EvalSuiteOutput, FailingCaseOut, GateOut, MetricOut, SuiteRunOut};
pub use tools::{AnswerOutput, CheckOutput, TOOL_NAMES};

/// What the tools read.
#[derive(Debug, Clone)]
pub struct Knowledge {
    pub catalog: Arc<dyn Catalog>,
    /// Retrieval, or why it is unavailable (search tools then answer with that reason).
    pub retriever: Result<Retriever, String>,
    pub prompts: Arc<PromptRegistry>,
    pub answerer: Arc<dyn Answerer>,
}

/// What an answer is produced from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnswerTarget {
    /// A configured RAG app: its collections, prompt and route.
    App(String),
    /// One collection, with the default answering prompt and route.
    Collection(String),
    /// A configured agent: it calls its tools, as the caller, until it has an answer.
    Agent(String),
}

/// Produces cited answers; implemented by the server crate over its apps and model routes.
#[async_trait]
pub trait Answerer: Send + Sync + fmt::Debug {
    /// The collections an app reads, or `None` when no app has this name.
    fn app_collections(&self, app: &str) -> Option<Vec<String>>;
    /// Answers `question` from the target's collections. The error is a message for the caller.
    /// `grant` is the caller's, so limits and lineage count the same caller as every other door.
    async fn answer(
        &self,
        grant: &Grant,
        target: &AnswerTarget,
        question: &str,
    ) -> Result<AnswerOutput, String>;
    /// Runs the named guardrails over `text` as at `stage`; the verdict as JSON, or a message.
    async fn check_text(
        &self,
        guards: &[String],
        stage: cairn_core::guard::GuardStage,
        text: String,
    ) -> Result<CheckOutput, String>;
    /// Runs the eval suite named `suite` (a file of the configured suites directory) as the
    /// caller, through the answer pipeline, and stores the run. The error is a message.
    async fn run_eval(&self, grant: &Grant, suite: &str) -> Result<EvalSuiteOutput, String>;
}
