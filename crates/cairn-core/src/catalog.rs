//! The catalog: Cairn's metadata store, as repository traits.
//!
//! Implemented by `cairn-sqlite` (embedded mode) and `cairn-postgres` (scaled mode); both pass the same
//! contract suite (`cairn-catalog-contract`). Records are plain data; the rules that do not need the
//! database (name syntax, how a document's chunks are reconciled) live here so both backends share them.

use std::collections::HashMap;
use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// A catalog failure, classified by what the caller does about it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CatalogError {
    #[error("{entity} `{key}` not found")]
    NotFound { entity: &'static str, key: String },
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    /// The database cannot be reached; the request may succeed later.
    #[error("catalog unavailable: {0}")]
    Unavailable(String),
    #[error("catalog error: {0}")]
    Backend(String),
}

impl CatalogError {
    pub fn not_found(entity: &'static str, key: impl fmt::Display) -> Self {
        CatalogError::NotFound {
            entity,
            key: key.to_string(),
        }
    }
}

pub type CatalogResult<T> = Result<T, CatalogError>;

/// Checks a name used in URLs, CLI arguments and labels: 1–64 characters of `a-z`, `0-9`, `_`, `-`, `.`,
/// starting with a letter or digit.
pub fn validate_name(kind: &str, name: &str) -> CatalogResult<()> {
    let valid_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '.'));
    let valid_start = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if name.is_empty() || name.len() > 64 || !valid_chars || !valid_start {
        return Err(CatalogError::Invalid(format!(
            "invalid {kind} name `{name}`: use 1 to 64 characters of a-z, 0-9, `_`, `-` or `.`, starting with a letter or digit"
        )));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------
// Collections, documents, chunks

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Collection {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    /// The embedding model the collection is bound to, once something has been indexed.
    pub embedding_model: Option<String>,
    pub embedding_dimension: Option<u32>,
    pub metadata: Value,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct NewCollection {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub embedding_model: Option<String>,
    pub embedding_dimension: Option<u32>,
    #[serde(default)]
    pub metadata: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Document {
    pub id: Uuid,
    pub collection_id: Uuid,
    /// Where it came from: a path relative to the ingested root, a URL, or an upload name. Unique per collection.
    pub source: String,
    pub title: String,
    pub content_hash: String,
    /// Starts at 1 and grows by one each time the content changes.
    pub version: i64,
    pub metadata: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Document {
    /// A link to the original, when ingest recorded one (`metadata.url`).
    pub fn url(&self) -> Option<String> {
        self.metadata
            .get("url")
            .and_then(Value::as_str)
            .map(str::to_owned)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewDocument {
    pub collection_id: Uuid,
    pub source: String,
    pub title: String,
    pub content_hash: String,
    pub metadata: Value,
}

/// What `upsert_document` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpsertOutcome {
    Added,
    Updated,
    Unchanged,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chunk {
    pub id: Uuid,
    pub document_id: Uuid,
    pub chunk_index: u32,
    pub content: String,
    pub content_hash: String,
    /// Character offsets of the chunk in the document's text, for citations.
    pub char_start: u64,
    pub char_end: u64,
    /// Headings above the chunk, outermost first.
    pub heading_path: Vec<String>,
    pub token_count: u32,
    pub metadata: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewChunk {
    pub chunk_index: u32,
    pub content: String,
    pub content_hash: String,
    pub char_start: u64,
    pub char_end: u64,
    pub heading_path: Vec<String>,
    pub token_count: u32,
    pub metadata: Value,
}

impl NewChunk {
    pub fn into_chunk(self, id: Uuid, document_id: Uuid) -> Chunk {
        Chunk {
            id,
            document_id,
            chunk_index: self.chunk_index,
            content: self.content,
            content_hash: self.content_hash,
            char_start: self.char_start,
            char_end: self.char_end,
            heading_path: self.heading_path,
            token_count: self.token_count,
            metadata: self.metadata,
        }
    }
}

/// The result of replacing a document's chunks: unchanged chunks keep their ids (and so their vectors).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ChunkDiff {
    /// Chunks whose content was already stored; their position or offsets may have moved.
    pub kept: Vec<Chunk>,
    /// Chunks with new content: these need embedding.
    pub added: Vec<Chunk>,
    /// Ids of stored chunks that are gone: delete their vectors.
    pub removed: Vec<Uuid>,
}

/// What [`DocumentRepo::sync_document`] did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocumentSync {
    pub document: Document,
    pub outcome: UpsertOutcome,
    pub diff: ChunkDiff,
}

/// How to turn a document's stored chunks into the new ones, computed without the database so that
/// both backends reconcile identically.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChunkPlan {
    /// Existing chunk id ← new chunk with the same content hash.
    pub keep: Vec<(Uuid, NewChunk)>,
    pub insert: Vec<(Uuid, NewChunk)>,
    pub delete: Vec<Uuid>,
}

impl ChunkPlan {
    /// Matches new chunks to stored ones by content hash; each stored chunk is reused at most once.
    pub fn new(existing: &[Chunk], new_chunks: Vec<NewChunk>) -> Self {
        let mut by_hash: HashMap<&str, Vec<Uuid>> = HashMap::new();
        for chunk in existing.iter().rev() {
            by_hash
                .entry(chunk.content_hash.as_str())
                .or_default()
                .push(chunk.id);
        }
        let mut plan = ChunkPlan::default();
        for new_chunk in new_chunks {
            match by_hash
                .get_mut(new_chunk.content_hash.as_str())
                .and_then(Vec::pop)
            {
                Some(id) => plan.keep.push((id, new_chunk)),
                None => plan.insert.push((Uuid::now_v7(), new_chunk)),
            }
        }
        plan.delete = by_hash.into_values().flatten().collect();
        plan.delete.sort();
        plan
    }

    pub fn into_diff(self, document_id: Uuid) -> ChunkDiff {
        ChunkDiff {
            kept: self
                .keep
                .into_iter()
                .map(|(id, c)| c.into_chunk(id, document_id))
                .collect(),
            added: self
                .insert
                .into_iter()
                .map(|(id, c)| c.into_chunk(id, document_id))
                .collect(),
            removed: self.delete,
        }
    }
}

/// Checks that a collection may hold vectors of `model` with `dimension`: a collection is bound to one
/// embedding model for life, because vectors of two models are not comparable.
pub fn check_binding(collection: &Collection, model: &str, dimension: u32) -> CatalogResult<()> {
    match (&collection.embedding_model, collection.embedding_dimension) {
        (None, _) => Ok(()),
        (Some(bound), Some(bound_dimension)) if bound == model && bound_dimension == dimension => {
            Ok(())
        }
        (Some(bound), bound_dimension) => Err(CatalogError::Conflict(format!(
            "collection `{}` is bound to embedding model `{bound}` ({} dimensions), not `{model}` ({dimension}); \
             reindex the collection to change its embedding model",
            collection.name,
            bound_dimension.map_or_else(|| "unknown".to_owned(), |d| d.to_string()),
        ))),
    }
}

#[async_trait]
pub trait CollectionRepo: Send + Sync {
    async fn create_collection(&self, new: NewCollection) -> CatalogResult<Collection>;
    async fn get_collection(&self, name: &str) -> CatalogResult<Option<Collection>>;
    async fn list_collections(&self) -> CatalogResult<Vec<Collection>>;
    /// Binds a collection to an embedding model; refused if it is bound to another one.
    async fn bind_embedding_model(
        &self,
        name: &str,
        model: &str,
        dimension: u32,
    ) -> CatalogResult<Collection>;
    /// Deletes the collection with its documents and chunks. Returns whether it existed.
    async fn delete_collection(&self, name: &str) -> CatalogResult<bool>;
}

#[async_trait]
pub trait DocumentRepo: Send + Sync {
    /// Inserts the document, or updates it when its content hash changed (bumping `version`).
    async fn upsert_document(&self, new: NewDocument) -> CatalogResult<(Document, UpsertOutcome)>;
    async fn get_document(&self, id: Uuid) -> CatalogResult<Option<Document>>;
    async fn list_documents(&self, collection_id: Uuid) -> CatalogResult<Vec<Document>>;
    /// Deletes a document and its chunks. Returns whether it existed.
    async fn delete_document(&self, id: Uuid) -> CatalogResult<bool>;
    /// Upserts the document and replaces its chunks in one transaction: the document's content hash
    /// never describes chunks that are not stored, so an interrupted ingest leaves either the old
    /// version or the new one.
    async fn sync_document(
        &self,
        new: NewDocument,
        chunks: Vec<NewChunk>,
    ) -> CatalogResult<DocumentSync>;
    /// Replaces a document's chunks atomically, reusing stored chunks with the same content hash.
    async fn replace_chunks(
        &self,
        document_id: Uuid,
        chunks: Vec<NewChunk>,
    ) -> CatalogResult<ChunkDiff>;
    /// The document's chunks in order.
    async fn list_chunks(&self, document_id: Uuid) -> CatalogResult<Vec<Chunk>>;
    async fn get_chunks(&self, ids: &[Uuid]) -> CatalogResult<Vec<Chunk>>;
    /// The ids of every chunk of every document in the collection.
    async fn chunk_ids(&self, collection_id: Uuid) -> CatalogResult<Vec<Uuid>>;
}

// ---------------------------------------------------------------------------------------------------
// Prompts

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptVersion {
    pub id: Uuid,
    pub name: String,
    /// 1, 2, 3… without gaps, per prompt.
    pub version: i64,
    pub template: String,
    /// Front matter: variables schema, model parameters, default route.
    pub spec: Value,
    pub content_hash: String,
    pub author: String,
    pub message: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewPromptVersion {
    pub name: String,
    pub template: String,
    pub spec: Value,
    pub content_hash: String,
    pub author: String,
    pub message: String,
}

/// What publishing a prompt did: a new version, or nothing because the latest has the same content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublishOutcome {
    pub version: PromptVersion,
    pub created: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptSummary {
    pub name: String,
    pub latest_version: i64,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptLabel {
    pub name: String,
    pub label: String,
    pub version: i64,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetLabel {
    pub name: String,
    pub label: String,
    pub version: i64,
    pub actor: String,
    pub reason: String,
}

/// One entry of a prompt's label audit trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelMove {
    pub name: String,
    pub label: String,
    pub from_version: Option<i64>,
    pub to_version: i64,
    pub actor: String,
    pub reason: String,
    pub moved_at: DateTime<Utc>,
}

#[async_trait]
pub trait PromptRepo: Send + Sync {
    /// Publishes a new version unless the latest one has the same content hash. Concurrent publishes
    /// of one prompt are serialised: versions stay a gap-free sequence.
    async fn publish_prompt_version(&self, new: NewPromptVersion) -> CatalogResult<PublishOutcome>;
    async fn get_prompt_version(
        &self,
        name: &str,
        version: i64,
    ) -> CatalogResult<Option<PromptVersion>>;
    async fn latest_prompt_version(&self, name: &str) -> CatalogResult<Option<PromptVersion>>;
    async fn list_prompt_versions(&self, name: &str) -> CatalogResult<Vec<PromptVersion>>;
    async fn list_prompts(&self) -> CatalogResult<Vec<PromptSummary>>;
    /// Points a label at a version (which must exist) and records the move in the audit trail.
    async fn set_prompt_label(&self, set: SetLabel) -> CatalogResult<LabelMove>;
    async fn get_prompt_label(&self, name: &str, label: &str)
    -> CatalogResult<Option<PromptLabel>>;
    async fn list_prompt_labels(&self, name: &str) -> CatalogResult<Vec<PromptLabel>>;
    /// Every label move of a prompt, oldest first.
    async fn prompt_label_history(&self, name: &str) -> CatalogResult<Vec<LabelMove>>;
}

// ---------------------------------------------------------------------------------------------------
// Conversations

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    pub id: Uuid,
    pub owner: String,
    pub title: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub role: String,
    pub content: String,
    /// The lineage record of the answer, for assistant messages.
    pub lineage_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewMessage {
    pub conversation_id: Uuid,
    pub role: String,
    pub content: String,
    pub lineage_id: Option<Uuid>,
}

#[async_trait]
pub trait ConversationRepo: Send + Sync {
    async fn create_conversation(&self, owner: &str, title: &str) -> CatalogResult<Conversation>;
    async fn get_conversation(&self, id: Uuid) -> CatalogResult<Option<Conversation>>;
    /// The owner's conversations, most recently active first.
    async fn list_conversations(&self, owner: &str) -> CatalogResult<Vec<Conversation>>;
    async fn rename_conversation(&self, id: Uuid, title: &str) -> CatalogResult<Conversation>;
    /// Deletes a conversation and its messages. Returns whether it existed.
    async fn delete_conversation(&self, id: Uuid) -> CatalogResult<bool>;
    /// Appends a message and marks the conversation active.
    async fn append_message(&self, new: NewMessage) -> CatalogResult<Message>;
    async fn list_messages(&self, conversation_id: Uuid) -> CatalogResult<Vec<Message>>;
}

// ---------------------------------------------------------------------------------------------------
// Lineage and feedback

/// Everything that went into one answer: the audit record of the chat flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineageRecord {
    /// Also the answer's trace id.
    pub id: Uuid,
    pub conversation_id: Option<Uuid>,
    pub app: Option<String>,
    pub prompt_name: Option<String>,
    pub prompt_version: Option<i64>,
    pub model: String,
    pub route: Option<String>,
    /// Retrieved chunk ids with their scores.
    pub retrieval: Value,
    pub guard_verdicts: Value,
    pub usage: crate::model::Usage,
    pub cost_usd: f64,
    pub latency_ms: u64,
    /// `ok`, or the error class.
    pub status: String,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Feedback {
    pub id: Uuid,
    pub lineage_id: Uuid,
    /// +1 or -1.
    pub rating: i16,
    pub comment: Option<String>,
    pub user: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewFeedback {
    pub lineage_id: Uuid,
    pub rating: i16,
    pub comment: Option<String>,
    pub user: String,
}

impl NewFeedback {
    pub fn validate(&self) -> CatalogResult<()> {
        if self.rating != 1 && self.rating != -1 {
            return Err(CatalogError::Invalid(format!(
                "feedback rating must be 1 (up) or -1 (down), got {}",
                self.rating
            )));
        }
        Ok(())
    }
}

#[async_trait]
pub trait LineageRepo: Send + Sync {
    async fn record_lineage(&self, record: LineageRecord) -> CatalogResult<()>;
    async fn get_lineage(&self, id: Uuid) -> CatalogResult<Option<LineageRecord>>;
    /// Stores feedback on an answer; the lineage record must exist.
    async fn record_feedback(&self, new: NewFeedback) -> CatalogResult<Feedback>;
    async fn list_feedback(&self, lineage_id: Uuid) -> CatalogResult<Vec<Feedback>>;
}

// ---------------------------------------------------------------------------------------------------
// Evaluations

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvalStatus {
    Running,
    Passed,
    Failed,
    Errored,
}

impl EvalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EvalStatus::Running => "running",
            EvalStatus::Passed => "passed",
            EvalStatus::Failed => "failed",
            EvalStatus::Errored => "errored",
        }
    }

    pub fn parse(s: &str) -> CatalogResult<Self> {
        match s {
            "running" => Ok(EvalStatus::Running),
            "passed" => Ok(EvalStatus::Passed),
            "failed" => Ok(EvalStatus::Failed),
            "errored" => Ok(EvalStatus::Errored),
            other => Err(CatalogError::Backend(format!(
                "unknown eval status `{other}` in the catalog"
            ))),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalRun {
    pub id: Uuid,
    pub suite: String,
    /// What was evaluated: app, prompt version, model.
    pub target: Value,
    pub status: EvalStatus,
    /// Aggregated metrics and gate results.
    pub summary: Value,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalResult {
    pub id: Uuid,
    pub run_id: Uuid,
    pub case_id: String,
    pub passed: bool,
    pub metrics: Value,
    pub output: Value,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEvalResult {
    pub run_id: Uuid,
    pub case_id: String,
    pub passed: bool,
    pub metrics: Value,
    pub output: Value,
}

#[async_trait]
pub trait EvalRepo: Send + Sync {
    async fn create_eval_run(&self, suite: &str, target: Value) -> CatalogResult<EvalRun>;
    /// Closes a running run; a finished run cannot be finished again.
    async fn finish_eval_run(
        &self,
        id: Uuid,
        status: EvalStatus,
        summary: Value,
    ) -> CatalogResult<EvalRun>;
    async fn get_eval_run(&self, id: Uuid) -> CatalogResult<Option<EvalRun>>;
    /// A suite's runs, newest first.
    async fn list_eval_runs(&self, suite: &str, limit: u32) -> CatalogResult<Vec<EvalRun>>;
    /// Records one case's result; a case is recorded once per run.
    async fn record_eval_result(&self, new: NewEvalResult) -> CatalogResult<EvalResult>;
    async fn list_eval_results(&self, run_id: Uuid) -> CatalogResult<Vec<EvalResult>>;
}

// ---------------------------------------------------------------------------------------------------
// API keys

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: Uuid,
    pub name: String,
    /// The first characters of the key, shown in listings so that a key can be recognised.
    pub prefix: String,
    /// SHA-256 of the key; the key itself is never stored.
    pub key_hash: String,
    /// Tools the key may call; empty means all.
    pub tools: Vec<String>,
    /// Collections the key may read; empty means none.
    pub collections: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewApiKey {
    pub name: String,
    pub prefix: String,
    pub key_hash: String,
    pub tools: Vec<String>,
    pub collections: Vec<String>,
}

#[async_trait]
pub trait ApiKeyRepo: Send + Sync {
    async fn create_api_key(&self, new: NewApiKey) -> CatalogResult<ApiKey>;
    /// The key with this hash, unless it has been revoked.
    async fn find_active_api_key(&self, key_hash: &str) -> CatalogResult<Option<ApiKey>>;
    async fn list_api_keys(&self) -> CatalogResult<Vec<ApiKey>>;
    /// Revokes a key by name. Returns whether an active key was revoked.
    async fn revoke_api_key(&self, name: &str) -> CatalogResult<bool>;
}

// ---------------------------------------------------------------------------------------------------
// Gateway: usage windows (rate limits and budgets) and shadow comparisons

/// What one call adds to a usage window.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct UsageDelta {
    pub requests: u64,
    pub tokens: u64,
    pub cost_usd: f64,
}

/// A shadow target's answer next to the answer the client got, for comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShadowResult {
    pub id: Uuid,
    pub route: String,
    /// The target that answered the client; `None` when every target failed.
    pub primary_target: Option<String>,
    pub shadow_target: String,
    /// The request's messages, as sent to both.
    pub request: Value,
    /// The client's answer, or `None` when it failed or was stopped (see `primary_error`).
    pub primary_output: Option<String>,
    pub primary_error: Option<String>,
    pub primary_latency_ms: u64,
    pub shadow_output: Option<String>,
    pub shadow_error: Option<String>,
    pub shadow_latency_ms: u64,
    pub shadow_usage: crate::model::Usage,
    pub shadow_cost_usd: Option<f64>,
    pub created_at: DateTime<Utc>,
}

#[async_trait]
pub trait GatewayRepo: Send + Sync {
    /// Adds `delta` to the usage window `(bucket, window_start)` (a Unix time in seconds) and
    /// returns the window's totals after the addition, atomically: concurrent callers, in this
    /// process or another sharing the database, each see a distinct running total.
    async fn add_usage(
        &self,
        bucket: &str,
        window_start: i64,
        delta: UsageDelta,
    ) -> CatalogResult<UsageDelta>;
    /// Deletes windows that started before `before`; returns how many.
    async fn prune_usage(&self, before: i64) -> CatalogResult<u64>;
    async fn record_shadow(&self, result: ShadowResult) -> CatalogResult<()>;
    /// A route's comparisons, newest first.
    async fn list_shadow_results(
        &self,
        route: &str,
        limit: u32,
    ) -> CatalogResult<Vec<ShadowResult>>;
}

/// Label moves as (prompt name, label), as they commit, from every process sharing the catalog.
pub type LabelMoveFeed =
    std::pin::Pin<Box<dyn futures_core::Stream<Item = (String, String)> + Send>>;

/// The whole metadata store.
#[async_trait]
pub trait Catalog:
    CollectionRepo
    + DocumentRepo
    + PromptRepo
    + ConversationRepo
    + LineageRepo
    + EvalRepo
    + ApiKeyRepo
    + GatewayRepo
    + fmt::Debug
{
    /// `sqlite` or `postgres`, for logs and health checks.
    fn backend(&self) -> &'static str;
    /// Checks that the database answers; used by `/readyz`.
    async fn ping(&self) -> CatalogResult<()>;
    /// A feed of label moves made by any process, for cache invalidation across replicas; `None`
    /// when the backend serves one process only (SQLite).
    async fn watch_label_moves(&self) -> CatalogResult<Option<LabelMoveFeed>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(hash: &str, idx: u32) -> Chunk {
        new_chunk(hash, idx).into_chunk(Uuid::now_v7(), Uuid::nil())
    }

    fn new_chunk(hash: &str, idx: u32) -> NewChunk {
        NewChunk {
            chunk_index: idx,
            content: format!("content {hash}"),
            content_hash: hash.into(),
            char_start: 0,
            char_end: 1,
            heading_path: vec![],
            token_count: 1,
            metadata: Value::Null,
        }
    }

    fn check_plan(existing: &[&str], new: &[&str], kept: usize, inserted: usize, deleted: usize) {
        let existing: Vec<Chunk> = existing
            .iter()
            .enumerate()
            .map(|(i, h)| stored(h, i as u32))
            .collect();
        let new: Vec<NewChunk> = new
            .iter()
            .enumerate()
            .map(|(i, h)| new_chunk(h, i as u32))
            .collect();
        let plan = ChunkPlan::new(&existing, new);
        assert_eq!(
            (plan.keep.len(), plan.insert.len(), plan.delete.len()),
            (kept, inserted, deleted)
        );
        let mut reused: Vec<Uuid> = plan
            .keep
            .iter()
            .map(|(id, _)| *id)
            .chain(plan.delete.iter().copied())
            .collect();
        reused.sort();
        reused.dedup();
        assert_eq!(
            reused.len(),
            existing.len(),
            "every stored chunk is either kept or deleted, once"
        );
    }

    #[test]
    fn chunk_plan_reuses_unchanged_chunks() {
        check_plan(&[], &["a", "b"], 0, 2, 0);
        check_plan(&["a", "b"], &["a", "b"], 2, 0, 0);
        check_plan(&["a", "b", "c"], &["a", "x", "c"], 2, 1, 1);
        check_plan(&["a", "b"], &[], 0, 0, 2);
        check_plan(&["a", "a"], &["a"], 1, 0, 1);
        check_plan(&["a"], &["a", "a"], 1, 1, 0);
    }

    #[test]
    fn names_are_checked() {
        assert!(validate_name("collection", "docs-2024_v1.2").is_ok());
        for bad in ["", "Docs", "-x", "a b", "ü", &"x".repeat(65)] {
            let err = validate_name("collection", bad).expect_err("refused");
            assert!(err.to_string().contains("use 1 to 64 characters"), "{err}");
        }
    }

    #[test]
    fn feedback_rating_is_up_or_down() {
        let mut feedback = NewFeedback {
            lineage_id: Uuid::nil(),
            rating: 1,
            comment: None,
            user: "u".into(),
        };
        assert!(feedback.validate().is_ok());
        feedback.rating = 5;
        assert!(feedback.validate().is_err());
    }
}
