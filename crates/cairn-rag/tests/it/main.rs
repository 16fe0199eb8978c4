//! The RAG pipeline end to end on real components: the SQLite catalog, embedded Qdrant
//! (qdrant-edge) and all-MiniLM-L6-v2 on the CPU.

mod golden;
mod sync;

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use cairn_candle::{BatchSettings, DevicePreference, LocalEmbeddingModel, ModelSource};
use cairn_core::Catalog;
use cairn_core::index::{IndexError, IndexPoint, IndexQuery, IndexSpec, ScoredPoint, VectorIndex};
use cairn_qdrant::EdgeIndex;
use cairn_rag::{Chunker, ChunkingOptions, IngestOptions, Ingestor, Retriever, Sizer};
use cairn_sqlite::SqliteCatalog;
use tokio::sync::OnceCell;
use uuid::Uuid;

static MINILM: OnceCell<LocalEmbeddingModel> = OnceCell::const_new();

/// One model per test binary: loading takes a second, requests are independent.
pub async fn minilm() -> LocalEmbeddingModel {
    MINILM
        .get_or_init(|| async {
            LocalEmbeddingModel::load(
                &ModelSource::Dir(cairn_testkit::test_model("minilm")),
                Some("all-MiniLM-L6-v2".into()),
                DevicePreference::Cpu,
                BatchSettings::default(),
            )
            .await
            .expect("load all-MiniLM-L6-v2")
        })
        .await
        .clone()
}

/// A catalog, an index and a model under one temporary data directory.
#[derive(Debug)]
pub struct Stack {
    pub catalog: Arc<dyn Catalog>,
    pub index: Arc<dyn VectorIndex>,
    pub model: LocalEmbeddingModel,
    /// Last: fields drop in order, and the index flushes into this directory when dropped.
    pub dir: tempfile::TempDir,
}

impl Stack {
    pub async fn new() -> Stack {
        let dir = tempfile::tempdir().expect("tempdir");
        let catalog = SqliteCatalog::open(&dir.path().join("catalog.db"))
            .await
            .expect("catalog");
        catalog.migrate().await.expect("migrate");
        let index = EdgeIndex::open(dir.path().join("qdrant")).expect("index");
        Stack {
            catalog: Arc::new(catalog),
            index: Arc::new(index),
            model: minilm().await,
            dir,
        }
    }

    pub fn chunker(&self) -> Chunker {
        Chunker::new(
            Sizer::Tokens {
                id: "all-MiniLM-L6-v2".into(),
                tokenizer: self.model.tokenizer(),
            },
            ChunkingOptions {
                max_tokens: 64,
                overlap: 8,
            },
        )
    }

    pub fn ingestor_with(&self, index: Arc<dyn VectorIndex>) -> Ingestor {
        Ingestor::new(
            self.catalog.clone(),
            index,
            Arc::new(self.model.clone()),
            self.chunker(),
            IngestOptions::default(),
        )
    }

    pub fn ingestor(&self) -> Ingestor {
        self.ingestor_with(self.index.clone())
    }

    pub fn retriever(&self) -> Retriever {
        Retriever::new(
            self.catalog.clone(),
            self.index.clone(),
            Arc::new(self.model.clone()),
            None,
        )
    }

    /// A directory of Markdown files inside the data directory.
    pub fn docs(&self) -> std::path::PathBuf {
        let docs = self.dir.path().join("docs");
        std::fs::create_dir_all(&docs).expect("docs dir");
        docs
    }
}

pub fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("write doc");
}

/// An index that fails every upsert after the first `allowed`: an ingest interrupted half-way.
#[derive(Debug)]
pub struct FailingIndex {
    pub inner: Arc<dyn VectorIndex>,
    pub allowed: std::sync::atomic::AtomicUsize,
}

#[async_trait]
impl VectorIndex for FailingIndex {
    fn backend(&self) -> &'static str {
        "failing"
    }
    async fn ping(&self) -> Result<(), IndexError> {
        self.inner.ping().await
    }
    async fn ensure_collection(&self, spec: &IndexSpec) -> Result<(), IndexError> {
        self.inner.ensure_collection(spec).await
    }
    async fn drop_collection(&self, collection: &str) -> Result<bool, IndexError> {
        self.inner.drop_collection(collection).await
    }
    async fn upsert(&self, collection: &str, points: Vec<IndexPoint>) -> Result<(), IndexError> {
        use std::sync::atomic::Ordering;
        if self
            .allowed
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_err()
        {
            return Err(IndexError::Unavailable("simulated crash".into()));
        }
        self.inner.upsert(collection, points).await
    }
    async fn delete(&self, collection: &str, chunk_ids: &[Uuid]) -> Result<(), IndexError> {
        self.inner.delete(collection, chunk_ids).await
    }
    async fn point_ids(&self, collection: &str) -> Result<Vec<Uuid>, IndexError> {
        self.inner.point_ids(collection).await
    }
    async fn search(&self, query: &IndexQuery) -> Result<Vec<ScoredPoint>, IndexError> {
        self.inner.search(query).await
    }
}
