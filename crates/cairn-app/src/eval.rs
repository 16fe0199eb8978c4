//! The eval harness's door into the pipeline: [`PipelineAnswerer`] implements
//! [`cairn_core::Answerer`] by calling [`Pipeline::answer`] in process, so eval targets and judges
//! go through the same limits, guards, answer cache and lineage as every other front door.

use std::time::Instant;

use async_trait::async_trait;
use cairn_core::eval::{Answerer, EvalAnswer, EvalCall, EvalCallError, EvalTarget};
use cairn_core::model::{ChatMessage, ChatRequest, Role};
use cairn_core::{Principal, RequestContext};
use serde_json::Value;
use uuid::Uuid;

use crate::error::AnswerError;
use crate::pipeline::{AnswerRequest, CachePolicy, Pipeline, Target};

/// Answers eval calls through the pipeline, as `principal`.
#[derive(Debug, Clone)]
pub struct PipelineAnswerer {
    pipeline: Pipeline,
    principal: Principal,
}

impl PipelineAnswerer {
    pub fn new(pipeline: Pipeline, principal: Principal) -> PipelineAnswerer {
        PipelineAnswerer {
            pipeline,
            principal,
        }
    }
}

#[async_trait]
impl Answerer for PipelineAnswerer {
    async fn answer(
        &self,
        target: &EvalTarget,
        call: &EvalCall,
    ) -> Result<EvalAnswer, EvalCallError> {
        let started = Instant::now();
        let chat = ChatRequest {
            messages: vec![ChatMessage::new(Role::User, call.question.clone())],
            max_tokens: call.max_tokens,
            temperature: call.temperature,
            response_format: call.response_format.clone(),
            ..ChatRequest::default()
        };
        let target = pipeline_target(target, call)?;
        let mut request = AnswerRequest::new(target, chat);
        request.prompt_pins = call.prompt_pins.clone();
        if !call.use_cache {
            request.cache = CachePolicy::Bypass;
        }
        let context = RequestContext::new(self.principal.clone(), Uuid::now_v7().to_string());
        let answer = self
            .pipeline
            .answer(&context, request)
            .await
            .map_err(classify)?;
        let passages = crate::online::eval_passages(answer.citations());
        let lineage_id = answer.lineage_id();
        // The caller's own redacted values come back restored; what the harness stores must not
        // hold them, so the answer it gets keeps their placeholders.
        let redactions = answer.redactions();
        let prompt = answer
            .prompt()
            .map(|(name, version)| (name.to_owned(), version));
        let steps = answer.agent_steps();
        let completed = answer.complete().await.map_err(classify)?;
        let usage = &completed.response.usage;
        Ok(EvalAnswer {
            text: redactions.conceal(&completed.response.message.content),
            question: redactions.conceal(&call.question),
            passages,
            lineage_id: Some(lineage_id),
            prompt,
            latency_ms: started.elapsed().as_secs_f64() * 1000.0,
            cost_usd: completed.response.cost_usd,
            prompt_tokens: usage.input_tokens,
            completion_tokens: usage.output_tokens,
            cached: completed.cached,
            steps: steps.map(|log| log.steps()).unwrap_or_default(),
        })
    }

    async fn prompt_version(&self, reference: &str) -> Option<i64> {
        let (name, selector) = cairn_prompts::Selector::parse_reference(reference);
        self.pipeline
            .parts()
            .prompts
            .resolve(&name, &selector)
            .await
            .ok()
            .map(|version| version.version)
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EvalCallError> {
        let rag = self.pipeline.rag().map_err(classify)?;
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        rag.embedder
            .embed_documents(texts)
            .await
            .map_err(|e| EvalCallError::Failed(format!("embedding: {e}")))
    }

    async fn check(&self, target: &EvalTarget, call: &EvalCall) -> Result<(), EvalCallError> {
        if *target == EvalTarget::Given {
            return Ok(());
        }
        self.pipeline
            .check(&pipeline_target(target, call)?, &call.prompt_pins)
            .await
            .map_err(classify)
    }
}

/// The pipeline's target for an eval target: a prompt target renders from the call's variables.
/// `given` answers are scored as they are and never reach the pipeline.
fn pipeline_target(target: &EvalTarget, call: &EvalCall) -> Result<Target, EvalCallError> {
    Ok(match target {
        EvalTarget::Given => {
            return Err(EvalCallError::Unusable(
                "the `given` target has no pipeline call: its answers come from the dataset".into(),
            ));
        }
        EvalTarget::App(name) => Target::App(name.clone()),
        EvalTarget::Agent(name) => Target::Agent(name.clone()),
        EvalTarget::Model {
            route,
            prompt: None,
        } => Target::Model(route.clone()),
        EvalTarget::Model {
            route,
            prompt: Some(prompt),
        } => Target::Prompt {
            prompt: prompt.clone(),
            route: Some(route.clone()),
            variables: variables(call),
        },
    })
}

/// The case's variables, with the question offered as `question` unless the case sets one.
fn variables(call: &EvalCall) -> Value {
    let mut variables = match &call.variables {
        Value::Object(map) => map.clone(),
        _ => serde_json::Map::new(),
    };
    variables
        .entry("question")
        .or_insert_with(|| Value::String(call.question.clone()));
    Value::Object(variables)
}

/// A target or judge that cannot be called at all stops the suite; anything else fails one call.
fn classify(error: AnswerError) -> EvalCallError {
    match &error {
        AnswerError::UnknownTarget(_)
        | AnswerError::UnknownGuard(_)
        | AnswerError::RetrievalUnavailable(_)
        | AnswerError::Internal(_) => EvalCallError::Unusable(error.to_string()),
        AnswerError::Prompt(cairn_prompts::PromptError::NotFound(_)) => {
            EvalCallError::Unusable(error.to_string())
        }
        AnswerError::Invalid { .. }
        | AnswerError::Limited(_)
        | AnswerError::Blocked { .. }
        | AnswerError::Prompt(_)
        | AnswerError::Rag(_)
        | AnswerError::Catalog(_)
        | AnswerError::Model(_)
        | AnswerError::SchemaNotMet { .. }
        | AnswerError::DeadlineExceeded => EvalCallError::Failed(error.to_string()),
    }
}
