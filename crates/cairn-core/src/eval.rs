//! The eval harness's port: how it asks a target (an app, or a model or route with a registered
//! prompt) and a judge for an answer. The application layer implements it over the one answer
//! pipeline, so eval calls get the same limits, guards, cache and lineage as every other door; the
//! harness itself (`cairn-eval`) knows only this trait.

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::model::ResponseFormat;

/// What an eval case calls.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EvalTarget {
    /// A configured RAG app (`app:NAME`): the answer and the passages it retrieved.
    App(String),
    /// A model or route (`route:NAME`, `model:NAME`), given either the question as a user
    /// message or, with `prompt` (`name@label`, `name@3`, `name`), the prompt rendered from the
    /// case's variables.
    Model {
        route: String,
        prompt: Option<String>,
    },
    /// A configured agent (`agent:NAME`): its answer and the steps of its run.
    Agent(String),
    /// `given`: each case brings its answer and the passages it was given (a logged production
    /// answer, another system's output); nothing is called, the answers are only scored.
    Given,
}

impl EvalTarget {
    /// Reads `app:NAME`, `agent:NAME`, `route:NAME`, `model:NAME` or `given`.
    pub fn parse(text: &str) -> Option<EvalTarget> {
        if text == "given" {
            return Some(EvalTarget::Given);
        }
        let (kind, name) = text.split_once(':')?;
        if name.is_empty() {
            return None;
        }
        match kind {
            "app" => Some(EvalTarget::App(name.to_owned())),
            "agent" => Some(EvalTarget::Agent(name.to_owned())),
            "route" | "model" => Some(EvalTarget::Model {
                route: name.to_owned(),
                prompt: None,
            }),
            _ => None,
        }
    }

    pub fn with_prompt(self, prompt: Option<String>) -> EvalTarget {
        match self {
            EvalTarget::Model { route, .. } => EvalTarget::Model { route, prompt },
            app => app,
        }
    }
}

impl fmt::Display for EvalTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EvalTarget::App(name) => write!(f, "app:{name}"),
            EvalTarget::Agent(name) => write!(f, "agent:{name}"),
            EvalTarget::Model {
                route,
                prompt: None,
            } => write!(f, "route:{route}"),
            EvalTarget::Model {
                route,
                prompt: Some(prompt),
            } => write!(f, "route:{route} prompt:{prompt}"),
            EvalTarget::Given => f.write_str("given"),
        }
    }
}

/// One call: the question (a user message) and the variables a prompt renders from.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct EvalCall {
    pub question: String,
    /// A JSON object; the question is also offered as `question` unless set here.
    pub variables: Value,
    /// Asks for JSON matching a schema; the pipeline asks again while it is not met.
    pub response_format: Option<ResponseFormat>,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f32>,
    /// Whether an answer cached from an identical earlier call may stand in.
    pub use_cache: bool,
    /// Registered prompts to use at these versions instead of the label or version the target
    /// names (prompt name → version): how a candidate version is evaluated before a label moves
    /// to it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub prompt_pins: BTreeMap<String, i64>,
}

/// A passage the answer was given, in the order the prompt numbered them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalPassage {
    pub source: String,
    pub title: String,
    pub text: String,
    pub score: f32,
}

/// What came back.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct EvalAnswer {
    pub text: String,
    /// The question as the pipeline keeps it: values its guards redacted stay placeholders (empty
    /// when the answerer does not say).
    #[serde(default)]
    pub question: String,
    pub passages: Vec<EvalPassage>,
    /// The lineage record of the answer.
    pub lineage_id: Option<Uuid>,
    /// The registered prompt and version that produced it.
    pub prompt: Option<(String, Option<i64>)>,
    pub latency_ms: f64,
    pub cost_usd: Option<f64>,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    /// Whether the answer cache gave it (no model call was made).
    pub cached: bool,
    /// An agent's run: its model and tool calls, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<crate::agent::AgentStep>,
}

/// Why a call gave no answer. The harness records the score it would have fed as unmeasured,
/// with this text as the reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalCallError {
    /// The target or judge does not exist or cannot be called as configured: the suite cannot
    /// run, so no case is worth trying.
    #[error("{0}")]
    Unusable(String),
    /// This call failed (model error, timeout, a schema never met); other cases may still work.
    #[error("{0}")]
    Failed(String),
}

/// Answers eval calls: implemented by the application layer over the answer pipeline, and by
/// scripted fakes in tests.
#[async_trait]
pub trait Answerer: Send + Sync + fmt::Debug {
    async fn answer(
        &self,
        target: &EvalTarget,
        call: &EvalCall,
    ) -> Result<EvalAnswer, EvalCallError>;

    /// Checks, without calling a model, that `call` can be made: the target exists and its
    /// prompt renders from the call's variables. The harness checks one call per target and
    /// judge before the first model call.
    async fn check(&self, target: &EvalTarget, call: &EvalCall) -> Result<(), EvalCallError>;

    /// The version a registered prompt reference (`name`, `name@label`, `name@3`) resolves to now,
    /// or `None` when it cannot say; the harness caches a prompt call's answer only when it knows.
    async fn prompt_version(&self, reference: &str) -> Option<i64> {
        let _ = reference;
        None
    }

    /// Embeds texts with the platform's own embedding model (the one collections are indexed
    /// with), for similarity metrics. An empty slice checks that there is one.
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EvalCallError> {
        let _ = texts;
        Err(EvalCallError::Unusable(
            "no embedding model is available to this answerer".into(),
        ))
    }
}

/// A fresh answer of an app, offered to online evaluation once it is complete. Texts are as the
/// pipeline keeps them: values its guards redacted stay placeholders.
#[derive(Debug, Clone, PartialEq)]
pub struct Answered {
    pub lineage_id: Uuid,
    pub app: String,
    pub question: String,
    pub answer: String,
    pub passages: Vec<EvalPassage>,
}

/// Judges a sample of production answers off the request path (`[[evals.online]]`): the pipeline
/// offers each fresh app answer, and the evaluator takes some of them.
pub trait OnlineEvaluator: Send + Sync + fmt::Debug {
    /// Takes or leaves an answer. Returns at once: judging happens elsewhere, never on the
    /// request's path.
    fn observe(&self, answered: Answered);
}
