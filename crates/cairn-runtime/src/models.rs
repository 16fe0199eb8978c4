//! The models and routes clients can name in `"model"`: built from the config, each a gateway
//! `Route` (a model on its own is a one-target route), sharing one circuit breaker per model.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use cairn_core::ModelError;
use cairn_core::model::{ChatModel, ChatRequest, ChatResponse, ChatStream};
use cairn_gateway::{Route, RouteSettings, Shadow, ShadowSink, Strategy, Target};

use crate::config::{ModelBackend, ModelConfig, RouteSection, RouteStrategy};

/// A local model loaded by its first call; concurrent first calls wait for the same load, and a
/// failed load is retried by the next call.
#[derive(Debug)]
struct OnFirstUse {
    name: String,
    source: cairn_local::LocalModelSource,
    model: tokio::sync::OnceCell<cairn_local::MistralRsChatModel>,
}

impl OnFirstUse {
    async fn model(&self) -> Result<&cairn_local::MistralRsChatModel, ModelError> {
        self.model
            .get_or_try_init(|| async {
                let started = std::time::Instant::now();
                tracing::info!(model = %self.name, "loading the local model for its first call");
                let model = cairn_local::MistralRsChatModel::load(
                    &self.source,
                    cairn_local::LocalOptions::default(),
                )
                .await
                .map_err(|e| {
                    ModelError::Transient(format!(
                        "the local model `{}` could not be loaded: {e}; run scripts/fetch-models.sh, or configure [[models]]",
                        self.name
                    ))
                })?;
                tracing::info!(model = %self.name, seconds = started.elapsed().as_secs_f32(), "local model loaded");
                Ok(model)
            })
            .await
    }
}

#[async_trait::async_trait]
impl ChatModel for OnFirstUse {
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ModelError> {
        self.model().await?.complete(request).await
    }

    async fn stream(&self, request: &ChatRequest) -> Result<ChatStream, ModelError> {
        self.model().await?.stream(request).await
    }
}

/// How long a local model called on its own may take to start answering.
const LOCAL_DEADLINE: Duration = Duration::from_secs(300);

/// Everything callable by name.
#[derive(Debug, Default)]
pub struct ModelDirectory {
    routes: BTreeMap<String, Arc<Route>>,
}

impl ModelDirectory {
    /// Builds adapters for the configured models (loading local ones, which takes a while) and
    /// routes over them. The config has been validated, so names resolve. Routes with a shadow
    /// send its comparisons to `shadows` (without one, shadows are not called).
    pub async fn from_config(
        models: &[ModelConfig],
        routes: &[RouteSection],
        shadows: Option<Arc<dyn ShadowSink>>,
    ) -> Result<Self, String> {
        let mut targets: BTreeMap<String, Arc<Target>> = BTreeMap::new();
        // A model on its own is a one-target route; on a CPU, a local model can take well over a
        // minute to read a long prompt before its first token, so its route gets a longer deadline.
        let mut solo: BTreeMap<String, RouteSettings> = BTreeMap::new();
        for model in models {
            if matches!(
                model.backend,
                ModelBackend::Local(_) | ModelBackend::LocalOnFirstUse(_)
            ) {
                let settings = RouteSettings {
                    deadline: LOCAL_DEADLINE,
                    ..RouteSettings::default()
                };
                solo.insert(model.name.clone(), settings);
            }
            let adapter: Arc<dyn ChatModel> = match &model.backend {
                ModelBackend::Remote {
                    endpoint,
                    upstream_model,
                    timeouts,
                } => Arc::new(
                    cairn_openai::OpenAiChatModel::new(endpoint, upstream_model, *timeouts)
                        .map_err(|e| format!("model `{}`: {e}", model.name))?,
                ),
                ModelBackend::Local(source) => {
                    let started = std::time::Instant::now();
                    let local = cairn_local::MistralRsChatModel::load(
                        source,
                        cairn_local::LocalOptions::default(),
                    )
                    .await
                    .map_err(|e| format!("model `{}`: {e}", model.name))?;
                    tracing::info!(model = %model.name, seconds = started.elapsed().as_secs_f32(), "local model loaded");
                    Arc::new(local)
                }
                ModelBackend::LocalOnFirstUse(source) => Arc::new(OnFirstUse {
                    name: model.name.clone(),
                    source: source.clone(),
                    model: tokio::sync::OnceCell::new(),
                }),
            };
            targets.insert(
                model.name.clone(),
                Target::priced(&model.name, adapter, model.breaker, model.pricing),
            );
        }
        Ok(Self::build(targets, &solo, routes, shadows))
    }

    /// Routes over already-built targets (tests give fakes or adapters pointed at a local server).
    pub fn from_targets(
        targets: BTreeMap<String, Arc<Target>>,
        routes: &[RouteSection],
        shadows: Option<Arc<dyn ShadowSink>>,
    ) -> Self {
        Self::build(targets, &BTreeMap::new(), routes, shadows)
    }

    /// One route per target (with `solo`'s settings where given, else the defaults), and the
    /// configured routes.
    fn build(
        targets: BTreeMap<String, Arc<Target>>,
        solo: &BTreeMap<String, RouteSettings>,
        routes: &[RouteSection],
        shadows: Option<Arc<dyn ShadowSink>>,
    ) -> Self {
        let mut directory = ModelDirectory::default();
        for (name, target) in &targets {
            let settings = solo.get(name).copied().unwrap_or_default();
            let route = Route::new(name, vec![target.clone()], settings);
            directory.routes.insert(name.clone(), Arc::new(route));
        }
        for section in routes {
            // Targets are shared, so a model's circuit breaker sees its traffic from every route.
            let members: Vec<Arc<Target>> = section
                .targets
                .iter()
                .filter_map(|name| targets.get(name).cloned())
                .collect();
            let settings = RouteSettings {
                attempts_per_target: section.attempts_per_target,
                deadline: Duration::from_secs(section.deadline_secs),
                ..RouteSettings::default()
            };
            let strategy = match section.strategy {
                RouteStrategy::Ordered => Strategy::Ordered,
                RouteStrategy::Weighted => Strategy::Weighted(section.weights.clone()),
                RouteStrategy::Latency => Strategy::Latency,
            };
            let mut route = Route::new(&section.name, members, settings).with_strategy(strategy);
            let shadow = section
                .shadow
                .as_ref()
                .and_then(|name| targets.get(name).cloned());
            if let (Some(target), Some(sink)) = (shadow, &shadows) {
                route = route.with_shadow(Shadow {
                    target,
                    sample: section.shadow_sample,
                    sink: sink.clone(),
                });
            }
            directory
                .routes
                .insert(section.name.clone(), Arc::new(route));
        }
        directory
    }

    pub fn get(&self, name: &str) -> Option<Arc<dyn ChatModel>> {
        self.routes
            .get(name)
            .map(|route| route.clone() as Arc<dyn ChatModel>)
    }

    /// Every callable name, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.routes.keys().map(String::as_str)
    }
}

impl cairn_app::ModelLookup for ModelDirectory {
    fn get(&self, name: &str) -> Option<Arc<dyn ChatModel>> {
        ModelDirectory::get(self, name)
    }

    fn names(&self) -> Vec<String> {
        ModelDirectory::names(self).map(str::to_owned).collect()
    }
}
