//! `[embedding]`, `[index]`, `[ingest]` and `[rerank]`: the retrieval pipeline's settings, resolved
//! into the embedding model and the vector index to open.

use super::*;

/// The optional cross-encoder that reorders search candidates.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RerankSection {
    /// A BERT-family cross-encoder (e.g. cross-encoder/ms-marco-MiniLM-L-6-v2): a directory or a
    /// Hugging Face id. Empty: no reranking; searches that ask for it are ranked without it.
    pub model: String,
    /// Passages per forward pass.
    pub max_batch: u32,
}

impl Default for RerankSection {
    fn default() -> Self {
        RerankSection {
            model: String::new(),
            max_batch: 16,
        }
    }
}

/// The embedding model collections are indexed with.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmbeddingSection {
    /// A local BERT-family model: a directory (config.json, tokenizer.json, model.safetensors) or a
    /// Hugging Face id. Empty: the model scripts/fetch-models.sh caches (~/.cache/cairn-models/minilm)
    /// when present, else `sentence-transformers/all-MiniLM-L6-v2` from the hub.
    pub local: String,
    /// Or a remote `/v1/embeddings` endpoint: the name of a `[[models]]` entry (openai, azure,
    /// openai-compatible); `model` of that entry is the embedding model.
    pub remote: String,
    /// The remote model's vector size (local models know theirs).
    pub dimension: u32,
    /// The name collections are bound to; empty: the model's own name.
    pub name: String,
    /// `auto` (a GPU when built with `cuda` and present) or `cpu`.
    pub device: String,
    /// Texts per forward pass, and how long a pass waits to gather concurrent requests.
    pub max_batch: u32,
    pub batch_window_ms: u64,
}

impl Default for EmbeddingSection {
    fn default() -> Self {
        EmbeddingSection {
            local: String::new(),
            remote: String::new(),
            dimension: 0,
            name: String::new(),
            device: "auto".into(),
            max_batch: 32,
            batch_window_ms: 2,
        }
    }
}

/// Where chunk vectors are stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IndexSection {
    /// `auto` (pgvector when the catalog is PostgreSQL, else embedded Qdrant), `qdrant-edge`
    /// (embedded, under data_dir/qdrant), `pgvector` (in the PostgreSQL catalog's database) or
    /// `qdrant` (a Qdrant server or cluster at `url`).
    pub backend: String,
    /// Qdrant's gRPC URL, e.g. http://qdrant:6334.
    pub url: String,
    /// The environment variable holding the Qdrant API key, if the server needs one.
    pub api_key_env: String,
    /// Prefix of Cairn's collection names on the Qdrant server.
    pub collection_prefix: String,
    /// pgvector's `hnsw.ef_search`: higher finds more of the true nearest neighbours, slower.
    pub ef_search: u32,
}

impl Default for IndexSection {
    fn default() -> Self {
        IndexSection {
            backend: "auto".into(),
            url: String::new(),
            api_key_env: String::new(),
            collection_prefix: "cairn_".into(),
            ef_search: 100,
        }
    }
}

/// How documents are loaded and chunked.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestSection {
    /// The most tokens in a chunk (of the embedding model's tokenizer), and the overlap between
    /// neighbouring chunks.
    pub chunk_tokens: u32,
    pub chunk_overlap: u32,
    /// Documents larger than this are refused.
    pub max_document_bytes: u64,
    /// PDFs whose compressed streams expand past this, together, are refused unread.
    pub max_pdf_expanded_bytes: u64,
    /// Uploads through the API larger than this are refused.
    pub max_upload_bytes: u64,
    /// Uploads ingested at once; more get 429 with `Retry-After`.
    pub max_concurrent_uploads: u32,
    /// Allow URLs that resolve to private, loopback or link-local addresses (off: no SSRF).
    pub allow_private_urls: bool,
    /// Internal hosts URL ingest may reach although their addresses are private.
    pub allowed_private_hosts: Vec<String>,
    pub fetch_timeout_secs: u64,
    /// Documents loaded at once.
    pub concurrency: u32,
    /// A file's changed documents (a JSONL file's records) stored per catalog transaction and
    /// embedded together.
    pub sync_batch: u32,
    /// Glob patterns a directory ingest includes (default: every supported extension) and excludes.
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    /// JSON and JSONL records: the fields holding the text (first present wins), the title, a
    /// stable id (empty: the record's position), a link to the original, and the fields copied into
    /// metadata (filterable).
    pub json_text_fields: Vec<String>,
    pub json_title_field: String,
    pub json_id_field: String,
    pub json_url_field: String,
    pub json_metadata_fields: Vec<String>,
}

impl Default for IngestSection {
    fn default() -> Self {
        IngestSection {
            chunk_tokens: 200,
            chunk_overlap: 24,
            max_document_bytes: 50 * 1024 * 1024,
            max_pdf_expanded_bytes: cairn_loaders::DEFAULT_MAX_PDF_EXPANDED_BYTES,
            max_upload_bytes: 50 * 1024 * 1024,
            max_concurrent_uploads: 2,
            allow_private_urls: false,
            allowed_private_hosts: Vec::new(),
            fetch_timeout_secs: 30,
            concurrency: 2,
            sync_batch: 64,
            include: Vec::new(),
            exclude: Vec::new(),
            json_text_fields: vec!["text".into(), "content".into(), "body".into()],
            json_title_field: "title".into(),
            json_id_field: String::new(),
            json_url_field: "url".into(),
            json_metadata_fields: Vec::new(),
        }
    }
}

/// The embedding model, resolved.
#[derive(Debug, Clone)]
pub enum EmbeddingConfig {
    Local {
        source: String,
        name: String,
        cpu_only: bool,
        max_batch: usize,
        batch_window: Duration,
    },
    Remote {
        endpoint: cairn_openai::Endpoint,
        model: String,
        dimension: usize,
        name: String,
    },
}

impl EmbeddingConfig {
    /// The name collections are bound to.
    pub fn name(&self) -> &str {
        match self {
            EmbeddingConfig::Local { name, .. } | EmbeddingConfig::Remote { name, .. } => name,
        }
    }
}

/// The packaged all-MiniLM-L6-v2 that scripts/fetch-models.sh caches, and its hub id.
pub(super) const DEFAULT_LOCAL_EMBEDDING: &str = ".cache/cairn-models/minilm";
pub(super) const DEFAULT_HUB_EMBEDDING: &str = "sentence-transformers/all-MiniLM-L6-v2";

/// The embedding model: a `[[models]]` entry's `/v1/embeddings` when `embedding.remote` names
/// one, else a local model.
pub(super) fn embedding_config(
    raw: &RawConfig,
    models: &[ModelConfig],
    env: &[(String, String)],
    bad: &impl Fn(&str, String, &str) -> ConfigError,
) -> Result<EmbeddingConfig, ConfigError> {
    let section = &raw.embedding;
    if section.remote.is_empty() {
        local_embedding(section, env, bad)
    } else {
        remote_embedding(section, models, bad)
    }
}

/// `embedding.remote`: an OpenAI, Azure or OpenAI-compatible model, with its vector size.
fn remote_embedding(
    section: &EmbeddingSection,
    models: &[ModelConfig],
    bad: &impl Fn(&str, String, &str) -> ConfigError,
) -> Result<EmbeddingConfig, ConfigError> {
    if !section.local.is_empty() {
        return Err(bad(
            "embedding.remote",
            "both embedding.local and embedding.remote are set".into(),
            "keep one of them",
        ));
    }
    let model = models
        .iter()
        .find(|m| m.name == section.remote)
        .ok_or_else(|| {
            bad(
                "embedding.remote",
                format!("no [[models]] entry is named `{}`", section.remote),
                "add a [[models]] entry for the embeddings endpoint, or correct the name",
            )
        })?;
    let ModelBackend::Remote {
        endpoint,
        upstream_model,
        ..
    } = &model.backend
    else {
        return Err(bad(
            "embedding.remote",
            format!("model `{}` is a local chat model", section.remote),
            "point embedding.remote at an OpenAI, Azure or OpenAI-compatible entry, or use embedding.local",
        ));
    };
    if section.dimension == 0 {
        return Err(bad(
            "embedding.dimension",
            "a remote embedding model needs its vector size".into(),
            "set it, e.g. 1536 for text-embedding-3-small",
        ));
    }
    Ok(EmbeddingConfig::Remote {
        endpoint: endpoint.clone(),
        model: upstream_model.clone(),
        dimension: section.dimension as usize,
        name: if section.name.is_empty() {
            upstream_model.clone()
        } else {
            section.name.clone()
        },
    })
}

/// `embedding.local`, or when empty the cached MiniLM (else the hub's), run in this process.
fn local_embedding(
    section: &EmbeddingSection,
    env: &[(String, String)],
    bad: &impl Fn(&str, String, &str) -> ConfigError,
) -> Result<EmbeddingConfig, ConfigError> {
    let (source, default_name) = if section.local.is_empty() {
        let home = env
            .iter()
            .find(|(k, _)| k == "HOME")
            .map(|(_, v)| v.as_str());
        match home.map(|h| PathBuf::from(h).join(DEFAULT_LOCAL_EMBEDDING)) {
            Some(cached) if cached.is_dir() => {
                (cached.display().to_string(), "all-MiniLM-L6-v2".to_owned())
            }
            _ => (
                DEFAULT_HUB_EMBEDDING.to_owned(),
                "all-MiniLM-L6-v2".to_owned(),
            ),
        }
    } else {
        let path = expand_home(&section.local, env);
        let name = Path::new(&path)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.clone());
        (path, name)
    };
    let cpu_only = match section.device.as_str() {
        "auto" => false,
        "cpu" => true,
        other => {
            return Err(bad(
                "embedding.device",
                format!("`{other}` is not a device setting"),
                "use \"auto\" or \"cpu\"",
            ));
        }
    };
    if section.max_batch == 0 {
        return Err(bad(
            "embedding.max_batch",
            "0 texts per pass".into(),
            "use at least 1, e.g. 32",
        ));
    }
    Ok(EmbeddingConfig::Local {
        source,
        name: if section.name.is_empty() {
            default_name
        } else {
            section.name.clone()
        },
        cpu_only,
        max_batch: section.max_batch as usize,
        batch_window: Duration::from_millis(section.batch_window_ms),
    })
}

/// The vector index, resolved.
#[derive(Debug, Clone)]
pub enum IndexConfig {
    /// Embedded Qdrant under this directory.
    Edge { root: PathBuf },
    /// pgvector in the PostgreSQL catalog's database.
    PgVector { ef_search: u32 },
    /// A Qdrant server.
    Qdrant {
        url: String,
        api_key: Option<SecretString>,
        prefix: String,
    },
}

pub(super) fn index_config(
    raw: &RawConfig,
    database: &DatabaseConfig,
    env: &[(String, String)],
    bad: &impl Fn(&str, String, &str) -> ConfigError,
) -> Result<IndexConfig, ConfigError> {
    let section = &raw.index;
    let postgres = matches!(database, DatabaseConfig::Postgres { .. });
    match section.backend.as_str() {
        "auto" if postgres => Ok(IndexConfig::PgVector {
            ef_search: section.ef_search.max(1),
        }),
        "auto" | "qdrant-edge" => Ok(IndexConfig::Edge {
            root: raw.data_dir.join("qdrant"),
        }),
        "pgvector" if postgres => Ok(IndexConfig::PgVector {
            ef_search: section.ef_search.max(1),
        }),
        "pgvector" => Err(bad(
            "index.backend",
            "pgvector lives in the PostgreSQL catalog, and the catalog is SQLite".into(),
            "set database.url to a postgres:// URL, or use backend = \"qdrant-edge\"",
        )),
        "qdrant" => {
            let url = section.url.trim();
            if url::Url::parse(url).is_err() {
                return Err(bad(
                    "index.url",
                    format!("`{url}` is not a Qdrant URL"),
                    "set index.url to the gRPC endpoint, e.g. http://qdrant:6334",
                ));
            }
            let api_key = if section.api_key_env.is_empty() {
                None
            } else {
                match env.iter().find(|(k, _)| *k == section.api_key_env) {
                    Some((_, value)) if !value.is_empty() => {
                        Some(SecretString::from(value.clone()))
                    }
                    _ => {
                        return Err(bad(
                            "index.api_key_env",
                            format!("environment variable {} is not set", section.api_key_env),
                            "export it, or clear index.api_key_env",
                        ));
                    }
                }
            };
            Ok(IndexConfig::Qdrant {
                url: url.to_owned(),
                api_key,
                prefix: section.collection_prefix.clone(),
            })
        }
        other => Err(bad(
            "index.backend",
            format!("`{other}` is not an index backend"),
            "use auto, qdrant-edge, pgvector or qdrant",
        )),
    }
}
