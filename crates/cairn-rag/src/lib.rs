//! Cairn's RAG pipeline over the ports of `cairn-core`: chunking ([`chunk`]), incremental ingest
//! and sync ([`ingest`]), hybrid retrieval ([`retrieve`]) and cited context ([`context`]).
//! Loading documents from files, URLs and uploads is `cairn-loaders`' job.

pub mod chunk;
pub mod context;
pub mod document;
pub mod ingest;
pub mod retrieve;

use cairn_core::index::IndexError;
use cairn_core::{CatalogError, ModelError};
use cairn_loaders::DocumentError;

pub use chunk::{Chunker, ChunkingOptions, Sizer};
pub use context::{Citation, CitedContext, assemble};
pub use document::{document_text, text_range};
pub use ingest::{
    DocumentFailure, DocumentOutcome, IngestOptions, IngestReport, Ingestor, NoProgress, Progress,
    Source, Upload,
};
pub use retrieve::{Passage, Retriever, SearchMode, SearchRequest, load_passages};

/// A pipeline failure.
#[derive(Debug, thiserror::Error)]
pub enum RagError {
    #[error("collection `{0}` does not exist; create it, or ingest into it to create it")]
    UnknownCollection(String),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("embedding failed: {0}")]
    Model(#[from] ModelError),
    #[error("{0}")]
    Document(#[from] DocumentError),
    #[error("{0}")]
    Invalid(String),
}
