//! The MCP server's wiring: its knowledge (catalog, retrieval, prompt registry) from the app state,
//! and the [`Answerer`] that answers through the configured apps and routes, recording lineage as
//! the chat API does.

use async_trait::async_trait;
use cairn_core::model::{ChatMessage, ChatRequest, Role};
use cairn_mcp::{AnswerOutput, AnswerTarget, Answerer, CairnMcp, Knowledge};
use cairn_rag::Citation;

use crate::app::AppState;
use crate::config::AppSection;

/// Answers through the server's apps and routes.
#[derive(Debug, Clone)]
struct AppAnswerer {
    state: AppState,
}

impl AppAnswerer {
    /// The route for questions about a bare collection: `mcp.answer_route`, else the first app's
    /// route, else the first model.
    fn collection_route(&self) -> Option<String> {
        let configured = &self.state.mcp.answer_route;
        if !configured.is_empty() {
            return Some(configured.clone());
        }
        self.state
            .apps
            .first()
            .map(|app| app.route.clone())
            .or_else(|| self.state.models.names().next().map(str::to_owned))
    }
}

#[async_trait]
impl Answerer for AppAnswerer {
    fn app_collections(&self, app: &str) -> Option<Vec<String>> {
        self.state
            .apps
            .iter()
            .find(|a| a.name == app)
            .map(|a| a.collections.clone())
    }

    async fn answer(&self, target: &AnswerTarget, question: &str) -> Result<AnswerOutput, String> {
        let request = ChatRequest {
            messages: vec![ChatMessage::new(Role::User, question)],
            ..ChatRequest::default()
        };
        let answer = match target {
            AnswerTarget::App(name) => crate::apps::prepare(&self.state, name, request).await,
            AnswerTarget::Collection(collection) => {
                let route = self.collection_route().ok_or(
                    "no model is configured to answer with; add [[models]] (or set mcp.answer_route)",
                )?;
                let app = AppSection {
                    name: format!("collection:{collection}"),
                    description: String::new(),
                    collections: vec![collection.clone()],
                    prompt: crate::config::default_app_prompt(),
                    route,
                    top_k: crate::config::default_app_top_k(),
                    context_tokens: crate::config::default_app_context_tokens(),
                    max_tokens: None,
                };
                crate::apps::prepare_app(&self.state, &app, request)
                    .await
                    .map(|mut answer| {
                        answer.app = None;
                        answer
                    })
            }
        }
        .map_err(|e| e.message)?;
        let response = answer
            .complete(self.state.catalog.clone())
            .await
            .map_err(|e| e.to_string())?;
        let citations: Vec<Citation> = answer
            .extension
            .get("citations")
            .cloned()
            .and_then(|value| serde_json::from_value(value).ok())
            .unwrap_or_default();
        Ok(AnswerOutput {
            answer: response.message.content,
            citations,
            model: answer.route.clone(),
            prompt: answer.prompt.as_ref().map(|(name, version)| match version {
                Some(version) => format!("{name}@v{version}"),
                None => name.clone(),
            }),
            lineage_id: answer.lineage_id,
        })
    }
}

/// What the MCP tools read, over the app state.
pub fn knowledge(state: &AppState) -> Knowledge {
    Knowledge {
        catalog: state.catalog.clone(),
        retriever: match state.rag.as_ref() {
            Ok(rag) => Ok(rag.retriever.clone()),
            Err(e) => Err(format!("search is unavailable: {e}")),
        },
        prompts: state.prompts.clone(),
        answerer: std::sync::Arc::new(AppAnswerer {
            state: state.clone(),
        }),
    }
}

/// `/mcp` and its protected-resource metadata.
pub fn router(state: &AppState) -> axum::Router {
    let options = cairn_mcp::http::HttpOptions {
        allowed_hosts: state.mcp.allowed_hosts.clone(),
        resource_url: state.mcp.resource_url.clone(),
        authorization_servers: state.mcp.authorization_servers.clone(),
    };
    cairn_mcp::http::router(
        CairnMcp::for_http(knowledge(state)),
        state.catalog.clone(),
        options,
    )
}
