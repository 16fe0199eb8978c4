//! The RAG parts a process holds once built from config: the ingestor and retriever over one
//! embedding model and one vector index. Building them from config is the composition root's job.

use std::sync::Arc;

use cairn_core::EmbeddingModel;
use cairn_core::index::VectorIndex;
use cairn_rag::{Chunker, Ingestor, Retriever};

/// The pipeline's parts, built once per process.
#[derive(Debug, Clone)]
pub struct Rag {
    pub ingestor: Ingestor,
    pub retriever: Retriever,
    pub chunker: Chunker,
    pub embedder: Arc<dyn EmbeddingModel>,
    pub index: Arc<dyn VectorIndex>,
}

impl Rag {
    /// Tokens in `text`, as chunks are measured (for context budgets).
    pub fn count_tokens(&self, text: &str) -> usize {
        self.chunker.count_tokens(text)
    }
}

/// Why the pipeline could not be set up; the message names the setting to fix.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RagSetupError {
    #[error("cannot load the embedding model `{source_name}` (embedding.local): {reason}")]
    Embedding { source_name: String, reason: String },
    #[error("cannot load the cross-encoder `{model}` (rerank.model): {reason}")]
    Reranker { model: String, reason: String },
    #[error("cannot set up the remote embedding model (embedding.remote): {0}")]
    RemoteEmbedding(String),
    #[error("cannot open the vector index ({backend}): {reason}")]
    Index {
        backend: &'static str,
        reason: String,
    },
}
