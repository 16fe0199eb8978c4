//! The vector index port: dense and lexical retrieval over the chunks of a collection.
//!
//! Implemented by pgvector, a remote Qdrant cluster and embedded Qdrant (qdrant-edge). Each
//! collection is bound to one embedding model and dimension; the index refuses vectors of another
//! dimension and a spec naming another model. Fusion of dense and lexical hits, MMR and reranking
//! happen above the port (in `cairn-rag`), so every backend ranks the same way.

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
    /// The chunk's embedding; its length is the collection's dimension.
    pub vector: Vec<f32>,
    /// The chunk's text, for lexical scoring (the index may keep only terms, not the text).
    pub text: String,
    /// Flat metadata that filters may test: string, number or boolean values.
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

impl Filter {
    pub fn is_empty(&self) -> bool {
        self.must.is_empty() && self.must_not.is_empty()
    }

    /// Whether `metadata` satisfies the filter; the reference semantics every backend must match.
    pub fn matches(&self, metadata: &serde_json::Map<String, serde_json::Value>) -> bool {
        self.must.iter().all(|c| c.matches(metadata))
            && !self.must_not.iter().any(|c| c.matches(metadata))
    }
}

/// A test of one metadata field. A missing field matches nothing.
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

impl Condition {
    pub fn field(&self) -> &str {
        match self {
            Condition::Equals { field, .. } | Condition::AnyOf { field, .. } => field,
        }
    }

    pub fn matches(&self, metadata: &serde_json::Map<String, serde_json::Value>) -> bool {
        match self {
            Condition::Equals { field, value } => metadata.get(field) == Some(value),
            Condition::AnyOf { field, values } => {
                metadata.get(field).is_some_and(|v| values.contains(v))
            }
        }
    }
}

/// What a search compares against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Probe {
    /// Cosine similarity to the query embedding; scores in [-1, 1], higher is closer.
    Dense(Vec<f32>),
    /// BM25-like relevance of the query text; scores are positive and comparable only within one
    /// query.
    Lexical(String),
}

/// How to search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexQuery {
    pub collection: String,
    pub probe: Probe,
    pub filter: Option<Filter>,
    pub top_k: usize,
    /// Return each hit's stored vector (for MMR).
    #[serde(default)]
    pub with_vectors: bool,
}

/// A hit, best first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoredPoint {
    pub chunk_id: Uuid,
    pub document_id: Uuid,
    pub score: f32,
    /// Present when the query asked for vectors.
    pub vector: Option<Vec<f32>>,
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
    #[error(
        "vector for chunk {chunk_id} has {got} dimensions; collection `{collection}` holds {expected}"
    )]
    DimensionMismatch {
        collection: String,
        chunk_id: Uuid,
        expected: usize,
        got: usize,
    },
    #[error("index unavailable: {0}")]
    Unavailable(String),
    #[error("index error: {0}")]
    Backend(String),
}

/// A store of chunk vectors with dense, lexical and filtered search.
///
/// Upserts and deletes are idempotent, so an interrupted ingest can simply be run again; the
/// ingest pipeline reconciles the index with the catalog through [`VectorIndex::point_ids`].
#[async_trait]
pub trait VectorIndex: Send + Sync + fmt::Debug {
    /// A short name for logs and health checks (`pgvector`, `qdrant`, `qdrant-edge`).
    fn backend(&self) -> &'static str;
    /// Checks that the index answers; used by `/readyz`.
    async fn ping(&self) -> Result<(), IndexError>;
    /// Creates the collection's index, or checks that the existing one matches `spec`
    /// ([`IndexError::ModelMismatch`] when it does not).
    async fn ensure_collection(&self, spec: &IndexSpec) -> Result<(), IndexError>;
    /// Removes the collection's index and every point in it. Returns whether it existed.
    async fn drop_collection(&self, collection: &str) -> Result<bool, IndexError>;
    /// Inserts or replaces points by chunk id.
    async fn upsert(&self, collection: &str, points: Vec<IndexPoint>) -> Result<(), IndexError>;
    /// Deletes points by chunk id; unknown ids are ignored.
    async fn delete(&self, collection: &str, chunk_ids: &[Uuid]) -> Result<(), IndexError>;
    /// Every chunk id the collection's index holds, in no particular order.
    async fn point_ids(&self, collection: &str) -> Result<Vec<Uuid>, IndexError>;
    /// The best `top_k` points for the probe among those passing the filter, best first.
    async fn search(&self, query: &IndexQuery) -> Result<Vec<ScoredPoint>, IndexError>;
}
