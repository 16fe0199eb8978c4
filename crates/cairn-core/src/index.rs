//! The vector index port: dense and lexical retrieval over the chunks of a collection.
//!
//! Implemented by pgvector, a remote Qdrant cluster and embedded Qdrant. Each collection is bound to
//! one embedding model and dimension; the index refuses vectors of another dimension.

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What an index needs to know to hold a collection's vectors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexSpec {
    pub collection: String,
    pub embedding_model: String,
    pub dimension: usize,
}

/// One chunk as the index stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexPoint {
    pub chunk_id: Uuid,
    pub document_id: Uuid,
    pub vector: Vec<f32>,
    /// The chunk's text, for lexical scoring.
    pub text: String,
    /// Flat metadata that filters may test.
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

/// A metadata condition: all `must` hold, none of `must_not` holds.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Filter {
    #[serde(default)]
    pub must: Vec<Condition>,
    #[serde(default)]
    pub must_not: Vec<Condition>,
}

/// A test of one metadata field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Condition {
    Equals {
        field: String,
        value: serde_json::Value,
    },
    AnyOf {
        field: String,
        values: Vec<serde_json::Value>,
    },
}

/// How to search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexQuery {
    pub collection: String,
    /// The query embedding, for dense retrieval.
    pub vector: Option<Vec<f32>>,
    /// The query text, for lexical retrieval.
    pub text: Option<String>,
    pub filter: Option<Filter>,
    pub top_k: usize,
}

/// A hit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoredPoint {
    pub chunk_id: Uuid,
    pub document_id: Uuid,
    pub score: f32,
}

/// Failures of an index.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IndexError {
    #[error("collection `{0}` has no index; ingest into it first")]
    UnknownCollection(String),
    #[error(
        "collection `{collection}` is indexed with `{indexed_model}` ({indexed_dimension} dimensions), not `{requested_model}` ({requested_dimension}); reindex the collection to change its embedding model"
    )]
    ModelMismatch {
        collection: String,
        indexed_model: String,
        indexed_dimension: usize,
        requested_model: String,
        requested_dimension: usize,
    },
    #[error("index unavailable: {0}")]
    Unavailable(String),
    #[error("index error: {0}")]
    Backend(String),
}

/// A store of chunk vectors with dense, lexical and filtered search.
#[async_trait]
pub trait VectorIndex: Send + Sync + fmt::Debug {
    /// A short name for logs and health checks (`pgvector`, `qdrant`, `qdrant-edge`).
    fn backend(&self) -> &'static str;
    /// Checks that the index answers; used by `/readyz`.
    async fn ping(&self) -> Result<(), IndexError>;
    /// Creates the collection's index, or checks that the existing one matches `spec`.
    async fn ensure_collection(&self, spec: &IndexSpec) -> Result<(), IndexError>;
    async fn upsert(&self, collection: &str, points: Vec<IndexPoint>) -> Result<(), IndexError>;
    async fn delete(&self, collection: &str, chunk_ids: &[Uuid]) -> Result<(), IndexError>;
    async fn search(&self, query: &IndexQuery) -> Result<Vec<ScoredPoint>, IndexError>;
}
