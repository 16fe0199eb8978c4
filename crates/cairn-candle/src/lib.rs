//! In-process BERT-family models over candle: sentence embeddings and cross-encoder rerankers.
//!
//! mistral.rs (in `cairn-local`) covers chat models and the EmbeddingGemma / Qwen3-Embedding
//! families; BERT-family encoders, which mistral.rs does not support, live here on the same candle
//! version, so the build has one candle. This crate does not depend on mistral.rs, so the RAG
//! pipeline and its tests do not link it. CPU by default; the `cuda` feature runs on a GPU when one
//! is present.

pub mod batch;
pub mod bench;
mod bert;
mod cross_encoder;
mod files;

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use cairn_core::{EmbeddingModel, ModelError, Reranker};
use candle_core::Device;

pub use batch::{BatchSettings, Batcher};
pub use bert::BertEmbedder;
pub use cross_encoder::CrossEncoder;
pub use files::{ModelFiles, ModelSource};
pub use tokenizers::Tokenizer;

/// Why a model could not be loaded; each says which file and what to do.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LoadError {
    #[error(
        "model directory {dir} has no `{file}`; a BERT-family model needs config.json, tokenizer.json and model.safetensors"
    )]
    MissingFile { dir: PathBuf, file: String },
    #[error("cannot read {file}: {reason}")]
    Io { file: PathBuf, reason: String },
    #[error("{file} is not usable: {reason}")]
    Invalid { file: PathBuf, reason: String },
    #[error(
        "cannot fetch model `{id}` from the Hugging Face hub: {reason}; check the id and the network, or give a local directory"
    )]
    Hub { id: String, reason: String },
    #[error("{0}")]
    Device(String),
}

/// Where models run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DevicePreference {
    /// The first GPU when built with `cuda` and one is present, else the CPU.
    #[default]
    Auto,
    Cpu,
}

/// The device for `preference`.
pub fn device(preference: DevicePreference) -> Result<Device, LoadError> {
    match preference {
        DevicePreference::Cpu => Ok(Device::Cpu),
        DevicePreference::Auto => {
            if cfg!(feature = "cuda") {
                Device::cuda_if_available(0).map_err(|e| LoadError::Device(e.to_string()))
            } else {
                Ok(Device::Cpu)
            }
        }
    }
}

impl batch::Encoder for BertEmbedder {
    type Output = Vec<f32>;
    fn encode(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, String> {
        self.embed(texts).map_err(|e| e.to_string())
    }
}

/// A local sentence-embedding model behind the `EmbeddingModel` port, with dynamic batching.
#[derive(Debug, Clone)]
pub struct LocalEmbeddingModel {
    id: String,
    dimension: usize,
    max_tokens: usize,
    tokenizer: Arc<Tokenizer>,
    batcher: Batcher<Vec<f32>>,
}

impl LocalEmbeddingModel {
    /// Loads the model (from disk, or from the hub for a model id) and starts its batching worker on
    /// the current runtime. `id` names the model in collection bindings; `None` uses the source's
    /// default id.
    pub async fn load(
        source: &ModelSource,
        id: Option<String>,
        preference: DevicePreference,
        settings: BatchSettings,
    ) -> Result<Self, LoadError> {
        let files = source.resolve().await?;
        let device = device(preference)?;
        let embedder = tokio::task::spawn_blocking(move || BertEmbedder::load(&files, &device))
            .await
            .map_err(|e| LoadError::Device(format!("model loading panicked: {e}")))??;
        Ok(Self::from_embedder(
            id.unwrap_or_else(|| source.default_id()),
            embedder,
            settings,
        ))
    }

    pub fn from_embedder(id: String, embedder: BertEmbedder, settings: BatchSettings) -> Self {
        let tokenizer = Arc::new(embedder.tokenizer().clone());
        LocalEmbeddingModel {
            id,
            dimension: embedder.dimension(),
            max_tokens: embedder.max_tokens(),
            tokenizer,
            batcher: Batcher::spawn(Arc::new(embedder), settings),
        }
    }

    /// The model's tokenizer (no padding, no truncation), for chunking by tokens.
    pub fn tokenizer(&self) -> Arc<Tokenizer> {
        self.tokenizer.clone()
    }

    /// The longest input the model reads; chunks should not exceed it.
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// Forward passes run so far (for tests and metrics).
    pub fn forward_passes(&self) -> u64 {
        self.batcher.forward_passes()
    }
}

#[async_trait]
impl EmbeddingModel for LocalEmbeddingModel {
    fn model_id(&self) -> &str {
        &self.id
    }

    fn dimension(&self) -> usize {
        self.dimension
    }

    async fn embed_documents(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, ModelError> {
        self.batcher
            .encode(texts.to_vec())
            .await
            .map_err(ModelError::Permanent)
    }
}

/// A local cross-encoder behind the `Reranker` port.
#[derive(Debug, Clone)]
pub struct LocalReranker {
    encoder: Arc<CrossEncoder>,
    max_batch: usize,
}

impl LocalReranker {
    pub async fn load(
        source: &ModelSource,
        preference: DevicePreference,
        max_batch: usize,
    ) -> Result<Self, LoadError> {
        let files = source.resolve().await?;
        let device = device(preference)?;
        let encoder = tokio::task::spawn_blocking(move || CrossEncoder::load(&files, &device))
            .await
            .map_err(|e| LoadError::Device(format!("model loading panicked: {e}")))??;
        Ok(LocalReranker {
            encoder: Arc::new(encoder),
            max_batch: max_batch.max(1),
        })
    }
}

#[async_trait]
impl Reranker for LocalReranker {
    async fn rerank(&self, query: &str, passages: &[String]) -> Result<Vec<f32>, ModelError> {
        let encoder = self.encoder.clone();
        let query = query.to_owned();
        let passages = passages.to_vec();
        let max_batch = self.max_batch;
        tokio::task::spawn_blocking(move || {
            let mut scores = Vec::with_capacity(passages.len());
            for group in passages.chunks(max_batch) {
                scores.extend(encoder.score(&query, group)?);
            }
            Ok::<_, candle_core::Error>(scores)
        })
        .await
        .map_err(|e| ModelError::Permanent(format!("reranker panicked: {e}")))?
        .map_err(|e| ModelError::Permanent(e.to_string()))
    }
}
