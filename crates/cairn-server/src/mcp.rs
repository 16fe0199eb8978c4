//! The MCP server's wiring: its knowledge (catalog, retrieval, prompt registry) from the app state,
//! and the [`Answerer`] that answers through the answer pipeline, as the chat API and the web UI do.

use async_trait::async_trait;
use cairn_app::{AnswerRequest, Pipeline, Target};
use cairn_core::RequestContext;
use cairn_core::model::{ChatMessage, ChatRequest, Role};
use cairn_mcp::{AnswerOutput, AnswerTarget, Answerer, CairnMcp, CheckOutput, Grant, Knowledge};

use crate::app::AppState;

/// Answers through the pipeline.
#[derive(Debug, Clone)]
struct PipelineAnswerer {
    pipeline: Pipeline,
    /// `mcp.answer_route`: the route for questions about a bare collection.
    answer_route: String,
}

impl PipelineAnswerer {
    /// The route for questions about a bare collection: `mcp.answer_route`, else the first app's
    /// route, else the first model.
    fn collection_route(&self) -> Option<String> {
        if !self.answer_route.is_empty() {
            return Some(self.answer_route.clone());
        }
        self.pipeline
            .apps()
            .first()
            .map(|app| app.route.clone())
            .or_else(|| self.pipeline.models().names().into_iter().next())
    }
}

#[async_trait]
impl Answerer for PipelineAnswerer {
    fn app_collections(&self, app: &str) -> Option<Vec<String>> {
        self.pipeline.app(app).map(|a| a.collections.clone())
    }

    async fn check_text(
        &self,
        guards: &[String],
        stage: cairn_core::guard::GuardStage,
        text: String,
    ) -> Result<CheckOutput, String> {
        let checked = self
            .pipeline
            .guards()
            .check_text(guards, stage, text)
            .await
            .map_err(|e| e.to_string())?;
        Ok(CheckOutput {
            action: checked.action.to_owned(),
            text: checked.text,
            blocked_by: checked.blocked_by,
            reason: checked.reason,
            verdicts: checked
                .verdicts
                .iter()
                .map(|v| serde_json::to_value(v).unwrap_or_default())
                .collect(),
        })
    }

    async fn answer(
        &self,
        grant: &Grant,
        target: &AnswerTarget,
        question: &str,
    ) -> Result<AnswerOutput, String> {
        let target = match target {
            AnswerTarget::App(name) => Target::App(name.clone()),
            AnswerTarget::Collection(collection) => Target::Collection {
                collection: collection.clone(),
                route: self.collection_route().ok_or(
                    "no model is configured to answer with; add [[models]] (or set mcp.answer_route)",
                )?,
            },
        };
        let request = AnswerRequest::new(
            target,
            ChatRequest {
                messages: vec![ChatMessage::new(Role::User, question)],
                ..ChatRequest::default()
            },
        );
        let context = RequestContext::new(grant.principal(), uuid::Uuid::new_v4().to_string());
        let answer = self
            .pipeline
            .answer(&context, request)
            .await
            .map_err(|e| e.to_string())?;
        let citations = answer.citations().to_vec();
        let model = answer.route().to_owned();
        let prompt = answer.prompt().map(|(name, version)| match version {
            Some(version) => format!("{name}@v{version}"),
            None => name.to_owned(),
        });
        let lineage_id = answer.lineage_id();
        let completed = answer.complete().await.map_err(|e| e.to_string())?;
        Ok(AnswerOutput {
            answer: completed.response.message.content,
            citations,
            model,
            prompt,
            lineage_id,
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
        answerer: std::sync::Arc::new(PipelineAnswerer {
            pipeline: state.pipeline.clone(),
            answer_route: state.mcp.answer_route.clone(),
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
        state.keys.clone(),
        options,
    )
}
