//! Collections, their documents and the documents' chunks.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::{CatalogError, CatalogResult};

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
    /// [`DocumentRepo::sync_document`] for many documents in one transaction (a JSONL file's
    /// records, say), in order; all of them or none are stored.
    async fn sync_documents(
        &self,
        batch: Vec<(NewDocument, Vec<NewChunk>)>,
    ) -> CatalogResult<Vec<DocumentSync>>;
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
}
