//! The models and routes clients can name in `"model"`: built from the config, each a gateway
//! `Route` (a model on its own is a one-target route), sharing one circuit breaker per model.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use cairn_core::model::ChatModel;
use cairn_gateway::{Route, RouteSettings, Target};

use crate::config::{ModelConfig, RouteSection};

/// Everything callable by name.
#[derive(Debug, Default)]
pub struct ModelDirectory {
    routes: BTreeMap<String, Arc<Route>>,
}

impl ModelDirectory {
    /// Builds adapters for the configured models and routes over them. The config has been
    /// validated, so names resolve.
    pub fn from_config(
        models: &[ModelConfig],
        routes: &[RouteSection],
    ) -> Result<Self, cairn_openai::EndpointError> {
        let mut targets: BTreeMap<String, Arc<Target>> = BTreeMap::new();
        for model in models {
            let adapter = cairn_openai::OpenAiChatModel::new(
                &model.endpoint,
                &model.upstream_model,
                model.timeouts,
            )?;
            targets.insert(
                model.name.clone(),
                Target::new(&model.name, Arc::new(adapter), model.breaker),
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
