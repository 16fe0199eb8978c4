//! The tools: their arguments, structured outputs and handlers. Descriptions are kept short, since
//! agents carry every tool's text in their context.

use std::collections::BTreeMap;

use cairn_core::catalog::{Collection, Document};
use cairn_core::index::{Condition, Filter};
use cairn_prompts::Selector;
use cairn_rag::{Passage, SearchRequest};
use rmcp::handler::server::common::Extension;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::{Json, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

pub mod evals;

use crate::AnswerTarget;
use crate::server::CairnMcp;
use cairn_auth::Grant;

/// Every tool, as named in key allow-lists (`cairn key create --tools …`).
pub const TOOL_NAMES: [&str; 9] = [
    "search_knowledge",
    "answer_question",
    "check_text",
    "list_collections",
    "get_document",
    "list_prompts",
    "get_prompt",
    "render_prompt",
    "run_eval_suite",
];

/// The URI of a document resource.
pub(crate) fn document_uri(collection: &str, id: Uuid) -> String {
    format!("cairn://collections/{collection}/documents/{id}")
}

/// What a caller is told about a collection it may not read: the same as for one that does not
/// exist, so that it learns nothing about it.
pub(crate) fn no_collection(name: &str) -> String {
    format!(
        "collection `{name}` does not exist or this key may not read it; list_collections shows the ones you can search"
    )
}

fn no_document(id: &str) -> String {
    format!("document `{id}` does not exist or this key may not read its collection")
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchArgs {
    /// What to look for, in natural language.
    query: String,
    /// The collection to search.
    collection: String,
    /// How many passages (default 5).
    #[serde(default = "default_top_k")]
    #[schemars(range(min = 1, max = 50))]
    top_k: usize,
    /// Metadata filters: {"field": value} or {"field": [any, of]}.
    #[serde(default)]
    filters: BTreeMap<String, Value>,
}

fn default_top_k() -> usize {
    5
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct SearchOutput {
    passages: Vec<PassageOut>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct PassageOut {
    // Cite as [n].
    n: usize,
    text: String,
    score: f32,
    title: String,
    source: String,
    url: Option<String>,
    heading_path: Vec<String>,
    char_start: u64,
    char_end: u64,
    document_id: Uuid,
    chunk_id: Uuid,
    resource: String,
}

impl PassageOut {
    fn new(n: usize, collection: &str, passage: Passage) -> PassageOut {
        PassageOut {
            n,
            resource: document_uri(collection, passage.document_id),
            text: passage.content,
            score: passage.score,
            title: passage.title,
            source: passage.source,
            url: passage.url,
            heading_path: passage.heading_path,
            char_start: passage.char_start,
            char_end: passage.char_end,
            document_id: passage.document_id,
            chunk_id: passage.chunk_id,
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerArgs {
    question: String,
    /// A RAG app (its collections, prompt and model).
    #[serde(default)]
    app: Option<String>,
    /// Or one collection, with the default answering prompt.
    #[serde(default)]
    collection: Option<String>,
    /// Or an agent (`[[agents]]`), which looks things up with its tools before it answers.
    #[serde(default)]
    agent: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckArgs {
    /// The guardrails to run, in order (`[[guards]]` names).
    guards: Vec<String>,
    /// The text to check.
    text: String,
    /// Check it as `input` (the default), `retrieved_context` or `output`.
    #[serde(default)]
    stage: Option<String>,
}

/// What named guardrails decided about a text.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct CheckOutput {
    /// `allow`, `flag`, `redact` or `block`.
    pub action: String,
    /// The text to go on with (redacted where a guard redacts); absent when blocked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The guard that blocked it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Each guard's verdict: guard, stage, action, findings by kind, latency.
    pub verdicts: Vec<Value>,
}

/// A cited answer.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AnswerOutput {
    /// The answer, with [n] markers.
    pub answer: String,
    pub citations: Vec<cairn_rag::Citation>,
    pub model: String,
    /// `name@vN` of the registered prompt that produced it.
    pub prompt: Option<String>,
    /// `GET /v1/lineage/{id}` shows how it was produced.
    pub lineage_id: Uuid,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

#[derive(Debug, Serialize, JsonSchema)]
pub struct CollectionsOutput {
    collections: Vec<CollectionOut>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct CollectionOut {
    name: String,
    description: String,
    documents: usize,
    embedding_model: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentArgs {
    /// Document id (from search results).
    id: String,
    /// First character (default 0).
    #[serde(default)]
    start: Option<u64>,
    /// End character, exclusive (default: the end).
    #[serde(default)]
    end: Option<u64>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct DocumentOut {
    id: Uuid,
    collection: String,
    title: String,
    source: String,
    url: Option<String>,
    version: i64,
    text: String,
    start: u64,
    end: u64,
    total_chars: u64,
    resource: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct PromptsOutput {
    prompts: Vec<PromptOut>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct PromptOut {
    name: String,
    description: String,
    latest_version: i64,
    labels: BTreeMap<String, i64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PromptRefArgs {
    /// `name`, `name@3` or `name@production`.
    prompt: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct PromptVersionOut {
    name: String,
    version: i64,
    description: String,
    /// JSON Schema of the variables.
    variables: Value,
    template: String,
    labels: BTreeMap<String, i64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RenderArgs {
    /// `name`, `name@3` or `name@production`.
    prompt: String,
    /// Values for the prompt's variables.
    #[serde(default)]
    variables: serde_json::Map<String, Value>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct RenderedOut {
    name: String,
    version: Option<i64>,
    messages: Vec<MessageOut>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct MessageOut {
    role: String,
    content: String,
}

fn to_filter(filters: BTreeMap<String, Value>) -> Option<Filter> {
    if filters.is_empty() {
        return None;
    }
    let must = filters
        .into_iter()
        .map(|(field, value)| match value {
            Value::Array(values) => Condition::AnyOf { field, values },
            value => Condition::Equals { field, value },
        })
        .collect();
    Some(Filter {
        must,
        must_not: Vec::new(),
    })
}

#[tool_router(vis = "pub(crate)")]
impl CairnMcp {
    #[tool(
        description = "Search a document collection; returns passages with citations and scores.",
        annotations(read_only_hint = true)
    )]
    async fn search_knowledge(
        &self,
        Parameters(args): Parameters<SearchArgs>,
        Extension(grant): Extension<Grant>,
    ) -> Result<Json<SearchOutput>, String> {
        if !grant.may_read(&args.collection) {
            return Err(no_collection(&args.collection));
        }
        let retriever = self.knowledge().retriever.as_ref()?;
        let mut request = SearchRequest::new(&args.collection, &args.query, args.top_k);
        request.filter = to_filter(args.filters);
        let passages = retriever.search(&request).await.map_err(|e| match e {
            cairn_rag::RagError::UnknownCollection(name) => no_collection(&name),
            other => other.to_string(),
        })?;
        Ok(Json(SearchOutput {
            passages: passages
                .into_iter()
                .enumerate()
                .map(|(i, p)| PassageOut::new(i + 1, &args.collection, p))
                .collect(),
        }))
    }

    #[tool(
        description = "Answer a question from an app or a collection, with [n] citations, or delegate it to an agent.",
        annotations(read_only_hint = true)
    )]
    async fn answer_question(
        &self,
        Parameters(args): Parameters<AnswerArgs>,
        Extension(grant): Extension<Grant>,
    ) -> Result<Json<AnswerOutput>, String> {
        let answerer = &self.knowledge().answerer;
        let target = match (args.app, args.collection, args.agent) {
            (None, None, Some(agent)) => AnswerTarget::Agent(agent),
            (Some(app), None, None) => {
                let readable = answerer
                    .app_collections(&app)
                    .is_some_and(|collections| collections.iter().all(|c| grant.may_read(c)));
                if !readable {
                    return Err(format!(
                        "app `{app}` does not exist or reads collections this key may not read"
                    ));
                }
                AnswerTarget::App(app)
            }
            (None, Some(collection), None) => {
                if !grant.may_read(&collection) {
                    return Err(no_collection(&collection));
                }
                AnswerTarget::Collection(collection)
            }
            _ => return Err("give one of `app`, `collection` and `agent`".into()),
        };
        if args.question.trim().is_empty() {
            return Err("`question` is empty".into());
        }
        answerer
            .answer(&grant, &target, &args.question)
            .await
            .map(Json)
    }

    #[tool(
        description = "Check a text with named guardrails (PII, injection, banned words); returns the verdict.",
        annotations(read_only_hint = true)
    )]
    async fn check_text(
        &self,
        Parameters(args): Parameters<CheckArgs>,
    ) -> Result<Json<CheckOutput>, String> {
        let stage = match args.stage.as_deref().unwrap_or("input") {
            "input" => cairn_core::guard::GuardStage::Input,
            "retrieved_context" => cairn_core::guard::GuardStage::RetrievedContext,
            "output" => cairn_core::guard::GuardStage::Output,
            other => {
                return Err(format!(
                    "unknown stage `{other}`; use input, retrieved_context or output"
                ));
            }
        };
        self.knowledge()
            .answerer
            .check_text(&args.guards, stage, args.text)
            .await
            .map(Json)
    }

    #[tool(
        description = "List the collections you can search.",
        annotations(read_only_hint = true)
    )]
    async fn list_collections(
        &self,
        Parameters(_): Parameters<NoArgs>,
        Extension(grant): Extension<Grant>,
    ) -> Result<Json<CollectionsOutput>, String> {
        let catalog = &self.knowledge().catalog;
        let mut collections = Vec::new();
        for collection in readable_collections(self, &grant).await? {
            let documents = catalog
                .list_documents(collection.id)
                .await
                .map_err(|e| e.to_string())?
                .len();
            collections.push(CollectionOut {
                name: collection.name,
                description: collection.description,
                documents,
                embedding_model: collection.embedding_model,
            });
        }
        Ok(Json(CollectionsOutput { collections }))
    }

    #[tool(
        description = "Read a document's text, or a character range of it.",
        annotations(read_only_hint = true)
    )]
    async fn get_document(
        &self,
        Parameters(args): Parameters<DocumentArgs>,
        Extension(grant): Extension<Grant>,
    ) -> Result<Json<DocumentOut>, String> {
        let id: Uuid = args.id.trim().parse().map_err(|_| {
            format!(
                "`{}` is not a document id; ids are UUIDs, as in search results",
                args.id
            )
        })?;
        let (collection, document, text) = self
            .read_document(id, &grant)
            .await?
            .ok_or_else(|| no_document(&args.id))?;
        let total_chars = text.chars().count() as u64;
        let (text, start, end) = cairn_rag::text_range(&text, args.start, args.end);
        Ok(Json(DocumentOut {
            resource: document_uri(&collection, document.id),
            id: document.id,
            url: document.url(),
            collection,
            title: document.title,
            source: document.source,
            version: document.version,
            text,
            start,
            end,
            total_chars,
        }))
    }

    #[tool(
        description = "List registered prompts with their versions and labels.",
        annotations(read_only_hint = true)
    )]
    async fn list_prompts(
        &self,
        Parameters(_): Parameters<NoArgs>,
    ) -> Result<Json<PromptsOutput>, String> {
        let knowledge = self.knowledge();
        let mut prompts = Vec::new();
        for summary in knowledge
            .catalog
            .list_prompts()
            .await
            .map_err(|e| e.to_string())?
        {
            let latest = knowledge
                .prompts
                .resolve(&summary.name, &Selector::Latest)
                .await
                .map_err(|e| e.to_string())?;
            prompts.push(PromptOut {
                description: description(&latest.spec),
                labels: self.labels(&summary.name).await?,
                name: summary.name,
                latest_version: summary.latest_version,
            });
        }
        Ok(Json(PromptsOutput { prompts }))
    }

    #[tool(
        description = "Show a prompt version: template, variables schema, labels.",
        annotations(read_only_hint = true)
    )]
    async fn get_prompt(
        &self,
        Parameters(args): Parameters<PromptRefArgs>,
    ) -> Result<Json<PromptVersionOut>, String> {
        let (name, selector) = Selector::parse_reference(args.prompt.trim());
        let version = self
            .knowledge()
            .prompts
            .resolve(&name, &selector)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Json(PromptVersionOut {
            labels: self.labels(&version.name).await?,
            description: description(&version.spec),
            variables: version
                .spec
                .get("variables")
                .cloned()
                .unwrap_or(Value::Null),
            name: version.name,
            version: version.version,
            template: version.template,
        }))
    }

    #[tool(
        description = "Render a prompt version with variables into chat messages.",
        annotations(read_only_hint = true)
    )]
    async fn render_prompt(
        &self,
        Parameters(args): Parameters<RenderArgs>,
    ) -> Result<Json<RenderedOut>, String> {
        let (name, selector) = Selector::parse_reference(args.prompt.trim());
        let rendered = self
            .knowledge()
            .prompts
            .render(&name, &selector, &Value::Object(args.variables))
            .await
            .map_err(|e| e.to_string())?;
        Ok(Json(RenderedOut {
            name: rendered.name,
            version: rendered.version,
            messages: rendered
                .messages
                .into_iter()
                .map(|m| MessageOut {
                    role: role_name(m.role).to_owned(),
                    content: m.content,
                })
                .collect(),
        }))
    }
}

#[tool_router(router = eval_tool_router, vis = "pub(crate)")]
impl CairnMcp {
    #[tool(
        description = "Run an eval suite by name and store the run; returns metrics, gates, failing cases."
    )]
    async fn run_eval_suite(
        &self,
        Parameters(args): Parameters<evals::RunSuiteArgs>,
        Extension(grant): Extension<Grant>,
    ) -> Result<Json<evals::EvalSuiteOutput>, String> {
        self.knowledge()
            .answerer
            .run_eval(&grant, args.suite.trim())
            .await
            .map(Json)
    }
}

pub(crate) fn role_name(role: cairn_core::model::Role) -> &'static str {
    match role {
        cairn_core::model::Role::System => "system",
        cairn_core::model::Role::User => "user",
        cairn_core::model::Role::Assistant => "assistant",
        cairn_core::model::Role::Tool => "tool",
    }
}

/// A prompt's description, from its front matter.
pub(crate) fn description(spec: &Value) -> String {
    spec.get("description")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// The collections the caller may read, by name.
pub(crate) async fn readable_collections(
    server: &CairnMcp,
    grant: &Grant,
) -> Result<Vec<Collection>, String> {
    Ok(server
        .knowledge()
        .catalog
        .list_collections()
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|c| grant.may_read(&c.name))
        .collect())
}

impl CairnMcp {
    async fn labels(&self, name: &str) -> Result<BTreeMap<String, i64>, String> {
        Ok(self
            .knowledge()
            .catalog
            .list_prompt_labels(name)
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|l| (l.label, l.version))
            .collect())
    }

    /// A document, its collection's name and its text, if the caller may read it.
    pub(crate) async fn read_document(
        &self,
        id: Uuid,
        grant: &Grant,
    ) -> Result<Option<(String, Document, String)>, String> {
        let catalog = &self.knowledge().catalog;
        let Some(document) = catalog.get_document(id).await.map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        let Some(collection) = readable_collections(self, grant)
            .await?
            .into_iter()
            .find(|c| c.id == document.collection_id)
        else {
            return Ok(None);
        };
        let chunks = catalog.list_chunks(id).await.map_err(|e| e.to_string())?;
        Ok(Some((
            collection.name,
            document,
            cairn_rag::document_text(&chunks),
        )))
    }
}
