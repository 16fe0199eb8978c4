//! RAG apps: what an app is (its config section, validated where it is used), and how its answer
//! is prepared: retrieval from its collections, the cited context, its registered prompt.

use cairn_core::Catalog;
use cairn_core::model::{ChatMessage, ChatRequest};
use cairn_prompts::{PromptRegistry, RenderedPrompt};
use cairn_rag::{Citation, CitedContext, Passage, SearchRequest, assemble};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::AnswerError;
use crate::rag::Rag;

/// The collection wildcard in an app's collection list: every collection.
pub const ALL_COLLECTIONS: &str = "*";

/// A RAG app: retrieval from collections, a registered prompt, and a model or route.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppSection {
    /// Clients call it as `"model": "app:NAME"`.
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The collections it retrieves from.
    pub collections: Vec<String>,
    /// The registered prompt that turns the question and passages into messages:
    /// `name@label`, `name@VERSION` or `name` (latest).
    #[serde(default = "default_app_prompt")]
    pub prompt: String,
    /// The model or route that answers.
    pub route: String,
    /// Passages retrieved per collection, and the token budget of the assembled context.
    #[serde(default = "default_app_top_k")]
    pub top_k: usize,
    #[serde(default = "default_app_context_tokens")]
    pub context_tokens: usize,
    /// Caps the answer's length in tokens; default: the prompt's `max_tokens`.
    #[serde(default)]
    pub max_tokens: Option<u32>,
    /// The guardrails (`[[guards]]` names) that check its questions, passages and answers.
    #[serde(default)]
    pub guards: Vec<String>,
}

impl AppSection {
    /// The app made up for questions about one collection (MCP `answer_question` with a
    /// collection): the default prompt and budgets over that collection, answered by `route`.
    pub fn for_collection(collection: &str, route: String) -> AppSection {
        AppSection {
            name: format!("collection:{collection}"),
            description: String::new(),
            collections: vec![collection.to_owned()],
            prompt: default_app_prompt(),
            route,
            top_k: default_app_top_k(),
            context_tokens: default_app_context_tokens(),
            max_tokens: None,
            guards: Vec::new(),
        }
    }
}

pub fn default_app_prompt() -> String {
    "rag_answer@production".into()
}

pub fn default_app_top_k() -> usize {
    6
}

pub fn default_app_context_tokens() -> usize {
    1500
}

/// The question an app answers: the last user message with text.
pub(crate) fn question(messages: &[ChatMessage]) -> Result<String, AnswerError> {
    messages
        .iter()
        .rev()
        .find(|m| m.role == cairn_core::model::Role::User)
        .map(|m| m.content.trim().to_owned())
        .filter(|q| !q.is_empty())
        .ok_or_else(|| {
            AnswerError::invalid(
                "invalid_request",
                "an app answers the last user message, and there is none with text",
            )
        })
}

/// The collections an app reads now (`*` expands to every collection in the catalog).
pub(crate) async fn collections(
    app: &AppSection,
    catalog: &dyn Catalog,
) -> Result<Vec<String>, AnswerError> {
    let collections: Vec<String> = if app.collections.iter().any(|c| c == ALL_COLLECTIONS) {
        catalog
            .list_collections()
            .await?
            .into_iter()
            .map(|c| c.name)
            .collect()
    } else {
        app.collections.clone()
    };
    if collections.is_empty() {
        return Err(AnswerError::invalid(
            "no_collections",
            format!(
                "app `{}` answers from every collection, and there is none yet; ingest documents first (cairn ingest ./docs --collection NAME)",
                app.name
            ),
        ));
    }
    Ok(collections)
}

/// The best passages for `question` across `collections`, best first.
pub(crate) async fn retrieve(
    rag: &Rag,
    collections: &[String],
    question: &str,
    top_k: usize,
) -> Result<Vec<Passage>, AnswerError> {
    let mut passages: Vec<Passage> = Vec::new();
    for collection in collections {
        let found = rag
            .retriever
            .search(&SearchRequest::new(collection, question, top_k))
            .await?;
        passages.extend(found);
    }
    passages.sort_by(|a, b| b.score.total_cmp(&a.score));
    Ok(passages)
}

/// The numbered context within the app's token budget.
pub(crate) fn cite(rag: &Rag, app: &AppSection, passages: &[Passage]) -> CitedContext {
    assemble(passages, app.context_tokens, |t| rag.count_tokens(t))
}

/// The app's prompt rendered with the question and the cited passages.
pub(crate) async fn render(
    prompts: &PromptRegistry,
    app: &AppSection,
    question: &str,
    citations: &[Citation],
    pins: &crate::pipeline::PromptPins,
) -> Result<RenderedPrompt, AnswerError> {
    let variables = json!({
        "question": question,
        "passages": citations.iter().map(|c| {
            let heading: Vec<&str> = c.heading_path.iter().map(String::as_str).filter(|h| *h != c.title).collect();
            json!({
                "title": c.title,
                "source": c.url.clone().unwrap_or_else(|| c.source.clone()),
                "heading": heading.join(" › "),
                "text": c.text,
            })
        }).collect::<Vec<_>>(),
    });
    let (prompt_name, selector) = crate::pipeline::pinned(&app.prompt, pins);
    Ok(prompts.render(&prompt_name, &selector, &variables).await?)
}

/// The model call for a rendered prompt sent to `route`: the rendered messages, with the client's
/// sampling settings over the caller's cap (`max_tokens`) over the prompt's.
pub(crate) fn model_request(
    route: &str,
    max_tokens: Option<u32>,
    rendered: &RenderedPrompt,
    client: ChatRequest,
) -> ChatRequest {
    let params = &rendered.model;
    ChatRequest {
        model: route.to_owned(),
        messages: rendered.messages.clone(),
        temperature: client.temperature.or(params.temperature),
        top_p: client.top_p.or(params.top_p),
        max_tokens: client.max_tokens.or(max_tokens).or(params.max_tokens),
        stop: if client.stop.is_empty() {
            params.stop.clone()
        } else {
            client.stop
        },
        seed: client.seed.or(params.seed),
        response_format: client.response_format,
        ..ChatRequest::default()
    }
}
