//! The one answer pipeline. Every front door (the OpenAI-compatible API, the web UI, MCP, and in
//! process the eval harness and agents) builds a [`RequestContext`] and an [`AnswerRequest`] and
//! calls [`Pipeline::answer`]; the request then goes, hop by hop:
//!
//! limits → input guards → retrieval (per app) → context guards → prompt render → [`Answer`]
//!
//! and the [`Answer`] is completed or streamed through the route (cache, fallback, cost), output
//! guards and lineage (`answer.rs`). Each hop is a `tracing` span named `cairn.*`.

use std::fmt;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use cairn_core::AgentRunner;
use cairn_core::agent::StepLog;
use cairn_core::model::{ChatModel, ChatRequest};
use cairn_core::{Catalog, RequestContext};
use cairn_gateway::{Admission, Limiter, ResponseCache};
use cairn_prompts::{PromptRegistry, Selector};
use cairn_rag::Citation;
use tracing::Instrument;
use uuid::Uuid;

use crate::agent_tools::Cited;
use crate::agents::AgentSection;
use crate::answer::Answer;
use crate::apps::{self, AppSection};
use crate::error::AnswerError;
use crate::guards::{GuardPolicy, GuardRun};
use crate::lineage::{Draft, Lineage};
use crate::rag::{Rag, RagSetupError};

/// Every model and route a caller may name, by name.
pub trait ModelLookup: Send + Sync + fmt::Debug {
    fn get(&self, name: &str) -> Option<Arc<dyn ChatModel>>;
    fn names(&self) -> Vec<String>;
}

/// What is being asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A model or route, with the caller's own messages.
    Model(String),
    /// A configured RAG app.
    App(String),
    /// A configured agent: a tool-calling loop over its route.
    Agent(String),
    /// One collection, answered like an app with the default prompt through `route`.
    Collection { collection: String, route: String },
    /// A registered prompt (`name@label`, `name@3`, `name`) rendered from `variables` and sent to
    /// `route`, or to the route the prompt names; the caller's messages are not sent.
    Prompt {
        prompt: String,
        route: Option<String>,
        variables: serde_json::Value,
    },
}

impl Target {
    /// What an OpenAI client puts in `"model"`: `app:NAME`, `agent:NAME`, or a model or route.
    pub fn from_model_name(name: &str) -> Target {
        if let Some(app) = name.strip_prefix("app:") {
            Target::App(app.to_owned())
        } else if let Some(agent) = name.strip_prefix("agent:") {
            Target::Agent(agent.to_owned())
        } else {
            Target::Model(name.to_owned())
        }
    }

    /// The name whose guards apply: `app:NAME` for an app, else the route or model.
    pub fn guard_name(&self) -> String {
        match self {
            Target::Model(name) => name.clone(),
            Target::App(name) => format!("app:{name}"),
            Target::Agent(name) => format!("agent:{name}"),
            Target::Collection { route, .. } => route.clone(),
            Target::Prompt { prompt, route, .. } => route.clone().unwrap_or_else(|| prompt.clone()),
        }
    }

    /// The name rate limits count the call under: what a client would put in `"model"`.
    pub fn limit_name(&self) -> String {
        match self {
            Target::Model(name) => name.clone(),
            Target::App(name) => format!("app:{name}"),
            Target::Agent(name) => format!("agent:{name}"),
            Target::Collection { collection, .. } => format!("collection:{collection}"),
            Target::Prompt { prompt, route, .. } => {
                route.clone().unwrap_or_else(|| format!("prompt:{prompt}"))
            }
        }
    }
}

/// Whether the answer cache may answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CachePolicy {
    Use,
    /// Answer afresh (and do not store the answer).
    Bypass,
}

/// One question for the pipeline.
#[derive(Debug, Clone)]
pub struct AnswerRequest {
    pub target: Target,
    /// The caller's messages and sampling settings (`model` is ignored: the target decides).
    pub chat: ChatRequest,
    pub cache: CachePolicy,
    /// The web UI conversation the answer belongs to.
    pub conversation_id: Option<Uuid>,
    /// Registered prompts to render at these versions instead of the label or version the app or
    /// target names (prompt name → version): how the eval harness tries a candidate version before
    /// a label moves to it.
    pub prompt_pins: PromptPins,
}

impl AnswerRequest {
    pub fn new(target: Target, chat: ChatRequest) -> AnswerRequest {
        AnswerRequest {
            target,
            chat,
            cache: CachePolicy::Use,
            conversation_id: None,
            prompt_pins: PromptPins::new(),
        }
    }
}

/// What the pipeline is built from.
#[derive(Debug, Clone)]
pub struct PipelineParts {
    pub catalog: Arc<dyn Catalog>,
    pub prompts: Arc<PromptRegistry>,
    pub models: Arc<dyn ModelLookup>,
    /// Retrieval, or why it could not be set up (app answers then fail with the reason).
    pub rag: Arc<Result<Arc<Rag>, RagSetupError>>,
    pub apps: Arc<Vec<AppSection>>,
    /// The exact-match answer cache; `None`: off.
    pub cache: Option<Arc<ResponseCache>>,
    /// Rate limits and budgets; `None`: none configured.
    pub limiter: Option<Arc<Limiter>>,
    /// The guards of each app, route and model.
    pub guards: GuardPolicy,
    /// Online evaluation: each fresh app answer is offered to it; `None`: off.
    pub online: Option<Arc<dyn cairn_core::eval::OnlineEvaluator>>,
    pub agents: Arc<Vec<AgentSection>>,
    /// Runs agents and serves external MCP servers' tools; `None`: no agents configured.
    pub agent_runner: Option<Arc<dyn AgentRunner>>,
}

/// The answer pipeline. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Pipeline {
    parts: Arc<PipelineParts>,
}

impl Pipeline {
    pub fn new(parts: PipelineParts) -> Pipeline {
        Pipeline {
            parts: Arc::new(parts),
        }
    }

    /// What it was built from, to build a changed copy (`Pipeline::new(PipelineParts { .. })`).
    pub fn parts(&self) -> &PipelineParts {
        &self.parts
    }

    pub fn apps(&self) -> &[AppSection] {
        &self.parts.apps
    }

    pub fn app(&self, name: &str) -> Option<&AppSection> {
        self.parts.apps.iter().find(|a| a.name == name)
    }

    pub fn agents(&self) -> &[AgentSection] {
        &self.parts.agents
    }

    pub fn agent(&self, name: &str) -> Option<&AgentSection> {
        self.parts.agents.iter().find(|a| a.name == name)
    }

    pub fn models(&self) -> &Arc<dyn ModelLookup> {
        &self.parts.models
    }

    /// The guards of every target, and every declared guard by name.
    pub fn guards(&self) -> &GuardPolicy {
        &self.parts.guards
    }

    /// Retrieval, or why it is unavailable.
    pub fn rag(&self) -> Result<&Arc<Rag>, AnswerError> {
        self.parts
            .rag
            .as_ref()
            .as_ref()
            .map_err(|e| AnswerError::RetrievalUnavailable(e.to_string()))
    }

    /// Checks that `target` can be answered (its app, route or model exists, retrieval is up for
    /// an app, a prompt renders from its variables) without retrieving, admitting or calling a
    /// model: what a caller runs before a batch of calls (the eval harness, before its first).
    pub async fn check(&self, target: &Target, pins: &PromptPins) -> Result<(), AnswerError> {
        match target {
            Target::Model(name) => self.model(name).map(drop),
            Target::App(name) => {
                let app = self.app(name).ok_or_else(|| self.unknown_app(name))?;
                self.rag()?;
                let (prompt, selector) = pinned(&app.prompt, pins);
                if pins.contains_key(&prompt) {
                    self.parts.prompts.resolve(&prompt, &selector).await?;
                }
                self.model(&app.route).map(drop)
            }
            Target::Agent(name) => {
                let agent = self.agent(name).ok_or_else(|| self.unknown_agent(name))?;
                let (prompt, selector) = pinned(&agent.prompt, pins);
                self.parts.prompts.resolve(&prompt, &selector).await?;
                self.model(&agent.route).map(drop)
            }
            Target::Collection { route, .. } => {
                self.rag()?;
                self.model(route).map(drop)
            }
            Target::Prompt {
                prompt,
                route,
                variables,
            } => self
                .prepare_prompt(
                    prompt,
                    route.as_deref(),
                    variables,
                    ChatRequest::default(),
                    pins,
                )
                .await
                .map(drop),
        }
    }

    /// Admits, checks and prepares an answer; the caller completes or streams it.
    pub async fn answer(
        &self,
        context: &RequestContext,
        request: AnswerRequest,
    ) -> Result<Answer, AnswerError> {
        let span = tracing::info_span!(
            "cairn.answer",
            request_id = %context.request_id,
            principal = %context.principal.subject,
            target = %request.target.limit_name(),
        );
        self.prepare(context, request).instrument(span).await
    }

    async fn prepare(
        &self,
        context: &RequestContext,
        request: AnswerRequest,
    ) -> Result<Answer, AnswerError> {
        let started = Instant::now();
        let AnswerRequest {
            target,
            mut chat,
            cache,
            conversation_id,
            prompt_pins,
        } = request;
        let admission = self.admit(context, &target).await?;
        let guards = self.parts.guards.for_target(&target.guard_name());
        let mut checks = GuardRun::new(guards);
        let steps = matches!(target, Target::Agent(_)).then(StepLog::default);
        let cited = matches!(target, Target::Agent(_)).then(Cited::default);
        checks
            .input(&mut chat)
            .instrument(tracing::info_span!("cairn.guard.input"))
            .await?;
        let prepared = match &target {
            Target::Model(name) => {
                let model = self.model(name)?;
                chat.model = name.clone();
                Prepared {
                    model,
                    request: chat,
                    route: name.clone(),
                    app: None,
                    prompt: None,
                    citations: Vec::new(),
                    question: None,
                }
            }
            Target::App(name) => {
                let app = self.app(name).ok_or_else(|| self.unknown_app(name))?;
                self.prepare_app(context, app, chat, &mut checks, &prompt_pins)
                    .await?
            }
            Target::Agent(name) => {
                let agent = self.agent(name).ok_or_else(|| self.unknown_agent(name))?;
                let log = steps.clone().unwrap_or_default();
                let cited = cited.clone().unwrap_or_default();
                self.prepare_agent(context, agent, chat, &prompt_pins, log, &cited)
                    .await?
            }
            Target::Collection { collection, route } => {
                let app = AppSection::for_collection(collection, route.clone());
                let mut prepared = self
                    .prepare_app(context, &app, chat, &mut checks, &prompt_pins)
                    .await?;
                prepared.app = None;
                prepared
            }
            Target::Prompt {
                prompt,
                route,
                variables,
            } => {
                self.prepare_prompt(prompt, route.as_deref(), variables, chat, &prompt_pins)
                    .await?
            }
        };
        let online = match (&self.parts.online, &prepared.app, &prepared.question) {
            (Some(evaluator), Some(app), Some(question)) => Some(crate::online::OnlineOffer {
                evaluator: evaluator.clone(),
                app: app.clone(),
                question: question.clone(),
            }),
            _ => None,
        };
        let draft = Draft {
            id: Uuid::now_v7(),
            conversation_id,
            app: prepared.app,
            prompt: prepared.prompt,
            model: prepared.request.model.clone(),
            route: prepared.route.clone(),
            retrieval: crate::lineage::retrieval_json(&prepared.citations),
            verdicts: std::mem::take(&mut checks.verdicts),
            steps,
            cited: cited.clone(),
            started,
        };
        // An agent's answer depends on what its tools return now: never cached.
        let cache = match target {
            Target::Agent(_) => CachePolicy::Bypass,
            _ => cache,
        };
        Ok(Answer::new(
            prepared.model,
            prepared.request,
            Lineage::new(self.parts.catalog.clone(), draft),
            admission,
            match cache {
                CachePolicy::Use => self.parts.cache.clone(),
                CachePolicy::Bypass => None,
            },
            context.deadline,
            checks,
        )
        .with_citations(prepared.citations)
        .with_cited(cited)
        .with_online(online))
    }

    async fn admit(
        &self,
        context: &RequestContext,
        target: &Target,
    ) -> Result<Admission, AnswerError> {
        let Some(limiter) = &self.parts.limiter else {
            return Ok(Admission::unlimited());
        };
        let key = context.principal.limit_key();
        Ok(limiter
            .admit(&target.limit_name(), key.as_deref(), SystemTime::now())
            .instrument(tracing::info_span!("cairn.limits"))
            .await?)
    }

    fn model(&self, name: &str) -> Result<Arc<dyn ChatModel>, AnswerError> {
        self.parts.models.get(name).ok_or_else(|| {
            let known: Vec<String> = self
                .parts
                .models
                .names()
                .into_iter()
                .chain(self.parts.apps.iter().map(|a| format!("app:{}", a.name)))
                .collect();
            unknown("model", name, &known, "[[models]]")
        })
    }

    fn unknown_agent(&self, name: &str) -> AnswerError {
        let known: Vec<String> = self
            .parts
            .agents
            .iter()
            .map(|a| format!("agent:{}", a.name))
            .collect();
        unknown("agent", name, &known, "[[agents]]")
    }

    fn unknown_app(&self, name: &str) -> AnswerError {
        let known: Vec<String> = self
            .parts
            .apps
            .iter()
            .map(|a| format!("app:{}", a.name))
            .collect();
        unknown("app", name, &known, "[[apps]]")
    }

    /// Retrieval, context guards and the rendered prompt of an app's answer.
    async fn prepare_app(
        &self,
        context: &RequestContext,
        app: &AppSection,
        chat: ChatRequest,
        checks: &mut GuardRun,
        pins: &PromptPins,
    ) -> Result<Prepared, AnswerError> {
        if !chat.tools.is_empty() {
            return Err(AnswerError::invalid(
                "invalid_request",
                "apps answer from their collections and do not take tools; call a model or route for tool use",
            ));
        }
        let question = apps::question(&chat.messages)?;
        let rag = self.rag()?;
        let model = self.parts.models.get(&app.route).ok_or_else(|| {
            AnswerError::Internal(format!(
                "app `{}` names route `{}`, which is not loaded",
                app.name, app.route
            ))
        })?;
        let collections = apps::collections(app, self.parts.catalog.as_ref()).await?;
        if let Some(hidden) = collections.iter().find(|c| !context.principal.may_read(c)) {
            return Err(AnswerError::invalid(
                "collection_not_readable",
                format!(
                    "`{}` may not read collection `{hidden}`, which app `{}` answers from",
                    context.principal.subject, app.name
                ),
            ));
        }
        let mut passages = apps::retrieve(rag, &collections, &question, app.top_k)
            .instrument(tracing::info_span!(
                "cairn.retrieve",
                collections = collections.len()
            ))
            .await?;
        let kept = checks
            .context(std::mem::take(&mut passages))
            .instrument(tracing::info_span!("cairn.guard.context"))
            .await;
        let context = apps::cite(rag, app, &kept);
        let rendered = apps::render(
            &self.parts.prompts,
            app,
            &question,
            &context.citations,
            pins,
        )
        .instrument(tracing::info_span!("cairn.render", prompt = %app.prompt))
        .await?;
        Ok(Prepared {
            model,
            request: apps::model_request(&app.route, app.max_tokens, &rendered, chat),
            route: app.route.clone(),
            app: Some(app.name.clone()),
            prompt: Some((rendered.name.clone(), rendered.version)),
            citations: context.citations,
            question: Some(question),
        })
    }
}

impl Pipeline {
    /// An agent's run, bound as the model that answers.
    async fn prepare_agent(
        &self,
        context: &RequestContext,
        agent: &AgentSection,
        mut chat: ChatRequest,
        pins: &PromptPins,
        steps: StepLog,
        cited: &Cited,
    ) -> Result<Prepared, AnswerError> {
        if !chat.tools.is_empty() {
            return Err(AnswerError::invalid(
                "invalid_request",
                "agents call their own tools and do not take the caller's; call a model or route for tool use",
            ));
        }
        apps::question(&chat.messages)?;
        let (model, prompt) = self.bind_agent(context, agent, pins, steps, cited).await?;
        chat.model = format!("agent:{}", agent.name);
        Ok(Prepared {
            model,
            request: chat,
            route: agent.route.clone(),
            app: None,
            prompt: Some(prompt),
            citations: Vec::new(),
            question: None,
        })
    }

    /// A registered prompt rendered from `variables`, for `route` or the route the prompt names.
    async fn prepare_prompt(
        &self,
        reference: &str,
        route: Option<&str>,
        variables: &serde_json::Value,
        chat: ChatRequest,
        pins: &PromptPins,
    ) -> Result<Prepared, AnswerError> {
        let (name, selector) = pinned(reference, pins);
        let rendered = self
            .parts
            .prompts
            .render(&name, &selector, variables)
            .instrument(tracing::info_span!("cairn.render", prompt = %reference))
            .await?;
        let route = route
            .map(str::to_owned)
            .or_else(|| rendered.route.clone())
            .ok_or_else(|| {
                AnswerError::invalid(
                    "route_required",
                    format!(
                        "prompt `{reference}` names no route: say which model or route answers it"
                    ),
                )
            })?;
        let model = self.model(&route)?;
        Ok(Prepared {
            model,
            request: apps::model_request(&route, None, &rendered, chat),
            route,
            app: None,
            prompt: Some((rendered.name.clone(), rendered.version)),
            citations: Vec::new(),
            question: None,
        })
    }
}

/// Prompt name → the version to render instead of the one a reference names.
pub type PromptPins = std::collections::BTreeMap<String, i64>;

/// The prompt and version a reference (`name`, `name@label`, `name@3`) resolves to under `pins`.
pub(crate) fn pinned(reference: &str, pins: &PromptPins) -> (String, Selector) {
    let (name, selector) = Selector::parse_reference(reference);
    match pins.get(&name) {
        Some(version) => (name, Selector::Version(*version)),
        None => (name, selector),
    }
}

/// "`what` `name` does not exist", with what does, or where to configure some.
fn unknown(what: &str, name: &str, known: &[String], section: &str) -> AnswerError {
    AnswerError::UnknownTarget(format!(
        "{what} `{name}` does not exist; {what}s: {}",
        if known.is_empty() {
            format!("none configured (see {section} in cairn.example.toml)")
        } else {
            known.join(", ")
        }
    ))
}

/// An answer ready for its model call.
struct Prepared {
    model: Arc<dyn ChatModel>,
    request: ChatRequest,
    route: String,
    app: Option<String>,
    prompt: Option<(String, Option<i64>)>,
    citations: Vec<Citation>,
    /// The user's question (after the input guards), for an app.
    question: Option<String>,
}
