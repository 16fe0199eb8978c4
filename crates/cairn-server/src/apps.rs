//! RAG apps as models: `"model": "app:NAME"` retrieves from the app's collections, renders its
//! registered prompt with the question and the numbered passages, and answers through its route.
//! The answer carries `[n]` markers from the model and the citation list in a `citations` field;
//! the lineage record names the app, the prompt version, the route and the retrieved chunks.

use std::sync::Arc;

use cairn_core::ChatModel;
use cairn_core::model::{ChatRequest, Role};
use cairn_prompts::Selector;
use cairn_rag::{Passage, SearchRequest, assemble};
use serde_json::{Value, json};

use crate::app::AppState;
use crate::config::{ALL_COLLECTIONS, AppSection};
use crate::error::ApiError;
use crate::openai_api::Answer;

/// Prepares an app's answer: retrieval, context, prompt; the caller runs the model.
pub(crate) async fn prepare(
    state: &AppState,
    name: &str,
    request: ChatRequest,
) -> Result<Answer, ApiError> {
    let app = state.apps.iter().find(|a| a.name == name).ok_or_else(|| {
        let known: Vec<String> = state
            .apps
            .iter()
            .map(|a| format!("app:{}", a.name))
            .collect();
        ApiError::not_found(
            "model_not_found",
            format!(
                "app `{name}` does not exist; apps: {}",
                if known.is_empty() {
                    "none configured (see [[apps]] in cairn.example.toml)".to_owned()
                } else {
                    known.join(", ")
                }
            ),
        )
    })?;
    prepare_app(state, app, request).await
}

/// Prepares an answer from an app's definition (configured, or made up for one collection).
pub(crate) async fn prepare_app(
    state: &AppState,
    app: &AppSection,
    request: ChatRequest,
) -> Result<Answer, ApiError> {
    let name = &app.name;
    if !request.tools.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_request",
            "apps answer from their collections and do not take tools; call a model or route for tool use",
        ));
    }
    let question = request
        .messages
        .iter()
        .rev()
        .find(|m| m.role == Role::User)
        .map(|m| m.content.trim().to_owned())
        .filter(|q| !q.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_request",
                "an app answers the last user message, and there is none with text",
            )
        })?;
    let rag = state.rag()?;
    let model: Arc<dyn ChatModel> = state.models.get(&app.route).ok_or_else(|| {
        ApiError::internal(format!(
            "app `{name}` names route `{}`, which is not loaded",
            app.route
        ))
    })?;

    let collections: Vec<String> = if app.collections.iter().any(|c| c == ALL_COLLECTIONS) {
        state
            .catalog
            .list_collections()
            .await?
            .into_iter()
            .map(|c| c.name)
            .collect()
    } else {
        app.collections.clone()
    };
    if collections.is_empty() {
        return Err(ApiError::bad_request(
            "no_collections",
            format!(
                "app `{name}` answers from every collection, and there is none yet; ingest documents first (cairn ingest ./docs --collection NAME)"
            ),
        ));
    }
    let mut passages: Vec<Passage> = Vec::new();
    for collection in &collections {
        let found = rag
            .retriever
            .search(&SearchRequest::new(collection, &question, app.top_k))
            .await?;
        passages.extend(found);
    }
    passages.sort_by(|a, b| b.score.total_cmp(&a.score));
    let context = assemble(&passages, app.context_tokens, |t| rag.count_tokens(t));
    let variables = json!({
        "question": question,
        "passages": context.citations.iter().map(|c| {
            let heading: Vec<&str> = c.heading_path.iter().map(String::as_str).filter(|h| *h != c.title).collect();
            json!({
                "title": c.title,
                "source": c.url.clone().unwrap_or_else(|| c.source.clone()),
                "heading": heading.join(" › "),
                "text": c.text,
            })
        }).collect::<Vec<_>>(),
    });
    let (prompt_name, selector) = Selector::parse_reference(&app.prompt);
    let rendered = state
        .prompts
        .render(&prompt_name, &selector, &variables)
        .await?;
    let params = &rendered.model;
    let chat = ChatRequest {
        model: app.route.clone(),
        messages: rendered.messages.clone(),
        temperature: request.temperature.or(params.temperature),
        top_p: request.top_p.or(params.top_p),
        max_tokens: request.max_tokens.or(app.max_tokens).or(params.max_tokens),
        stop: if request.stop.is_empty() {
            params.stop.clone()
        } else {
            request.stop
        },
        seed: request.seed.or(params.seed),
        response_format: request.response_format,
        ..ChatRequest::default()
    };
    let retrieval: Vec<Value> = context
        .citations
        .iter()
        .map(|c| {
            json!({"index": c.index, "chunk_id": c.chunk_id, "document_id": c.document_id,
                   "source": c.source, "title": c.title, "score": c.score})
        })
        .collect();
    let mut answer = Answer::new(model, chat, app.route.clone());
    answer.app = Some(app.name.clone());
    answer.prompt = Some((rendered.name.clone(), rendered.version));
    answer.retrieval = Value::Array(retrieval);
    answer
        .extension
        .insert("citations".into(), json!(context.citations));
    Ok(answer)
}
