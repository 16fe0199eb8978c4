//! Wiring the RAG pipeline from config: the embedding model, the vector index, the chunker, and the
//! ingestor and retriever over them. Shared by `cairn serve` and the `cairn ingest` / `cairn search`
//! commands, so that both index and search the same way.

use std::sync::Arc;

use cairn_candle::{
    BatchSettings, DevicePreference, LocalEmbeddingModel, LocalReranker, ModelSource,
};
use cairn_core::EmbeddingModel;
use cairn_core::index::VectorIndex;
use cairn_loaders::{DiscoverOptions, FetchOptions, JsonOptions, LoadOptions};
use cairn_postgres::{PgVectorIndex, PgVectorOptions};
use cairn_qdrant::{EdgeIndex, RemoteIndex, RemoteOptions};
use cairn_rag::{Chunker, ChunkingOptions, IngestOptions, Ingestor, Retriever, Sizer};
use secrecy::ExposeSecret;

use crate::catalog::OpenCatalog;
use crate::config::{Config, EmbeddingConfig, IndexConfig, IngestSection};

pub use cairn_app::{Rag, RagSetupError};

/// The embedding model from config, with the chunk sizer that matches it and the longest input it
/// reads.
pub async fn build_embedder(
    config: &Config,
) -> Result<(Arc<dyn EmbeddingModel>, Sizer, usize), RagSetupError> {
    match &config.embedding {
        EmbeddingConfig::Local {
            source,
            name,
            cpu_only,
            max_batch,
            batch_window,
        } => {
            let model = LocalEmbeddingModel::load(
                &ModelSource::from_path_or_id(source),
                Some(name.clone()),
                if *cpu_only {
                    DevicePreference::Cpu
                } else {
                    DevicePreference::Auto
                },
                BatchSettings {
                    max_batch: *max_batch,
                    window: *batch_window,
                },
            )
            .await
            .map_err(|e| RagSetupError::Embedding {
                source_name: source.clone(),
                reason: e.to_string(),
            })?;
            let sizer = Sizer::Tokens {
                id: name.clone(),
                tokenizer: model.tokenizer(),
            };
            let max_tokens = model.max_tokens();
            Ok((Arc::new(model), sizer, max_tokens))
        }
        EmbeddingConfig::Remote {
            endpoint,
            model,
            dimension,
            name: _,
        } => {
            let model = cairn_openai::OpenAiEmbeddingModel::new(
                endpoint,
                model.clone(),
                *dimension,
                false,
                cairn_openai::Timeouts::default(),
            )
            .map_err(|e| RagSetupError::RemoteEmbedding(e.to_string()))?;
            // A provider's 429 or 5xx is retried rather than failing an ingest's documents.
            let model = cairn_gateway::RetryingEmbedder::new(
                Arc::new(model),
                cairn_gateway::EmbedRetry::default(),
            );
            Ok((Arc::new(model), Sizer::ApproximateTokens, 8192))
        }
    }
}

/// Builds the embedding model, the index and the pipeline.
pub async fn build(config: &Config, catalog: &OpenCatalog) -> Result<Rag, RagSetupError> {
    let (embedder, sizer, max_tokens) = build_embedder(config).await?;
    let index = open_index(config, catalog).await?;
    let chunker = Chunker::new(
        sizer,
        ChunkingOptions {
            max_tokens: (config.ingest.chunk_tokens as usize).min(max_tokens),
            overlap: config.ingest.chunk_overlap as usize,
        },
    );
    let catalog = catalog.as_dyn();
    let ingestor = Ingestor::new(
        catalog.clone(),
        index.clone(),
        embedder.clone(),
        chunker.clone(),
        ingest_options(&config.ingest),
    );
    let reranker: Option<Arc<dyn cairn_core::Reranker>> = match &config.rerank {
        Some((model, max_batch)) => Some(Arc::new(
            LocalReranker::load(
                &ModelSource::from_path_or_id(model),
                DevicePreference::Auto,
                *max_batch,
            )
            .await
            .map_err(|e| RagSetupError::Reranker {
                model: model.clone(),
                reason: e.to_string(),
            })?,
        )),
        None => None,
    };
    let retriever = Retriever::new(catalog, index.clone(), embedder.clone(), reranker);
    Ok(Rag {
        ingestor,
        retriever,
        chunker,
        embedder,
        index,
    })
}

/// The vector index from config.
pub async fn open_index(
    config: &Config,
    catalog: &OpenCatalog,
) -> Result<Arc<dyn VectorIndex>, RagSetupError> {
    match &config.index {
        IndexConfig::Edge { root } => {
            let index = EdgeIndex::open(root.clone()).map_err(|e| RagSetupError::Index {
                backend: "qdrant-edge",
                reason: e.to_string(),
            })?;
            Ok(Arc::new(index))
        }
        IndexConfig::PgVector { ef_search } => match catalog {
            OpenCatalog::Postgres(postgres) => Ok(Arc::new(PgVectorIndex::with_options(
                postgres.pool().clone(),
                PgVectorOptions {
                    ef_search: *ef_search,
                    ..PgVectorOptions::default()
                },
            ))),
            OpenCatalog::Sqlite(_) => Err(RagSetupError::Index {
                backend: "pgvector",
                reason: "pgvector needs the PostgreSQL catalog".into(),
            }),
        },
        IndexConfig::Qdrant {
            url,
            api_key,
            prefix,
        } => {
            let mut options = RemoteOptions::new(url.clone()).prefix(prefix.clone());
            if let Some(key) = api_key {
                options = options.api_key(key.expose_secret().to_owned());
            }
            let index = RemoteIndex::connect(options).map_err(|e| RagSetupError::Index {
                backend: "qdrant",
                reason: e.to_string(),
            })?;
            Ok(Arc::new(index))
        }
    }
}

/// Ingest settings from config.
pub fn ingest_options(section: &IngestSection) -> IngestOptions {
    IngestOptions {
        load: LoadOptions {
            json: JsonOptions {
                text_fields: section.json_text_fields.clone(),
                title_field: Some(section.json_title_field.clone()).filter(|f| !f.is_empty()),
                id_field: Some(section.json_id_field.clone()).filter(|f| !f.is_empty()),
                url_field: Some(section.json_url_field.clone()).filter(|f| !f.is_empty()),
                metadata_fields: section.json_metadata_fields.clone(),
            },
            max_bytes: section.max_document_bytes,
            max_pdf_expanded_bytes: section.max_pdf_expanded_bytes,
        },
        discover: DiscoverOptions {
            include: section.include.clone(),
            exclude: section.exclude.clone(),
        },
        fetch: FetchOptions {
            allow_private: section.allow_private_urls,
            allowed_private_hosts: section.allowed_private_hosts.clone(),
            timeout: std::time::Duration::from_secs(section.fetch_timeout_secs.max(1)),
            max_bytes: section.max_document_bytes,
        },
        embed_batch: 64,
        concurrency: section.concurrency.max(1) as usize,
        sync_batch: section.sync_batch.max(1) as usize,
    }
}
