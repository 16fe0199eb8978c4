//! Cairn's runtime: the configuration (layered, split by subsystem, each section validated beside
//! the code that uses it) and the wiring that opens what it names (the catalog, the embedding model
//! and vector index, the models and routes, the prompt registry) and builds the answer pipeline.
//!
//! No HTTP: `cairn serve` puts the server crate in front of a [`Runtime`], and `cairn ingest`,
//! `search`, `prompt` and `key` use this crate alone.

pub mod catalog;
pub mod config;
pub mod continuous;
pub mod models;
pub mod rag;
pub mod retention;
pub mod shadows;
pub mod telemetry;

use std::collections::HashMap;
use std::sync::Arc;

use cairn_app::{GuardPolicy, Guards, Pipeline, PipelineParts, Rag, RagSetupError};
use cairn_core::Catalog;
use cairn_prompts::PromptRegistry;

use crate::catalog::{OpenCatalog, StartError, prompt_registry};
use crate::config::Config;

/// What a process runs on, built once from config over an open catalog.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub catalog: Arc<dyn Catalog>,
    pub prompts: Arc<PromptRegistry>,
    /// The one answer pipeline every front door calls.
    pub pipeline: Pipeline,
    /// Retrieval, or why it could not be set up (ingest and search then say why).
    pub rag: Arc<Result<Arc<Rag>, RagSetupError>>,
}

impl Runtime {
    /// Publishes the built-in prompts (labelled `production`) when the catalog lacks them, follows
    /// label moves from other replicas, loads the models and routes, sets up retrieval (or keeps
    /// why it failed), and builds the pipeline with the configured cache and limits.
    pub async fn build(config: &Config, catalog: &OpenCatalog) -> Result<Runtime, StartError> {
        let prompts = prompt_registry(config, catalog.as_dyn());
        match prompts.seed_builtin().await {
            Ok(published) if !published.is_empty() => {
                tracing::info!(prompts = ?published, "published the built-in prompts, labelled production");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not publish the built-in prompts"),
        }
        tokio::spawn(prompts.clone().follow_label_moves());
        for agent in &config.agents {
            let (name, selector) = cairn_prompts::Selector::parse_reference(&agent.prompt);
            if let Err(e) = prompts.resolve(&name, &selector).await {
                return Err(StartError::AgentPrompt {
                    agent: agent.name.clone(),
                    prompt: agent.prompt.clone(),
                    reason: e.to_string(),
                });
            }
        }
        let shadows = shadows::CatalogShadows::new(catalog.as_dyn());
        let models =
            models::ModelDirectory::from_config(&config.models, &config.routes, Some(shadows))
                .await
                .map_err(StartError::Models)?;
        let rag = match rag::build(config, catalog).await {
            Ok(rag) => {
                tracing::info!(
                    embedding = rag.embedder.model_id(),
                    index = rag.index.backend(),
                    "retrieval is ready"
                );
                Ok(Arc::new(rag))
            }
            Err(e) => {
                tracing::warn!(error = %e, "ingest and search are unavailable");
                Err(e)
            }
        };
        let rag = Arc::new(rag);
        let online = online_eval(config, catalog.as_dyn());
        let pipeline = Pipeline::new(PipelineParts {
            catalog: catalog.as_dyn(),
            prompts: prompts.clone(),
            models: Arc::new(models),
            rag: rag.clone(),
            apps: Arc::new(config.apps.clone()),
            cache: (config.cache.ttl_secs > 0).then(|| {
                Arc::new(cairn_gateway::ResponseCache::new(
                    std::time::Duration::from_secs(config.cache.ttl_secs),
                    config.cache.max_entries,
                ))
            }),
            limiter: (!config.limits.is_empty()).then(|| {
                Arc::new(cairn_gateway::Limiter::new(
                    config.limits.clone(),
                    catalog.as_dyn(),
                ))
            }),
            guards: guard_policy(config)?,
            agents: Arc::new(config.agents.clone()),
            agent_runner: (!config.agents.is_empty()).then(|| {
                Arc::new(cairn_agent::Runner::new(
                    config.mcp_servers.clone(),
                    config.mcp_tokens.clone(),
                )) as Arc<dyn cairn_core::AgentRunner>
            }),
            online: online
                .clone()
                .map(|o| o as Arc<dyn cairn_core::eval::OnlineEvaluator>),
        });
        if let Some(online) = &online {
            // Judges are called through the pipeline they observe, as every eval call is.
            online.bind(Arc::new(cairn_app::PipelineAnswerer::new(
                pipeline.clone(),
                cairn_core::Principal::local(),
            )));
        }
        Ok(Runtime {
            catalog: catalog.as_dyn(),
            prompts,
            pipeline,
            rag,
        })
    }
}

/// Online evaluation from `[[evals.online]]` (checked with the config), or `None` when there is none.
fn online_eval(
    config: &Config,
    catalog: Arc<dyn Catalog>,
) -> Option<Arc<cairn_eval::online::OnlineEval>> {
    if config.evals.online.is_empty() {
        return None;
    }
    let rules = config
        .evals
        .online
        .iter()
        .map(|rule| cairn_eval::online::OnlineRule {
            app: rule.app.clone(),
            sample: rule.sample,
            judge: cairn_eval::metrics::JudgeSettings {
                route: rule.judge.clone(),
                max_tokens: None,
            },
            metrics: rule
                .metrics
                .iter()
                .filter_map(|name| {
                    let file = serde_json::from_value(serde_json::json!({"metric": name})).ok()?;
                    cairn_eval::metrics::Metric::build(file, &[], "evals.online").ok()
                })
                .collect(),
        })
        .collect();
    Some(Arc::new(cairn_eval::online::OnlineEval::new(
        rules,
        catalog,
        config.evals.online_judge_calls_per_minute,
    )))
}

/// The guards of every app (`app:NAME`) and route that names some, built from `[[guards]]`.
fn guard_policy(config: &Config) -> Result<GuardPolicy, StartError> {
    let built: HashMap<String, Arc<dyn cairn_core::Guardrail>> = config
        .guards
        .iter()
        .map(|section| Ok((section.name.clone(), section.build()?)))
        .collect::<Result<_, cairn_guard::PolicyError>>()?;
    let pick = |names: &[String]| {
        Guards::new(
            names
                .iter()
                .filter_map(|name| built.get(name).cloned())
                .collect(),
        )
    };
    let by_target = config
        .apps
        .iter()
        .filter(|app| !app.guards.is_empty())
        .map(|app| (format!("app:{}", app.name), pick(&app.guards)))
        .chain(
            config
                .agents
                .iter()
                .filter(|agent| !agent.guards.is_empty())
                .map(|agent| (format!("agent:{}", agent.name), pick(&agent.guards))),
        )
        .chain(
            config
                .routes
                .iter()
                .filter(|route| !route.guards.is_empty())
                .map(|route| (route.name.clone(), pick(&route.guards))),
        )
        .collect();
    Ok(GuardPolicy::new(by_target, built))
}
