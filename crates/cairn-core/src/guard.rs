//! The guardrail port: checks on user input, retrieved context and model output.

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// Where in the chat flow a guardrail runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GuardStage {
    Input,
    RetrievedContext,
    Output,
}

/// What a guardrail decided about a text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum GuardVerdict {
    Allow,
    /// Let the text through with these replacements applied (PII redaction, for example).
    Redact {
        text: String,
        findings: Vec<String>,
    },
    /// Stop the request; `reason` is shown to the user.
    Block {
        reason: String,
    },
}

/// A check applied to text at one or more stages.
#[async_trait]
pub trait Guardrail: Send + Sync + fmt::Debug {
    fn name(&self) -> &str;
    fn stages(&self) -> &[GuardStage];
    async fn check(&self, stage: GuardStage, text: &str) -> GuardVerdict;
}
