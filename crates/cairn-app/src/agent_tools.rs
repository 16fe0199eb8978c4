//! Cairn's own agent tools, bound to one caller: `search` (a collection, with numbered passages to
//! cite), `read_document` (a document's text or a range of it), `ask_app` (a RAG app's cited
//! answer, through the pipeline like any answer) and `fetch_url` (a web page, under the same SSRF
//! rules as URL ingest). What the caller may not read, the agent may not either.
//!
//! [`Guarded`] puts every tool's result, external ones included, through the agent's context
//! guards before the model reads it: a tool result is retrieved context (indirect injection).

use std::fmt::Write as _;
use std::sync::Arc;

use async_trait::async_trait;
use cairn_core::agent::{AgentTool, ToolError, ToolSpec};
use cairn_core::guard::{GuardScope, GuardStage};
use cairn_core::model::{ChatMessage, ChatRequest, Role};
use cairn_core::{Catalog, RequestContext};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::agents::AgentSection;
use crate::guards::{Checked, Guards};
use crate::pipeline::{AnswerRequest, Pipeline, Target};

/// Characters of a document or page a tool returns at most in one call.
const MAX_RESULT_CHARS: usize = 6000;

/// The own tools `agent` lists, bound to the caller of `context`.
pub(crate) fn own(
    pipeline: &Pipeline,
    context: &RequestContext,
    agent: &AgentSection,
    cited: &Cited,
) -> Vec<Arc<dyn AgentTool>> {
    let bound = || Bound {
        pipeline: pipeline.clone(),
        context: context.clone(),
        agent: agent.clone(),
        cited: cited.clone(),
    };
    let mut tools: Vec<Arc<dyn AgentTool>> = Vec::new();
    let wants = |name: &str| agent.tools.iter().any(|t| t == name);
    if wants("search") {
        tools.push(Arc::new(Search::new(bound())));
    }
    if wants("read_document") {
        tools.push(Arc::new(ReadDocument::new(bound())));
    }
    if wants("ask_app") {
        tools.push(Arc::new(AskApp::new(bound())));
    }
    if wants("fetch_url") {
        tools.push(Arc::new(FetchUrl::new(bound())));
    }
    tools
}

/// The passages `search` gave one run, numbered across the run as the model may cite them; they
/// become the answer's citations.
#[derive(Debug, Clone, Default)]
pub struct Cited(Arc<std::sync::Mutex<Vec<cairn_rag::Citation>>>);

impl Cited {
    /// The passages so far, in their numbering.
    pub fn snapshot(&self) -> Vec<cairn_rag::Citation> {
        self.0.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// The number `passage` is cited by in this run: its earlier one, or the next.
    fn number(&self, passage: &cairn_rag::Passage) -> usize {
        let Ok(mut cited) = self.0.lock() else {
            return 0;
        };
        if let Some(known) = cited.iter().find(|c| c.chunk_id == passage.chunk_id) {
            return known.index;
        }
        let index = cited.len() + 1;
        cited.push(cairn_rag::Citation::of(index, passage));
        index
    }
}

/// What every own tool holds: the pipeline, the caller, the agent's own limits, and the run's
/// cited passages.
#[derive(Debug, Clone)]
struct Bound {
    pipeline: Pipeline,
    context: RequestContext,
    agent: AgentSection,
    cited: Cited,
}

impl Bound {
    fn catalog(&self) -> &Arc<dyn Catalog> {
        &self.pipeline.parts().catalog
    }

    /// The collections the agent may search for this caller, by name and id.
    async fn collections(&self) -> Result<Vec<(String, Uuid)>, ToolError> {
        let every = self
            .agent
            .collections
            .iter()
            .any(|c| c == crate::ALL_COLLECTIONS);
        Ok(self
            .catalog()
            .list_collections()
            .await
            .map_err(|e| ToolError::Failed(e.to_string()))?
            .into_iter()
            .filter(|c| every || self.agent.collections.contains(&c.name))
            .filter(|c| self.context.principal.may_read(&c.name))
            .map(|c| (c.name, c.id))
            .collect())
    }
}

fn spec(name: &str, description: &str, parameters: Value) -> ToolSpec {
    ToolSpec {
        name: name.to_owned(),
        description: description.to_owned(),
        parameters,
        source: "cairn".to_owned(),
    }
}

fn arguments<T: DeserializeOwned>(arguments: Value) -> Result<T, ToolError> {
    serde_json::from_value(arguments).map_err(|e| ToolError::InvalidArguments(e.to_string()))
}

fn truncated(mut text: String) -> String {
    if let Some((cut, _)) = text.char_indices().nth(MAX_RESULT_CHARS) {
        text.truncate(cut);
        text.push_str("\n[… truncated]");
    }
    text
}

#[derive(Debug)]
struct Search {
    bound: Bound,
    spec: ToolSpec,
}

impl Search {
    fn new(bound: Bound) -> Search {
        Search {
            bound,
            spec: spec(
                "search",
                "Search the knowledge base; returns numbered passages with their document ids, to cite as [n].",
                json!({"type": "object", "required": ["query"], "additionalProperties": false, "properties": {
                    "query": {"type": "string", "description": "What to look for, in words the documents would use."},
                    "collection": {"type": "string", "description": "One collection to search; default: all the agent may read."},
                    "top_k": {"type": "integer", "minimum": 1, "maximum": 10, "description": "Passages to return (default 5)."}
                }}),
            ),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchArgs {
    query: String,
    #[serde(default)]
    collection: Option<String>,
    #[serde(default)]
    top_k: Option<usize>,
}

#[async_trait]
impl AgentTool for Search {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, args: Value) -> Result<String, ToolError> {
        let args: SearchArgs = arguments(args)?;
        if args.query.trim().is_empty() {
            return Err(ToolError::InvalidArguments("`query` is empty".into()));
        }
        let mut collections: Vec<String> = self
            .bound
            .collections()
            .await?
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        if let Some(wanted) = &args.collection {
            if !collections.contains(wanted) {
                return Err(ToolError::InvalidArguments(format!(
                    "collection `{wanted}` is not one this agent may search; it may search: {}",
                    collections.join(", ")
                )));
            }
            collections = vec![wanted.clone()];
        }
        if collections.is_empty() {
            return Err(ToolError::Failed(
                "there is no collection this agent may search".into(),
            ));
        }
        let rag = self
            .bound
            .pipeline
            .rag()
            .map_err(|e| ToolError::Unavailable(e.to_string()))?;
        let top_k = args.top_k.unwrap_or(5).clamp(1, 10);
        let mut passages = crate::apps::retrieve(rag, &collections, &args.query, top_k)
            .await
            .map_err(|e| ToolError::Failed(e.to_string()))?;
        passages.truncate(top_k);
        if passages.is_empty() {
            return Ok("No passages matched.".into());
        }
        let mut text = String::new();
        for p in &passages {
            let heading = p.heading_path.join(" › ");
            let _ = writeln!(
                text,
                "[{}] {}{} ({}) document_id={} chars {}-{}\n{}\n",
                self.bound.cited.number(p),
                p.title,
                if heading.is_empty() {
                    String::new()
                } else {
                    format!(" — {heading}")
                },
                p.url.as_deref().unwrap_or(&p.source),
                p.document_id,
                p.char_start,
                p.char_end,
                p.content.trim()
            );
        }
        Ok(text)
    }
}

#[derive(Debug)]
struct ReadDocument {
    bound: Bound,
    spec: ToolSpec,
}

impl ReadDocument {
    fn new(bound: Bound) -> ReadDocument {
        ReadDocument {
            bound,
            spec: spec(
                "read_document",
                "Read a document's text (a document_id from search), or a character range of it.",
                json!({"type": "object", "required": ["document_id"], "additionalProperties": false, "properties": {
                    "document_id": {"type": "string"},
                    "start": {"type": "integer", "minimum": 0, "description": "First character (default 0)."},
                    "end": {"type": "integer", "minimum": 0, "description": "Character after the last (default: the end)."}
                }}),
            ),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadArgs {
    document_id: String,
    #[serde(default)]
    start: Option<u64>,
    #[serde(default)]
    end: Option<u64>,
}

#[async_trait]
impl AgentTool for ReadDocument {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, args: Value) -> Result<String, ToolError> {
        let args: ReadArgs = arguments(args)?;
        let id = Uuid::parse_str(args.document_id.trim()).map_err(|_| {
            ToolError::InvalidArguments(format!(
                "`{}` is not a document id; use a document_id from search",
                args.document_id
            ))
        })?;
        let catalog = self.bound.catalog();
        let missing = || ToolError::Failed(format!("no document {id} that this agent may read"));
        let document = catalog
            .get_document(id)
            .await
            .map_err(|e| ToolError::Failed(e.to_string()))?
            .ok_or_else(missing)?;
        let readable = self.bound.collections().await?;
        if !readable
            .iter()
            .any(|(_, cid)| *cid == document.collection_id)
        {
            return Err(missing());
        }
        let chunks = catalog
            .list_chunks(id)
            .await
            .map_err(|e| ToolError::Failed(e.to_string()))?;
        let text = cairn_rag::document_text(&chunks);
        let (piece, start, end) = cairn_rag::text_range(&text, args.start, args.end);
        let total = text.chars().count();
        Ok(truncated(format!(
            "{} (chars {start}-{end} of {total})\n\n{piece}",
            document.title
        )))
    }
}

#[derive(Debug)]
struct AskApp {
    bound: Bound,
    spec: ToolSpec,
}

impl AskApp {
    fn new(bound: Bound) -> AskApp {
        let apps: Vec<String> = bound
            .pipeline
            .apps()
            .iter()
            .filter(|a| bound.agent.apps.is_empty() || bound.agent.apps.contains(&a.name))
            .map(|a| {
                if a.description.is_empty() {
                    a.name.clone()
                } else {
                    format!("{} ({})", a.name, a.description)
                }
            })
            .collect();
        AskApp {
            spec: spec(
                "ask_app",
                &format!(
                    "Ask a question-answering app; returns its answer with numbered sources. Apps: {}.",
                    apps.join("; ")
                ),
                json!({"type": "object", "required": ["app", "question"], "additionalProperties": false, "properties": {
                    "app": {"type": "string"},
                    "question": {"type": "string"}
                }}),
            ),
            bound,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AskArgs {
    app: String,
    question: String,
}

#[async_trait]
impl AgentTool for AskApp {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, args: Value) -> Result<String, ToolError> {
        let args: AskArgs = arguments(args)?;
        let allowed = self.bound.agent.apps.is_empty() || self.bound.agent.apps.contains(&args.app);
        if !allowed || self.bound.pipeline.app(&args.app).is_none() {
            return Err(ToolError::InvalidArguments(format!(
                "`{}` is not an app this agent may ask",
                args.app
            )));
        }
        let chat = ChatRequest {
            messages: vec![ChatMessage::new(Role::User, args.question)],
            ..ChatRequest::default()
        };
        let request = AnswerRequest::new(Target::App(args.app), chat);
        let answer = self
            .bound
            .pipeline
            .answer(&self.bound.context, request)
            .await
            .map_err(|e| ToolError::Failed(e.to_string()))?;
        let citations = answer.citations().to_vec();
        let completed = answer
            .complete()
            .await
            .map_err(|e| ToolError::Failed(e.to_string()))?;
        let mut text = completed.response.message.content;
        if !citations.is_empty() {
            text.push_str("\n\nSources:\n");
            for c in &citations {
                let _ = writeln!(
                    text,
                    "[{}] {} ({}) document_id={}",
                    c.index,
                    c.title,
                    c.url.as_deref().unwrap_or(&c.source),
                    c.document_id
                );
            }
        }
        Ok(text)
    }
}

#[derive(Debug)]
struct FetchUrl {
    bound: Bound,
    spec: ToolSpec,
}

impl FetchUrl {
    fn new(bound: Bound) -> FetchUrl {
        FetchUrl {
            bound,
            spec: spec(
                "fetch_url",
                "Fetch a public web page or document by URL and return its text.",
                json!({"type": "object", "required": ["url"], "additionalProperties": false, "properties": {
                    "url": {"type": "string", "description": "An http or https URL."}
                }}),
            ),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FetchArgs {
    url: String,
}

#[async_trait]
impl AgentTool for FetchUrl {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, args: Value) -> Result<String, ToolError> {
        let args: FetchArgs = arguments(args)?;
        let rag = self
            .bound
            .pipeline
            .rag()
            .map_err(|e| ToolError::Unavailable(e.to_string()))?;
        let options = rag.ingestor.options();
        let fetched = cairn_loaders::fetch_url(&args.url, &options.fetch)
            .await
            .map_err(|e| ToolError::Failed(e.to_string()))?;
        let format = fetched.format().ok_or_else(|| {
            ToolError::Failed(format!(
                "{} is {}, which is not a format Cairn reads (HTML, Markdown, text, PDF, JSON)",
                fetched.final_url,
                fetched
                    .content_type
                    .as_deref()
                    .unwrap_or("of no declared type")
            ))
        })?;
        let documents =
            cairn_loaders::load_bytes(&fetched.final_url, &fetched.bytes, format, &options.load)
                .map_err(|e| ToolError::Failed(e.to_string()))?;
        let text: Vec<String> = documents
            .into_iter()
            .map(|d| format!("{}\n\n{}", d.title, d.text))
            .collect();
        Ok(truncated(text.join("\n\n---\n\n")))
    }
}

/// A tool whose results pass the agent's context guards before the model reads them.
#[derive(Debug)]
pub(crate) struct Guarded {
    tool: Arc<dyn AgentTool>,
    guards: Guards,
}

impl Guarded {
    pub(crate) fn wrap(tool: Arc<dyn AgentTool>, guards: Guards) -> Arc<dyn AgentTool> {
        if guards.runs_at(GuardStage::RetrievedContext) {
            Arc::new(Guarded { tool, guards })
        } else {
            tool
        }
    }
}

#[async_trait]
impl AgentTool for Guarded {
    fn spec(&self) -> &ToolSpec {
        self.tool.spec()
    }

    async fn call(&self, args: Value) -> Result<String, ToolError> {
        let result = self.tool.call(args).await?;
        let mut verdicts = Vec::new();
        match self
            .guards
            .check(
                GuardStage::RetrievedContext,
                result,
                &mut GuardScope::default(),
                &mut verdicts,
            )
            .await
        {
            Checked::Pass(text) => Ok(text),
            Checked::Blocked { guard, reason } => Err(ToolError::Blocked { guard, reason }),
        }
    }
}
