//! Configuration: defaults < `cairn.toml` < environment (`CAIRN__SECTION__KEY`) < command-line flags.
//!
//! Loading has two phases, as in any config worth trusting. Parsing merges the layers into
//! [`RawConfig`] with unknown keys rejected; every error names where the bad value came from (file and
//! line, environment variable, or flag). Validation then turns it into [`Config`], checking what types
//! cannot (addresses, URLs). Neither phase touches the disk beyond reading the file: a bad config
//! never leaves anything behind. This module does not read the process environment or arguments
//! itself; the CLI passes them in.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// The configuration as written: every key optional, unknown keys rejected.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawConfig {
    /// Where the embedded mode keeps its data (SQLite catalog, vector index).
    pub data_dir: PathBuf,
    pub server: ServerSection,
    pub database: DatabaseSection,
    pub log: LogSection,
    pub prompts: PromptsSection,
    /// Models Cairn can call, each also callable by its name.
    pub models: Vec<ModelSection>,
    /// Named routes over models, with retries and fallback.
    pub routes: Vec<RouteSection>,
    pub embedding: EmbeddingSection,
    pub index: IndexSection,
    pub ingest: IngestSection,
    pub rerank: RerankSection,
    /// RAG apps, each callable as `"model": "app:NAME"`.
    pub apps: Vec<AppSection>,
    pub mcp: McpSection,
    pub auth: AuthSection,
    pub cache: CacheSection,
    /// Rate limits and budgets on `/v1/chat/completions`.
    pub limits: Vec<LimitSection>,
}

/// One rate limit or budget. `route` and `key` choose what it counts: absent, every route (or
/// caller) together; `"*"`, each one apart; a name, that one only.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitSection {
    /// What clients put in `"model"`: a route, a model or `app:NAME`.
    #[serde(default)]
    pub route: Option<String>,
    /// An API key name (`cairn key create`); callers without a key count as `anonymous`.
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub requests_per_minute: Option<u64>,
    #[serde(default)]
    pub tokens_per_minute: Option<u64>,
    #[serde(default)]
    pub cost_per_day_usd: Option<f64>,
}

/// The exact-match response cache of `/v1/chat/completions` (non-streamed answers).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheSection {
    /// How long an answer is served again for the same request; 0 turns the cache off.
    pub ttl_secs: u64,
    /// Answers kept per process; the oldest go first.
    pub max_entries: usize,
}

impl Default for CacheSection {
    fn default() -> Self {
        CacheSection {
            ttl_secs: 0,
            max_entries: 10_000,
        }
    }
}

/// Sign-in for the web UI.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSection {
    /// The OpenID Connect issuer URL (its /.well-known/openid-configuration is read at startup).
    /// Empty: no sign-in; the embedded mode's one local user.
    pub oidc_issuer: String,
    pub oidc_client_id: String,
    /// The environment variable holding the client secret; empty for a public client (PKCE only).
    pub oidc_client_secret_env: String,
    /// Where the provider sends the browser back: https://HOST/auth/callback. Empty: from the
    /// request's Host header.
    pub oidc_redirect_url: String,
    pub oidc_scopes: Vec<String>,
    /// The environment variable holding the key that signs session cookies (64 bytes or more),
    /// shared by replicas. Empty: a random key per process (sessions end at restart).
    pub session_secret_env: String,
    pub session_ttl_secs: u64,
}

impl Default for AuthSection {
    fn default() -> Self {
        AuthSection {
            oidc_issuer: String::new(),
            oidc_client_id: String::new(),
            oidc_client_secret_env: String::new(),
            oidc_redirect_url: String::new(),
            oidc_scopes: vec!["openid".into(), "profile".into(), "email".into()],
            session_secret_env: String::new(),
            session_ttl_secs: 8 * 3600,
        }
    }
}

/// The MCP tool server (`/mcp` over streamable HTTP, `cairn mcp` over stdio).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct McpSection {
    /// Host names (or `host:port`) accepted in the Host header of `/mcp` requests, against DNS
    /// rebinding. Empty: loopback names only; list the public name in a deployment.
    pub allowed_hosts: Vec<String>,
    /// The public URL of the endpoint (e.g. https://cairn.example.com/mcp), advertised in the
    /// OAuth protected-resource metadata. Empty: taken from each request's Host header.
    pub resource_url: String,
    /// OAuth authorization servers (OIDC issuers) whose tokens the endpoint accepts, advertised in
    /// that metadata. Empty: Cairn API keys only.
    pub authorization_servers: Vec<String>,
    /// The model or route `answer_question` uses for a bare collection. Empty: the route of the
    /// first app, else the first model.
    pub answer_route: String,
}

pub use cairn_app::AppSection;
use cairn_app::apps::default_app_prompt;

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
    /// Uploads through the API larger than this are refused.
    pub max_upload_bytes: u64,
    /// Allow URLs that resolve to private, loopback or link-local addresses (off: no SSRF).
    pub allow_private_urls: bool,
    pub fetch_timeout_secs: u64,
    /// Documents loaded at once.
    pub concurrency: u32,
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
            max_upload_bytes: 50 * 1024 * 1024,
            allow_private_urls: false,
            fetch_timeout_secs: 30,
            concurrency: 2,
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

/// Which API a model speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProviderKind {
    /// api.openai.com.
    Openai,
    /// An Azure OpenAI deployment.
    Azure,
    /// Any server with OpenAI's API: vLLM, TGI, Ollama, mistralrs-server, a gateway in front of them.
    OpenaiCompatible,
    /// In this process, through mistral.rs: a GGUF file, a safetensors directory or a hub id.
    Local,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// What clients put in `"model"`, and what routes list as targets.
    pub name: String,
    pub provider: ProviderKind,
    /// OpenAI: defaults to https://api.openai.com/v1. Compatible servers: their `/v1` base URL.
    /// Azure: the resource endpoint, https://NAME.openai.azure.com.
    #[serde(default)]
    pub base_url: Option<String>,
    /// The upstream model name (defaults to `name`); on Azure, the deployment name.
    #[serde(default)]
    pub model: Option<String>,
    /// Local models: a `.gguf` file, a safetensors directory, or a Hugging Face model id.
    #[serde(default)]
    pub path: Option<String>,
    /// Azure only.
    #[serde(default)]
    pub api_version: Option<String>,
    /// The environment variable holding the API key (sent as a bearer token, or as `api-key` on Azure).
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Azure only: the environment variable holding an Entra ID access token, instead of a key.
    #[serde(default)]
    pub bearer_token_env: Option<String>,
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: u64,
    /// The longest silence tolerated while reading an answer.
    #[serde(default = "default_read_timeout")]
    pub read_timeout_secs: u64,
    /// Consecutive failures that take the model out of rotation (its circuit opens) ...
    #[serde(default = "default_breaker_failures")]
    pub breaker_failures: u32,
    /// ... for this long, after which one trial call decides.
    #[serde(default = "default_breaker_cool_down")]
    pub breaker_cool_down_secs: u64,
    /// Prices in US dollars per million tokens, for cost accounting (lineage `cost_usd`, the
    /// `x-cairn-cost-usd` header, metrics). Unset: the cost is not known; local models cost 0.
    #[serde(default)]
    pub input_price_per_mtok: Option<f64>,
    /// Input tokens served from the provider's prompt cache; default: the input price.
    #[serde(default)]
    pub cached_input_price_per_mtok: Option<f64>,
    #[serde(default)]
    pub output_price_per_mtok: Option<f64>,
    /// Reasoning tokens, which providers count among the output tokens; default: the output price.
    #[serde(default)]
    pub reasoning_price_per_mtok: Option<f64>,
}

fn default_connect_timeout() -> u64 {
    10
}

fn default_read_timeout() -> u64 {
    120
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSection {
    /// What clients put in `"model"` to use the route.
    pub name: String,
    /// Model names, in order of preference.
    pub targets: Vec<String>,
    #[serde(default = "default_attempts")]
    pub attempts_per_target: u32,
    /// The whole call, retries included (for streams: until the first token).
    #[serde(default = "default_deadline")]
    pub deadline_secs: u64,
    /// Which target goes first: `ordered` (as listed), `weighted` (drawn by `weights`, for a
    /// canary) or `latency` (the lowest moving-average latency). The others follow as fallbacks.
    #[serde(default)]
    pub strategy: RouteStrategy,
    /// With `strategy = "weighted"`: one weight per target, e.g. `[95, 5]`.
    #[serde(default)]
    pub weights: Vec<u32>,
    /// A model that gets a copy of the requests; its answers never reach clients and are stored
    /// next to theirs for comparison (`GET /v1/routes/NAME/shadow`).
    #[serde(default)]
    pub shadow: Option<String>,
    /// The fraction of requests copied to the shadow.
    #[serde(default = "default_shadow_sample")]
    pub shadow_sample: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteStrategy {
    #[default]
    Ordered,
    Weighted,
    Latency,
}

fn default_shadow_sample() -> f64 {
    1.0
}

fn default_attempts() -> u32 {
    2
}

fn default_deadline() -> u64 {
    60
}

fn default_breaker_failures() -> u32 {
    5
}

fn default_breaker_cool_down() -> u64 {
    30
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PromptsSection {
    /// How long a resolved label is trusted without hearing of a move (PostgreSQL announces moves
    /// at once; this bounds staleness if that feed is interrupted).
    pub label_cache_ttl_secs: u64,
    /// Template instructions one render may execute.
    pub render_fuel: u64,
    /// Bytes one render may produce.
    pub max_render_bytes: u64,
}

impl Default for PromptsSection {
    fn default() -> Self {
        PromptsSection {
            label_cache_ttl_secs: 30,
            render_fuel: 500_000,
            max_render_bytes: 1 << 20,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSection {
    pub listen: String,
    pub max_body_bytes: u64,
    pub shutdown_grace_secs: u64,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            listen: "127.0.0.1:8080".into(),
            max_body_bytes: 10 * 1024 * 1024,
            shutdown_grace_secs: 30,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSection {
    /// Empty: SQLite under `data_dir`. Otherwise `sqlite://PATH` or `postgres://…`.
    pub url: String,
    pub max_connections: u32,
    pub connect_timeout_secs: u64,
    pub migrate_on_start: bool,
}

impl Default for DatabaseSection {
    fn default() -> Self {
        DatabaseSection {
            url: String::new(),
            max_connections: 16,
            connect_timeout_secs: 5,
            migrate_on_start: true,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSection {
    /// A tracing filter: `info`, `cairn=debug,tower_http=info`, …
    pub level: String,
    pub format: LogFormat,
}

impl Default for LogSection {
    fn default() -> Self {
        LogSection {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl Default for RawConfig {
    fn default() -> Self {
        RawConfig {
            data_dir: PathBuf::from(".cairn"),
            server: ServerSection::default(),
            database: DatabaseSection::default(),
            log: LogSection::default(),
            prompts: PromptsSection::default(),
            models: Vec::new(),
            routes: Vec::new(),
            embedding: EmbeddingSection::default(),
            index: IndexSection::default(),
            ingest: IngestSection::default(),
            rerank: RerankSection::default(),
            apps: Vec::new(),
            mcp: McpSection::default(),
            auth: AuthSection::default(),
            cache: CacheSection::default(),
            limits: Vec::new(),
        }
    }
}

/// The validated configuration the server runs on.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub max_body_bytes: usize,
    pub shutdown_grace: Duration,
    pub database: DatabaseConfig,
    pub log: LogSection,
    pub prompts: PromptsSection,
    pub models: Vec<ModelConfig>,
    pub routes: Vec<RouteSection>,
    pub embedding: EmbeddingConfig,
    pub index: IndexConfig,
    pub ingest: IngestSection,
    /// The cross-encoder's directory or hub id, with `~` expanded; `None`: no reranking.
    pub rerank: Option<(String, usize)>,
    pub apps: Vec<AppSection>,
    pub mcp: McpSection,
    /// OIDC sign-in for the web UI; `None`: one local user.
    pub auth: Option<crate::auth::OidcSettings>,
    pub cache: CacheSection,
    pub limits: Vec<cairn_gateway::LimitRule>,
    /// Where each key's value came from, for error messages at run time (a refused connection, say).
    pub origins: Origins,
}

#[derive(Debug, Clone)]
pub enum DatabaseConfig {
    Sqlite {
        path: PathBuf,
        max_connections: u32,
    },
    Postgres {
        url: SecretString,
        max_connections: u32,
        connect_timeout: Duration,
        migrate_on_start: bool,
    },
}

impl DatabaseConfig {
    pub fn backend(&self) -> &'static str {
        match self {
            DatabaseConfig::Sqlite { .. } => "sqlite",
            DatabaseConfig::Postgres { .. } => "postgres",
        }
    }

    /// Where the catalog lives, safe to print: the password of a PostgreSQL URL is masked.
    pub fn describe(&self) -> String {
        match self {
            DatabaseConfig::Sqlite { path, .. } => format!("SQLite at {}", path.display()),
            DatabaseConfig::Postgres { url, .. } => {
                format!("PostgreSQL at {}", redact_url(url.expose_secret()))
            }
        }
    }
}

fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => "<unparseable URL>".to_owned(),
    }
}

/// Where a setting came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Default,
    File { path: PathBuf, line: Option<usize> },
    Env(String),
    Flag(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => write!(f, "the default"),
            Origin::File {
                path,
                line: Some(line),
            } => write!(f, "{} line {line}", path.display()),
            Origin::File { path, line: None } => write!(f, "{}", path.display()),
            Origin::Env(var) => write!(f, "environment variable {var}"),
            Origin::Flag(flag) => write!(f, "flag {flag}"),
        }
    }
}

/// The origin of every key that was set, by dotted key (`database.url`).
#[derive(Debug, Clone, Default)]
pub struct Origins(BTreeMap<String, Origin>);

impl Origins {
    /// Where `key` came from; for a key inside an array of tables (`models[1].api_key_env`), where
    /// the array came from.
    pub fn of(&self, key: &str) -> Origin {
        let array = key.split('[').next().unwrap_or(key);
        self.0
            .get(key)
            .or_else(|| self.0.get(array))
            .cloned()
            .unwrap_or(Origin::Default)
    }
}

/// A configuration error: where, which key, what is wrong and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    /// A syntax error, an unknown key or a wrong type in the file, with toml's own line and column.
    #[error(
        "config file {path}: {detail}\nsee cairn.example.toml for every key, its type and its default"
    )]
    File { path: PathBuf, detail: String },
    #[error("{origin}: `{key}`: {problem}; {fix}")]
    Value {
        origin: String,
        key: String,
        problem: String,
        fix: String,
    },
}

/// What the CLI hands to [`load`].
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// The config file, if any.
    pub file: Option<PathBuf>,
    /// The process environment; only `CAIRN__…` variables are read.
    pub env: Vec<(String, String)>,
    /// Flag overrides: (flag as typed, dotted key, value).
    pub flags: Vec<(String, String, String)>,
}

const ENV_PREFIX: &str = "CAIRN__";

/// Reads and merges every layer, then validates.
pub fn load(sources: &Sources) -> Result<Config, ConfigError> {
    let (raw, origins) = parse(sources)?;
    validate(raw, origins, &sources.env)
}

/// Merges the layers into a [`RawConfig`], rejecting unknown keys and wrong types.
pub fn parse(sources: &Sources) -> Result<(RawConfig, Origins), ConfigError> {
    let mut merged = toml::Table::new();
    let mut origins = Origins::default();

    if let Some(path) = &sources.file {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Unreadable {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        // Deserializing the file alone first gives toml's errors with line, column and the offending key.
        toml::from_str::<RawConfig>(&text).map_err(|e| ConfigError::File {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        merged = toml::from_str(&text).map_err(|e| ConfigError::File {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        let document = toml_edit::Document::parse(text.as_str()).ok();
        for key in dotted_keys(&merged) {
            let line = document.as_ref().and_then(|d| line_of(d, &text, &key));
            origins.0.insert(
                key,
                Origin::File {
                    path: path.clone(),
                    line,
                },
            );
        }
    }

    let mut env: Vec<&(String, String)> = sources
        .env
        .iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX))
        .collect();
    env.sort();
    let overrides =
        env.into_iter()
            .map(|(var, value)| {
                let key = var[ENV_PREFIX.len()..]
                    .split("__")
                    .map(str::to_lowercase)
                    .collect::<Vec<_>>()
                    .join(".");
                (Origin::Env(var.clone()), key, value.clone())
            })
            .chain(sources.flags.iter().map(|(flag, key, value)| {
                (Origin::Flag(flag.clone()), key.clone(), value.clone())
            }));
    for (origin, key, value) in overrides {
        insert(&mut merged, &key, literal(&value)).map_err(|problem| ConfigError::Value {
            origin: origin.to_string(),
            key: key.clone(),
            problem,
            fix: "use CAIRN__SECTION__KEY for keys inside a section, e.g. CAIRN__DATABASE__URL"
                .into(),
        })?;
        // Checking after each layer pins a bad key or type on the variable or flag that brought it.
        merged
            .clone()
            .try_into::<RawConfig>()
            .map_err(|e| ConfigError::Value {
                origin: origin.to_string(),
                key: key.clone(),
                problem: e.message().to_owned(),
                fix: "see cairn.example.toml for every key, its type and its default".into(),
            })?;
        origins.0.insert(key, origin);
    }

    let raw = merged
        .try_into::<RawConfig>()
        .map_err(|e| ConfigError::Value {
            origin: "configuration".into(),
            key: String::new(),
            problem: e.message().to_owned(),
            fix: "see cairn.example.toml".into(),
        })?;
    Ok((raw, origins))
}

/// Reads an override: a TOML literal (number, boolean, array, quoted string) or else a bare string.
fn literal(text: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {text}"))
        .ok()
        .and_then(|mut table| table.remove("v"))
        .unwrap_or_else(|| toml::Value::String(text.to_owned()))
}

fn insert(table: &mut toml::Table, dotted: &str, value: toml::Value) -> Result<(), String> {
    let mut parts: Vec<&str> = dotted.split('.').collect();
    let last = parts
        .pop()
        .filter(|p| !p.is_empty())
        .ok_or_else(|| "empty key".to_owned())?;
    let mut current = table;
    for part in parts {
        let entry = current
            .entry(part.to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = entry
            .as_table_mut()
            .ok_or_else(|| format!("`{part}` is a value, not a section"))?;
    }
    current.insert(last.to_owned(), value);
    Ok(())
}

fn dotted_keys(table: &toml::Table) -> Vec<String> {
    let mut keys = Vec::new();
    for (key, value) in table {
        match value {
            toml::Value::Table(inner) => {
                keys.extend(dotted_keys(inner).into_iter().map(|k| format!("{key}.{k}")))
            }
            _ => keys.push(key.clone()),
        }
    }
    keys
}

fn line_of(document: &toml_edit::Document<&str>, text: &str, dotted: &str) -> Option<usize> {
    let mut item = document.as_item();
    for part in dotted.split('.') {
        item = item.get(part)?;
    }
    let start = item.span()?.start;
    Some(text[..start].matches('\n').count() + 1)
}

/// Checks what types cannot, and resolves defaults that depend on other keys.
pub fn validate(
    raw: RawConfig,
    origins: Origins,
    env: &[(String, String)],
) -> Result<Config, ConfigError> {
    let bad = |key: &str, problem: String, fix: &str| ConfigError::Value {
        origin: origins.of(key).to_string(),
        key: key.to_owned(),
        problem,
        fix: fix.to_owned(),
    };

    let listen: SocketAddr = raw.server.listen.parse().map_err(|_| {
        bad(
            "server.listen",
            format!("`{}` is not an address and port", raw.server.listen),
            "write it as IP:PORT, e.g. 127.0.0.1:8080 (this machine only) or 0.0.0.0:8080 (all interfaces)",
        )
    })?;
    if raw.server.max_body_bytes == 0 {
        return Err(bad(
            "server.max_body_bytes",
            "0 would refuse every request body".into(),
            "use a size in bytes, e.g. 10485760 for 10 MiB",
        ));
    }
    let max_body_bytes = usize::try_from(raw.server.max_body_bytes).map_err(|_| {
        bad(
            "server.max_body_bytes",
            "too large for this machine".into(),
            "use at most 4294967295",
        )
    })?;
    if raw.data_dir.as_os_str().is_empty() {
        return Err(bad(
            "data_dir",
            "empty path".into(),
            "name a directory, e.g. .cairn",
        ));
    }
    if raw.database.max_connections == 0 {
        return Err(bad(
            "database.max_connections",
            "0 connections".into(),
            "use at least 1",
        ));
    }
    tracing_subscriber::EnvFilter::try_new(&raw.log.level).map_err(|e| {
        bad("log.level", format!("`{}` is not a log filter ({e})", raw.log.level), "use a level (error, warn, info, debug, trace) or directives such as `info,cairn_server=debug`")
    })?;

    if raw.prompts.render_fuel == 0 || raw.prompts.max_render_bytes == 0 {
        let key = if raw.prompts.render_fuel == 0 {
            "prompts.render_fuel"
        } else {
            "prompts.max_render_bytes"
        };
        return Err(bad(
            key,
            "0 would refuse every render".into(),
            "use a positive number; see cairn.example.toml for the defaults",
        ));
    }
    let database = database_config(&raw, &bad)?;
    let mut models = model_configs(&raw, env, &bad)?;
    let mut apps = raw.apps.clone();
    if raw.models.is_empty() && raw.routes.is_empty() && raw.apps.is_empty() {
        (models, apps) = embedded_chat(env);
    }
    let embedding = embedding_config(&raw, &models, env, &bad)?;
    let index = index_config(&raw, &database, env, &bad)?;
    check_apps(&raw, &bad)?;
    if raw.ingest.chunk_tokens < 16 || raw.ingest.chunk_overlap >= raw.ingest.chunk_tokens / 2 {
        return Err(bad(
            "ingest.chunk_tokens",
            format!(
                "chunks of {} tokens with {} overlapping",
                raw.ingest.chunk_tokens, raw.ingest.chunk_overlap
            ),
            "use at least 16 tokens per chunk, and an overlap under half of that",
        ));
    }
    Ok(Config {
        data_dir: raw.data_dir,
        listen,
        max_body_bytes,
        shutdown_grace: Duration::from_secs(raw.server.shutdown_grace_secs),
        database,
        log: raw.log,
        prompts: raw.prompts,
        models,
        routes: raw.routes,
        embedding,
        index,
        ingest: raw.ingest,
        apps,
        mcp: raw.mcp.clone(),
        auth: auth_config(&raw.auth, env, &bad)?,
        cache: raw.cache.clone(),
        limits: limit_rules(&raw.limits, &bad)?,
        rerank: (!raw.rerank.model.is_empty()).then(|| {
            (
                expand_home(&raw.rerank.model, env),
                raw.rerank.max_batch.max(1) as usize,
            )
        }),
        origins,
    })
}

fn limit_rules(
    sections: &[LimitSection],
    bad: &impl Fn(&str, String, &str) -> ConfigError,
) -> Result<Vec<cairn_gateway::LimitRule>, ConfigError> {
    use cairn_gateway::Scope;
    let scope = |value: &Option<String>| match value.as_deref() {
        None => Scope::All,
        Some("*") => Scope::Each,
        Some(name) => Scope::Named(name.to_owned()),
    };
    sections
        .iter()
        .enumerate()
        .map(|(index, section)| {
            let key = |field: &str| format!("limits[{index}].{field}");
            if section.requests_per_minute.is_none()
                && section.tokens_per_minute.is_none()
                && section.cost_per_day_usd.is_none()
            {
                return Err(bad(
                    &key("requests_per_minute"),
                    "the limit sets no limit".into(),
                    "set requests_per_minute, tokens_per_minute or cost_per_day_usd",
                ));
            }
            if let Some(cost) = section.cost_per_day_usd
                && (!cost.is_finite() || cost < 0.0)
            {
                return Err(bad(
                    &key("cost_per_day_usd"),
                    format!("{cost} is not a budget"),
                    "give US dollars per day, e.g. 20.0",
                ));
            }
            Ok(cairn_gateway::LimitRule {
                route: scope(&section.route),
                key: scope(&section.key),
                requests_per_minute: section.requests_per_minute,
                tokens_per_minute: section.tokens_per_minute,
                cost_per_day_usd: section.cost_per_day_usd,
            })
        })
        .collect()
}

fn auth_config(
    section: &AuthSection,
    env: &[(String, String)],
    bad: &impl Fn(&str, String, &str) -> ConfigError,
) -> Result<Option<crate::auth::OidcSettings>, ConfigError> {
    if section.oidc_issuer.is_empty() {
        return Ok(None);
    }
    let issuer = url::Url::parse(&section.oidc_issuer).map_err(|e| {
        bad(
            "auth.oidc_issuer",
            format!("`{}` is not a URL: {e}", section.oidc_issuer),
            "use the issuer URL, e.g. https://login.example.com/realms/acme",
        )
    })?;
    if !matches!(issuer.scheme(), "http" | "https") {
        return Err(bad(
            "auth.oidc_issuer",
            format!("`{}` is not an http(s) URL", section.oidc_issuer),
            "use the issuer's https URL",
        ));
    }
    if section.oidc_client_id.is_empty() {
        return Err(bad(
            "auth.oidc_client_id",
            "sign-in needs the client id registered at the provider".into(),
            "set auth.oidc_client_id",
        ));
    }
    let secret = |key: &str, var: &str| -> Result<Option<SecretString>, ConfigError> {
        if var.is_empty() {
            return Ok(None);
        }
        match env.iter().find(|(k, _)| k == var) {
            Some((_, value)) if !value.is_empty() => Ok(Some(SecretString::from(value.clone()))),
            _ => Err(bad(
                key,
                format!("environment variable {var} is not set"),
                "export it, or name another variable",
            )),
        }
    };
    let session_secret = secret("auth.session_secret_env", &section.session_secret_env)?;
    if session_secret
        .as_ref()
        .is_some_and(|s| s.expose_secret().len() < 64)
    {
        return Err(bad(
            "auth.session_secret_env",
            format!("{} holds fewer than 64 bytes", section.session_secret_env),
            "use a random secret of 64 bytes or more, e.g. openssl rand -base64 64",
        ));
    }
    if !section.oidc_redirect_url.is_empty()
        && !section.oidc_redirect_url.starts_with("https://")
        && !section.oidc_redirect_url.starts_with("http://")
    {
        return Err(bad(
            "auth.oidc_redirect_url",
            format!("`{}` is not an http(s) URL", section.oidc_redirect_url),
            "use https://HOST/auth/callback, as registered at the provider",
        ));
    }
    Ok(Some(crate::auth::OidcSettings {
        issuer: section.oidc_issuer.clone(),
        client_id: section.oidc_client_id.clone(),
        client_secret: secret(
            "auth.oidc_client_secret_env",
            &section.oidc_client_secret_env,
        )?,
        redirect_url: section.oidc_redirect_url.clone(),
        scopes: section.oidc_scopes.clone(),
        session_ttl: Duration::from_secs(section.session_ttl_secs.max(60)),
        session_secret,
    }))
}

fn check_apps(
    raw: &RawConfig,
    bad: &impl Fn(&str, String, &str) -> ConfigError,
) -> Result<(), ConfigError> {
    let callable: Vec<&str> = raw
        .models
        .iter()
        .map(|m| m.name.as_str())
        .chain(raw.routes.iter().map(|r| r.name.as_str()))
        .collect();
    let answer_route = &raw.mcp.answer_route;
    if !answer_route.is_empty() && !callable.contains(&answer_route.as_str()) {
        return Err(bad(
            "mcp.answer_route",
            format!("no model or route is named `{answer_route}`"),
            &format!(
                "use one of: {}, or leave it empty",
                if callable.is_empty() {
                    "(none configured: add [[models]])".to_owned()
                } else {
                    callable.join(", ")
                }
            ),
        ));
    }
    let mut names: Vec<&str> = Vec::new();
    for (index, app) in raw.apps.iter().enumerate() {
        let key = |field: &str| format!("apps[{index}].{field}");
        cairn_core::catalog::validate_name("app", &app.name)
            .map_err(|e| bad(&key("name"), e.to_string(), "rename it"))?;
        if names.contains(&app.name.as_str()) {
            return Err(bad(
                &key("name"),
                format!("app `{}` is defined twice", app.name),
                "give each app a unique name",
            ));
        }
        names.push(&app.name);
        if app.collections.is_empty() {
            return Err(bad(
                &key("collections"),
                "an app needs at least one collection".into(),
                "list the collections it answers from, e.g. collections = [\"handbook\"]",
            ));
        }
        if !callable.contains(&app.route.as_str()) {
            return Err(bad(
                &key("route"),
                format!("no model or route is named `{}`", app.route),
                &format!(
                    "use one of: {}",
                    if callable.is_empty() {
                        "(none configured: add [[models]])".to_owned()
                    } else {
                        callable.join(", ")
                    }
                ),
            ));
        }
        if app.top_k == 0 || app.top_k > 100 || app.context_tokens < 50 {
            return Err(bad(
                &key("top_k"),
                format!(
                    "top_k {} with {} context tokens",
                    app.top_k, app.context_tokens
                ),
                "use top_k from 1 to 100 and context_tokens of at least 50",
            ));
        }
    }
    Ok(())
}

/// A path from config with a leading `~/` read as the home directory (`HOME` from the
/// environment the CLI passed in).
fn expand_home(path: &str, env: &[(String, String)]) -> String {
    let home = env
        .iter()
        .find(|(k, _)| k == "HOME")
        .map(|(_, v)| v.as_str());
    match (path.strip_prefix("~/"), home) {
        (Some(rest), Some(home)) => format!("{home}/{rest}"),
        _ => path.to_owned(),
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
const DEFAULT_LOCAL_EMBEDDING: &str = ".cache/cairn-models/minilm";
const DEFAULT_HUB_EMBEDDING: &str = "sentence-transformers/all-MiniLM-L6-v2";

fn embedding_config(
    raw: &RawConfig,
    models: &[ModelConfig],
    env: &[(String, String)],
    bad: &impl Fn(&str, String, &str) -> ConfigError,
) -> Result<EmbeddingConfig, ConfigError> {
    let section = &raw.embedding;
    let home = env
        .iter()
        .find(|(k, _)| k == "HOME")
        .map(|(_, v)| v.as_str());
    if !section.remote.is_empty() {
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
        return Ok(EmbeddingConfig::Remote {
            endpoint: endpoint.clone(),
            model: upstream_model.clone(),
            dimension: section.dimension as usize,
            name: if section.name.is_empty() {
                upstream_model.clone()
            } else {
                section.name.clone()
            },
        });
    }
    let (source, default_name) = if section.local.is_empty() {
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

fn index_config(
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

fn database_config(
    raw: &RawConfig,
    bad: &impl Fn(&str, String, &str) -> ConfigError,
) -> Result<DatabaseConfig, ConfigError> {
    const FIX: &str = "use postgres://USER:PASSWORD@HOST:5432/DATABASE, sqlite://PATH/TO/catalog.db, or leave it empty for SQLite under data_dir";
    let url = raw.database.url.trim();
    let max_connections = raw.database.max_connections;
    if url.is_empty() {
        return Ok(DatabaseConfig::Sqlite {
            path: raw.data_dir.join("catalog.db"),
            max_connections,
        });
    }
    let (scheme, rest) = url.split_once(':').ok_or_else(|| {
        bad(
            "database.url",
            format!("`{}` is not a URL", redact_url_lossy(url)),
            FIX,
        )
    })?;
    match scheme {
        "sqlite" => {
            let path = rest.trim_start_matches("//");
            let path = path.split('?').next().unwrap_or_default();
            if path.is_empty() || path == ":memory:" {
                return Err(bad("database.url", "an SQLite URL needs a file path (an in-memory catalog would lose everything on exit)".into(), FIX));
            }
            Ok(DatabaseConfig::Sqlite {
                path: PathBuf::from(path),
                max_connections,
            })
        }
        "postgres" | "postgresql" => {
            let parsed = url::Url::parse(url).map_err(|e| {
                bad(
                    "database.url",
                    format!("`{}` is not a valid URL ({e})", redact_url_lossy(url)),
                    FIX,
                )
            })?;
            if parsed.host_str().is_none_or(str::is_empty) {
                return Err(bad(
                    "database.url",
                    "the PostgreSQL URL names no host".into(),
                    FIX,
                ));
            }
            Ok(DatabaseConfig::Postgres {
                url: SecretString::from(url.to_owned()),
                max_connections,
                connect_timeout: Duration::from_secs(raw.database.connect_timeout_secs.max(1)),
                migrate_on_start: raw.database.migrate_on_start,
            })
        }
        other => Err(bad(
            "database.url",
            format!("the `{other}` scheme is not supported"),
            FIX,
        )),
    }
}

/// A model ready to build: where it is, what it is called there, how long to wait.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    pub name: String,
    pub backend: ModelBackend,
    pub breaker: cairn_gateway::BreakerSettings,
    /// `None`: the cost of its calls is not known.
    pub pricing: Option<cairn_gateway::Pricing>,
}

/// How a model is reached.
#[derive(Debug, Clone)]
pub enum ModelBackend {
    Remote {
        endpoint: cairn_openai::Endpoint,
        upstream_model: String,
        timeouts: cairn_openai::Timeouts,
    },
    Local(cairn_local::LocalModelSource),
    /// A local model loaded when it is first called: the embedded default chat model, so that a
    /// server that never chats never pays for loading it.
    LocalOnFirstUse(cairn_local::LocalModelSource),
}

/// The chat model of the embedded default: the SmolLM2 GGUF that scripts/fetch-models.sh caches,
/// else the hub's SmolLM2-360M-Instruct (downloaded on first use).
const DEFAULT_LOCAL_CHAT: &str = ".cache/cairn-models/smollm2-135m-instruct-q4_1.gguf";
const DEFAULT_HUB_CHAT: &str = "HuggingFaceTB/SmolLM2-360M-Instruct";

/// With no models, routes or apps configured, the embedded mode still chats: a local model named
/// `local`, loaded on first use, and an app `chat` that answers from every collection.
fn embedded_chat(env: &[(String, String)]) -> (Vec<ModelConfig>, Vec<AppSection>) {
    let cached = env
        .iter()
        .find(|(k, _)| k == "HOME")
        .map(|(_, home)| Path::new(home).join(DEFAULT_LOCAL_CHAT))
        .filter(|path| path.is_file());
    let source = match cached {
        Some(path) => cairn_local::LocalModelSource::Gguf(path),
        None => cairn_local::LocalModelSource::Hub(DEFAULT_HUB_CHAT.into()),
    };
    let model = ModelConfig {
        name: "local".into(),
        backend: ModelBackend::LocalOnFirstUse(source),
        breaker: cairn_gateway::BreakerSettings::default(),
        pricing: Some(cairn_gateway::Pricing::default()),
    };
    let app = AppSection {
        name: "chat".into(),
        description: "Answers from every collection".into(),
        collections: vec![ALL_COLLECTIONS.into()],
        prompt: default_app_prompt(),
        route: "local".into(),
        // The default model reads ~10 prompt tokens/s on a 2-core CPU (docs/benchmarks.md): a
        // shorter context and answer keep a first answer to a minute or two.
        top_k: 4,
        context_tokens: 600,
        max_tokens: Some(256),
    };
    (vec![model], vec![app])
}

/// In an app's `collections`: every collection there is when the question is asked.
pub use cairn_app::ALL_COLLECTIONS;

fn model_configs(
    raw: &RawConfig,
    env: &[(String, String)],
    bad: &impl Fn(&str, String, &str) -> ConfigError,
) -> Result<Vec<ModelConfig>, ConfigError> {
    use cairn_openai::{Auth, Endpoint};
    let secret = |var: &Option<String>, key: &str| -> Result<Option<SecretString>, ConfigError> {
        let Some(var) = var else { return Ok(None) };
        match env.iter().find(|(k, _)| k == var) {
            Some((_, value)) if !value.is_empty() => Ok(Some(SecretString::from(value.clone()))),
            _ => Err(bad(
                key,
                format!("environment variable {var} is not set"),
                "export it, or name another variable",
            )),
        }
    };
    let mut names: Vec<&str> = Vec::new();
    let mut models = Vec::new();
    for (index, model) in raw.models.iter().enumerate() {
        let key = |field: &str| format!("models[{index}].{field}");
        cairn_core::catalog::validate_name("model", &model.name)
            .map_err(|e| bad(&key("name"), e.to_string(), "rename it"))?;
        if names.contains(&model.name.as_str()) {
            return Err(bad(
                &key("name"),
                format!("model `{}` is defined twice", model.name),
                "give each model a unique name",
            ));
        }
        names.push(&model.name);
        let breaker = cairn_gateway::BreakerSettings {
            failure_threshold: model.breaker_failures.max(1),
            cool_down: Duration::from_secs(model.breaker_cool_down_secs),
        };
        let pricing = match (
            model.input_price_per_mtok,
            model.output_price_per_mtok,
            model
                .cached_input_price_per_mtok
                .or(model.reasoning_price_per_mtok),
        ) {
            (None, None, None) => None,
            (Some(input), Some(output), _) => {
                let cached = model.cached_input_price_per_mtok;
                let reasoning = model.reasoning_price_per_mtok;
                if [
                    input,
                    output,
                    cached.unwrap_or(input),
                    reasoning.unwrap_or(output),
                ]
                .iter()
                .any(|p| !p.is_finite() || *p < 0.0)
                {
                    return Err(bad(
                        &key("input_price_per_mtok"),
                        "a price is negative or not a number".into(),
                        "give prices in US dollars per million tokens, e.g. 2.5",
                    ));
                }
                Some(cairn_gateway::Pricing {
                    input_per_mtok: input,
                    cached_input_per_mtok: cached.unwrap_or(input),
                    output_per_mtok: output,
                    reasoning_per_mtok: reasoning,
                })
            }
            _ => {
                return Err(bad(
                    &key("output_price_per_mtok"),
                    "only some of the prices are set".into(),
                    "set both input_price_per_mtok and output_price_per_mtok (and optionally cached_input_price_per_mtok and reasoning_price_per_mtok)",
                ));
            }
        };
        if model.provider != ProviderKind::Local && model.path.is_some() {
            return Err(bad(
                &key("path"),
                "`path` is for local models".into(),
                "remove it, or set provider = \"local\"",
            ));
        }
        let upstream_model = model.model.clone().unwrap_or_else(|| model.name.clone());
        let key_secret = secret(&model.api_key_env, &key("api_key_env"))?;
        let endpoint = match model.provider {
            ProviderKind::Local => {
                let path = model.path.as_deref().ok_or_else(|| {
                    bad(
                        &key("path"),
                        "a local model needs `path`".into(),
                        "give a .gguf file, a safetensors directory or a Hugging Face model id",
                    )
                })?;
                let path = expand_home(path, env);
                let source = cairn_local::LocalModelSource::from_path_or_id(&path);
                if let cairn_local::LocalModelSource::Gguf(file) = &source
                    && !file.is_file()
                {
                    return Err(bad(
                        &key("path"),
                        format!("{} does not exist", file.display()),
                        "correct the path, or fetch the model first",
                    ));
                }
                models.push(ModelConfig {
                    name: model.name.clone(),
                    backend: ModelBackend::Local(source),
                    breaker,
                    pricing: Some(pricing.unwrap_or_default()),
                });
                continue;
            }
            ProviderKind::Openai | ProviderKind::OpenaiCompatible => {
                if model.api_version.is_some() || model.bearer_token_env.is_some() {
                    return Err(bad(
                        &key("api_version"),
                        "api_version and bearer_token_env are for Azure only".into(),
                        "remove them, or set provider = \"azure\"",
                    ));
                }
                let base_url = match (model.provider, &model.base_url) {
                    (_, Some(url)) => url.clone(),
                    (ProviderKind::Openai, None) => "https://api.openai.com/v1".to_owned(),
                    _ => {
                        return Err(bad(
                            &key("base_url"),
                            "an OpenAI-compatible model needs its server's base URL".into(),
                            "set base_url, e.g. \"http://vllm:8000/v1\"",
                        ));
                    }
                };
                let auth = key_secret.map_or(Auth::None, Auth::Bearer);
                Endpoint::OpenAi { base_url, auth }
            }
            ProviderKind::Azure => {
                let resource_url = model.base_url.clone().ok_or_else(|| {
                    bad(
                        &key("base_url"),
                        "an Azure model needs its resource endpoint".into(),
                        "set base_url = \"https://NAME.openai.azure.com\"",
                    )
                })?;
                let api_version = model.api_version.clone().ok_or_else(|| {
                    bad(
                        &key("api_version"),
                        "an Azure model needs an API version".into(),
                        "set api_version, e.g. \"2024-10-21\"",
                    )
                })?;
                let auth =
                    match (
                        key_secret,
                        secret(&model.bearer_token_env, &key("bearer_token_env"))?,
                    ) {
                        (Some(key), None) => Auth::AzureApiKey(key),
                        (None, Some(token)) => Auth::Bearer(token),
                        _ => return Err(bad(
                            &key("api_key_env"),
                            "an Azure model needs exactly one of api_key_env and bearer_token_env"
                                .into(),
                            "name the variable holding the key, or the Entra ID token",
                        )),
                    };
                Endpoint::Azure {
                    resource_url,
                    deployment: upstream_model.clone(),
                    api_version,
                    auth,
                }
            }
        };
        // Building the client checks the URL and the credential's characters now, not at the first call.
        cairn_openai::OpenAiChatModel::new(
            &endpoint,
            &upstream_model,
            cairn_openai::Timeouts::default(),
        )
        .map_err(|e| {
            bad(
                &key("base_url"),
                e.to_string(),
                "use an http:// or https:// URL and a plain-text key",
            )
        })?;
        let timeouts = cairn_openai::Timeouts {
            connect: Duration::from_secs(model.connect_timeout_secs.max(1)),
            read: Duration::from_secs(model.read_timeout_secs.max(1)),
        };
        models.push(ModelConfig {
            name: model.name.clone(),
            backend: ModelBackend::Remote {
                endpoint,
                upstream_model,
                timeouts,
            },
            breaker,
            pricing,
        });
    }
    for (index, route) in raw.routes.iter().enumerate() {
        let key = |field: &str| format!("routes[{index}].{field}");
        cairn_core::catalog::validate_name("route", &route.name)
            .map_err(|e| bad(&key("name"), e.to_string(), "rename it"))?;
        if names.contains(&route.name.as_str()) {
            return Err(bad(
                &key("name"),
                format!("`{}` is already the name of a model or route", route.name),
                "model and route names share one namespace: rename one",
            ));
        }
        names.push(&route.name);
        if route.targets.is_empty() {
            return Err(bad(
                &key("targets"),
                "a route needs at least one target".into(),
                "list model names, best first",
            ));
        }
        // Targets and the shadow name models; a name that is none gets the list of models.
        let model_named = |field: &str, name: &str| {
            if raw.models.iter().any(|m| m.name == name) {
                return Ok(());
            }
            let known: Vec<&str> = raw.models.iter().map(|m| m.name.as_str()).collect();
            Err(bad(
                &key(field),
                format!("no model is named `{name}`"),
                &format!(
                    "use one of: {}",
                    if known.is_empty() {
                        "(no models defined)".to_owned()
                    } else {
                        known.join(", ")
                    }
                ),
            ))
        };
        for target in &route.targets {
            model_named("targets", target)?;
        }
        if let Some(shadow) = &route.shadow {
            model_named("shadow", shadow)?;
        }
        if route.attempts_per_target == 0 {
            return Err(bad(
                &key("attempts_per_target"),
                "0 attempts would never call the model".into(),
                "use 1 for no retries",
            ));
        }
        let weighted = route.strategy == RouteStrategy::Weighted;
        if weighted
            && (route.weights.len() != route.targets.len() || route.weights.iter().all(|w| *w == 0))
        {
            return Err(bad(
                &key("weights"),
                format!(
                    "{} weights for {} targets",
                    route.weights.len(),
                    route.targets.len()
                ),
                "give one weight per target, not all 0, e.g. weights = [95, 5]",
            ));
        }
        if !weighted && !route.weights.is_empty() {
            return Err(bad(
                &key("weights"),
                "weights are only read by the weighted strategy".into(),
                "set strategy = \"weighted\", or remove weights",
            ));
        }
        if !(0.0..=1.0).contains(&route.shadow_sample) {
            return Err(bad(
                &key("shadow_sample"),
                format!("{} is not a fraction", route.shadow_sample),
                "use a number from 0 to 1, e.g. 0.1 for one request in ten",
            ));
        }
    }
    Ok(models)
}

/// Masks what looks like a password in a URL that may not parse.
fn redact_url_lossy(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}://{user}:***{}", &url[..scheme_end], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Where a config file is looked for when none is named: `./cairn.toml`, if it exists.
pub fn default_file(dir: &Path) -> Option<PathBuf> {
    let candidate = dir.join("cairn.toml");
    candidate.is_file().then_some(candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(
        file: Option<&str>,
        env: &[(&str, &str)],
        flags: &[(&str, &str, &str)],
    ) -> (Sources, Option<tempfile::TempDir>) {
        let dir = file.map(|_| tempfile::tempdir().expect("temp dir"));
        let path = dir.as_ref().map(|d| d.path().join("cairn.toml"));
        if let (Some(path), Some(text)) = (&path, file) {
            std::fs::write(path, text).expect("write config");
        }
        let sources = Sources {
            file: path,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            flags: flags
                .iter()
                .map(|(f, k, v)| (f.to_string(), k.to_string(), v.to_string()))
                .collect(),
        };
        (sources, dir)
    }

    fn load_ok(file: Option<&str>, env: &[(&str, &str)], flags: &[(&str, &str, &str)]) -> Config {
        let (sources, _dir) = sources(file, env, flags);
        load(&sources).expect("config loads")
    }

    /// Loads and expects an error whose message contains every fragment.
    fn check_error(
        file: Option<&str>,
        env: &[(&str, &str)],
        flags: &[(&str, &str, &str)],
        fragments: &[&str],
    ) {
        let (sources, _dir) = sources(file, env, flags);
        let message = load(&sources).expect_err("config is refused").to_string();
        for fragment in fragments {
            assert!(
                message.contains(fragment),
                "expected `{fragment}` in:\n{message}"
            );
        }
    }

    #[test]
    fn defaults_are_the_embedded_mode() {
        let config = load_ok(None, &[], &[]);
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.data_dir, PathBuf::from(".cairn"));
        assert!(
            matches!(&config.database, DatabaseConfig::Sqlite { path, .. } if path == Path::new(".cairn/catalog.db"))
        );
        assert_eq!(config.log.format, LogFormat::Text);
    }

    #[test]
    fn layers_override_in_order() {
        let file = "data_dir = \"/srv/cairn\"\n[server]\nlisten = \"0.0.0.0:9000\"\nmax_body_bytes = 1000\n";
        let config = load_ok(Some(file), &[], &[]);
        assert_eq!((config.listen.port(), config.max_body_bytes), (9000, 1000));
        assert_eq!(
            config.database.describe(),
            "SQLite at /srv/cairn/catalog.db",
            "the catalog follows data_dir"
        );

        let env = [
            ("CAIRN__SERVER__LISTEN", "127.0.0.1:9100"),
            ("CAIRN__LOG__FORMAT", "json"),
            ("UNRELATED", "x"),
        ];
        let config = load_ok(Some(file), &env, &[]);
        assert_eq!(
            (
                config.listen.port(),
                config.max_body_bytes,
                config.log.format
            ),
            (9100, 1000, LogFormat::Json)
        );
        assert_eq!(
            config.origins.of("server.listen"),
            Origin::Env("CAIRN__SERVER__LISTEN".into())
        );

        let flags = [("--listen", "server.listen", "\"127.0.0.1:9200\"")];
        let config = load_ok(Some(file), &env, &flags);
        assert_eq!(config.listen.port(), 9200);
        assert_eq!(
            config.origins.of("server.listen"),
            Origin::Flag("--listen".into())
        );
        assert!(matches!(
            config.origins.of("server.max_body_bytes"),
            Origin::File { line: Some(4), .. }
        ));
    }

    #[test]
    fn postgres_is_chosen_by_url_and_its_password_never_printed() {
        let config = load_ok(
            None,
            &[(
                "CAIRN__DATABASE__URL",
                "postgres://cairn:s3cret@db:5432/cairn",
            )],
            &[],
        );
        assert_eq!(config.database.backend(), "postgres");
        let shown = format!("{} {:?}", config.database.describe(), config.database);
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(
            shown.contains("PostgreSQL at postgres://cairn:***@db:5432/cairn"),
            "{shown}"
        );
    }

    #[test]
    fn typos_in_the_file_name_file_line_and_key() {
        check_error(
            Some("[server]\nlisten = \"127.0.0.1:8080\"\nlisten_adress = \"x\"\n"),
            &[],
            &[],
            &[
                "cairn.toml",
                "line 3",
                "unknown field `listen_adress`",
                "expected one of",
                "cairn.example.toml",
            ],
        );
        check_error(
            Some("[sever]\nlisten = \"x\"\n"),
            &[],
            &[],
            &["line 1", "unknown field `sever`"],
        );
    }

    #[test]
    fn wrong_types_name_file_line_and_key() {
        check_error(
            Some("[server]\nmax_body_bytes = \"ten megabytes\"\n"),
            &[],
            &[],
            &["cairn.toml", "line 2", "max_body_bytes", "invalid type"],
        );
        check_error(
            Some("[log]\nformat = \"xml\"\n"),
            &[],
            &[],
            &[
                "line 2",
                "unknown variant `xml`",
                "expected `text` or `json`",
            ],
        );
        check_error(Some("[server\n"), &[], &[], &["cairn.toml", "line 1"]);
    }

    #[test]
    fn bad_values_name_their_origin_and_the_fix() {
        check_error(
            Some("[database]\nurl = \"mysql://root@db/cairn\"\n"),
            &[],
            &[],
            &[
                "cairn.toml line 2",
                "`database.url`",
                "`mysql` scheme is not supported",
                "postgres://USER:PASSWORD@HOST:5432/DATABASE",
            ],
        );
        check_error(
            None,
            &[("CAIRN__DATABASE__URL", "postgres://user:pw@/db")],
            &[],
            &[
                "environment variable CAIRN__DATABASE__URL",
                "is not a valid URL (empty host)",
            ],
        );
        check_error(
            None,
            &[("CAIRN__DATABASE__URL", "sqlite::memory:")],
            &[],
            &["needs a file path"],
        );
        check_error(
            None,
            &[],
            &[("--listen", "server.listen", "\"localhost\"")],
            &["flag --listen", "`server.listen`", "127.0.0.1:8080"],
        );
        check_error(
            Some("[log]\nlevel = \"info,[\"\n"),
            &[],
            &[],
            &["`log.level`", "not a log filter"],
        );
    }

    #[test]
    fn environment_typos_name_the_variable() {
        check_error(
            None,
            &[("CAIRN__SERVER__LISTN", "127.0.0.1:1")],
            &[],
            &[
                "environment variable CAIRN__SERVER__LISTN",
                "unknown field `listn`",
            ],
        );
        check_error(
            None,
            &[("CAIRN__SERVER__MAX_BODY_BYTES", "lots")],
            &[],
            &["CAIRN__SERVER__MAX_BODY_BYTES", "invalid type"],
        );
        check_error(
            None,
            &[("CAIRN__SERVER", "x")],
            &[],
            &["CAIRN__SERVER", "invalid type"],
        );
    }

    #[test]
    fn a_missing_file_is_named() {
        let sources = Sources {
            file: Some(PathBuf::from("/nonexistent/cairn.toml")),
            ..Default::default()
        };
        let message = load(&sources).expect_err("refused").to_string();
        assert!(
            message.contains("cannot read config file /nonexistent/cairn.toml"),
            "{message}"
        );
    }

    #[test]
    fn the_example_config_is_valid_and_complete() {
        let example = include_str!("../../../cairn.example.toml");
        let raw: RawConfig =
            toml::from_str(example).expect("cairn.example.toml parses with every key known");
        let documented: Vec<String> = dotted_keys(&toml::from_str(example).expect("table"));
        let all: Vec<String> =
            dotted_keys(&toml::Table::try_from(RawConfig::default()).expect("defaults serialize"));
        for key in all
            .iter()
            .filter(|key| !["models", "routes", "apps", "limits"].contains(&key.as_str()))
        {
            assert!(
                documented.contains(key),
                "cairn.example.toml does not document `{key}`"
            );
        }
        assert_eq!(
            raw.server.listen,
            RawConfig::default().server.listen,
            "the example shows the defaults"
        );

        // The commented models-and-routes block is valid once uncommented, and shows every field.
        let block: String = example
            .lines()
            .skip_while(|line| !line.starts_with("# --- example: models and routes"))
            .skip(1)
            .take_while(|line| !line.starts_with("# --- end"))
            .map(|line| {
                format!(
                    "{}\n",
                    line.strip_prefix("# ")
                        .or_else(|| line.strip_prefix('#'))
                        .unwrap_or(line)
                )
            })
            .collect();
        let raw: RawConfig = toml::from_str(&block).expect("the example block parses");
        // `~` in a local model's path is the home directory: give it one with the model file in place.
        let home = tempfile::tempdir().expect("temp dir");
        let model_dir = home.path().join(".cache/cairn-models");
        std::fs::create_dir_all(&model_dir).expect("mkdir");
        std::fs::write(model_dir.join("smollm2-135m-instruct-q4_1.gguf"), b"GGUF").expect("write");
        let env = vec![
            ("AZURE_OPENAI_API_KEY".to_owned(), "k".to_owned()),
            ("HOME".to_owned(), home.path().display().to_string()),
        ];
        let config = validate(raw, Origins::default(), &env).expect("the example block validates");
        assert_eq!(
            (
                config.models.len(),
                config.routes.len(),
                config.apps.len(),
                config.limits.len()
            ),
            (3, 1, 1, 1)
        );
        assert!(
            matches!(&config.models[2].backend, ModelBackend::Local(cairn_local::LocalModelSource::Gguf(path)) if path.starts_with(home.path()))
        );
        for field in [
            "name",
            "provider",
            "base_url",
            "model",
            "api_version",
            "api_key_env",
            "bearer_token_env",
            "connect_timeout_secs",
            "read_timeout_secs",
            "breaker_failures",
            "breaker_cool_down_secs",
            "targets",
            "attempts_per_target",
            "deadline_secs",
            "collections",
            "prompt",
            "top_k",
            "context_tokens",
            "reasoning_price_per_mtok",
            "strategy",
            "weights",
            "shadow",
            "shadow_sample",
            "requests_per_minute",
            "tokens_per_minute",
            "cost_per_day_usd",
        ] {
            assert!(
                block.contains(field),
                "the example block does not show `{field}`"
            );
        }
    }

    #[test]
    fn models_and_routes_are_checked() {
        let azure = "[[models]]\nname = \"az\"\nprovider = \"azure\"\nbase_url = \"https://x.openai.azure.com\"\napi_version = \"2024-10-21\"\napi_key_env = \"AZ_KEY\"\n";
        check_error(
            Some(azure),
            &[],
            &[],
            &[
                "cairn.toml line 1",
                "`models[0].api_key_env`",
                "environment variable AZ_KEY is not set",
            ],
        );
        let config = load_ok(Some(azure), &[("AZ_KEY", "secret")], &[]);
        assert!(
            !format!("{config:?}").contains("secret"),
            "keys never print"
        );
        check_error(
            Some("[[models]]\nname = \"m\"\nprovider = \"openai-compatible\"\n"),
            &[],
            &[],
            &["needs its server's base URL"],
        );
        check_error(
            Some("[[models]]\nname = \"m\"\nprovider = \"anthropic\"\n"),
            &[],
            &[],
            &["unknown variant `anthropic`", "line 3"],
        );
        let local = "[[models]]\nname = \"m\"\nprovider = \"openai-compatible\"\nbase_url = \"http://127.0.0.1:8000/v1\"\n";
        check_error(
            Some(&format!(
                "{local}[[routes]]\nname = \"r\"\ntargets = [\"m\", \"gpt\"]\n"
            )),
            &[],
            &[],
            &[
                "`routes[0].targets`",
                "no model is named `gpt`",
                "use one of: m",
            ],
        );
        check_error(
            Some(&format!(
                "{local}[[routes]]\nname = \"m\"\ntargets = [\"m\"]\n"
            )),
            &[],
            &[],
            &["already the name of a model"],
        );
        let config = load_ok(
            Some(&format!(
                "{local}[[routes]]\nname = \"r\"\ntargets = [\"m\"]\n"
            )),
            &[],
            &[],
        );
        assert!(
            matches!(&config.models[0].backend, ModelBackend::Remote { upstream_model, .. } if upstream_model == "m")
        );
        assert_eq!(config.routes[0].attempts_per_target, 2);
        assert_eq!(config.routes[0].strategy, RouteStrategy::Ordered);
        for (route, expected) in [
            (
                "strategy = \"weighted\"\nweights = [1]\n",
                &["`routes[0].weights`", "1 weights for 2 targets"][..],
            ),
            (
                "weights = [1, 1]\n",
                &["only read by the weighted strategy"][..],
            ),
            (
                "strategy = \"fastest\"\n",
                &["unknown variant `fastest`"][..],
            ),
            (
                "shadow = \"gpt\"\n",
                &["`routes[0].shadow`", "no model is named `gpt`"][..],
            ),
            (
                "shadow = \"m\"\nshadow_sample = 10.0\n",
                &["`routes[0].shadow_sample`", "from 0 to 1"][..],
            ),
        ] {
            check_error(
                Some(&format!(
                    "{local}[[models]]\nname = \"n\"\nprovider = \"openai-compatible\"\nbase_url = \"http://127.0.0.1:8001/v1\"\n[[routes]]\nname = \"r\"\ntargets = [\"m\", \"n\"]\n{route}"
                )),
                &[],
                &[],
                expected,
            );
        }
        check_error(
            Some("[[limits]]\nkey = \"*\"\n"),
            &[],
            &[],
            &["`limits[0].requests_per_minute`", "sets no limit"],
        );
        check_error(
            Some("[[limits]]\ncost_per_day_usd = -1.0\n"),
            &[],
            &[],
            &["`limits[0].cost_per_day_usd`", "-1 is not a budget"],
        );
        let config = load_ok(
            Some("[[limits]]\nkey = \"*\"\nroute = \"gpt\"\nrequests_per_minute = 5\n"),
            &[],
            &[],
        );
        assert_eq!(
            config.limits,
            [cairn_gateway::LimitRule {
                route: cairn_gateway::Scope::Named("gpt".into()),
                key: cairn_gateway::Scope::Each,
                requests_per_minute: Some(5),
                tokens_per_minute: None,
                cost_per_day_usd: None,
            }]
        );

        check_error(
            Some("[[models]]\nname = \"l\"\nprovider = \"local\"\n"),
            &[],
            &[],
            &["`models[0].path`", "a local model needs `path`"],
        );
        check_error(
            Some("[[models]]\nname = \"l\"\nprovider = \"local\"\npath = \"/nope/model.gguf\"\n"),
            &[],
            &[],
            &["/nope/model.gguf does not exist"],
        );
        check_error(
            Some(&format!("{local}path = \"x.gguf\"\n")),
            &[],
            &[],
            &["`path` is for local models"],
        );
    }
}
