//! The models and routes clients can name in `"model"`: built from the config, each a gateway
//! `Route` (a model on its own is a one-target route), sharing one circuit breaker per model.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use cairn_core::model::ChatModel;
use cairn_gateway::{Route, RouteSettings, Target};

use crate::config::{ModelBackend, ModelConfig, RouteSection};

/// Everything callable by name.
#[derive(Debug, Default)]
pub struct ModelDirectory {
    routes: BTreeMap<String, Arc<Route>>,
}

impl ModelDirectory {
    /// Builds adapters for the configured models (loading local ones, which takes a while) and
    /// routes over them. The config has been validated, so names resolve.
    pub async fn from_config(
        models: &[ModelConfig],
        routes: &[RouteSection],
    ) -> Result<Self, String> {
        let mut targets: BTreeMap<String, Arc<Target>> = BTreeMap::new();
        for model in models {
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
            };
            targets.insert(
                model.name.clone(),
                Target::new(&model.name, adapter, model.breaker),
            );
        }
        Ok(Self::from_targets(targets, routes))
    }

    /// Routes over already-built targets (tests give fakes or adapters pointed at a local server).
    pub fn from_targets(targets: BTreeMap<String, Arc<Target>>, routes: &[RouteSection]) -> Self {
        let mut directory = ModelDirectory::default();
        for (name, target) in &targets {
            let route = Route::new(name, vec![target.clone()], RouteSettings::default());
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
            directory.routes.insert(
                section.name.clone(),
                Arc::new(Route::new(&section.name, members, settings)),
            );
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
