//! Why an answer could not be given, classified by what the front door tells its caller. The HTTP
//! API and MCP each map this enum once, exhaustively.

use cairn_core::guard::GuardStage;
use cairn_core::{CatalogError, ModelError};

#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    /// No model, route or app has the name the caller gave.
    #[error("{0}")]
    UnknownTarget(String),
    /// No guardrail has the name the caller gave.
    #[error("{0}")]
    UnknownGuard(String),
    /// The request cannot be answered as sent; `code` is stable, the message says what to change.
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    /// A rate limit or budget refuses the call.
    #[error(transparent)]
    Limited(#[from] cairn_gateway::Limited),
    /// A guardrail stopped the request or the answer.
    #[error("guardrail `{guard}` blocked the {}: {reason}", stage_name(*stage))]
    Blocked {
        guard: String,
        stage: GuardStage,
        reason: String,
    },
    /// Retrieval is not set up (the embedding model or the index could not be opened).
    #[error("retrieval is unavailable: {0}")]
    RetrievalUnavailable(String),
    #[error(transparent)]
    Prompt(#[from] cairn_prompts::PromptError),
    #[error(transparent)]
    Rag(#[from] cairn_rag::RagError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The model's answer did not match the requested JSON Schema, asked again as far as allowed.
    #[error(
        "the model's answer did not match the requested JSON schema after {attempts} attempts: {problem}"
    )]
    SchemaNotMet { attempts: u32, problem: String },
    /// The request's deadline passed before the answer was done.
    #[error("the answer was not done by the request's deadline")]
    DeadlineExceeded,
    /// A wiring mistake that config validation should have caught.
    #[error("{0}")]
    Internal(String),
}

impl AnswerError {
    pub fn invalid(code: &'static str, message: impl Into<String>) -> AnswerError {
        AnswerError::Invalid {
            code,
            message: message.into(),
        }
    }
}

fn stage_name(stage: GuardStage) -> &'static str {
    match stage {
        GuardStage::Input => "question",
        GuardStage::RetrievedContext => "retrieved context",
        GuardStage::Output => "answer",
    }
}
