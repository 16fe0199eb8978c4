//! Configuration: defaults < `cairn.toml` < environment (`CAIRN__SECTION__KEY`) < command-line flags.
//!
//! Loading has two phases, as in any config worth trusting. Parsing merges the layers into
//! [`RawConfig`] with unknown keys rejected; every error names where the bad value came from (file and
//! line, environment variable, or flag). Validation then turns it into [`Config`], checking what types
//! cannot (addresses, URLs) and reading the eval suites that gate prompt labels. Neither phase writes
//! anything: a bad config never leaves anything behind. This module does not read the process environment or arguments
//! itself; the CLI passes them in.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

mod agents;
mod auth;
mod database;
mod evals;
mod gateway;
mod guards;
mod layers;
mod models;
mod prompts;
mod rag;
mod retention;
#[cfg(test)]
mod tests;

pub use auth::*;
pub use database::*;
pub use evals::*;
pub use gateway::*;
pub use layers::*;
pub use models::*;
pub use prompts::*;
pub use rag::*;
pub use retention::*;

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
    /// Tool-calling agents, each callable as `"model": "agent:NAME"`.
    pub agents: Vec<AgentSection>,
    /// External MCP servers whose tools agents may call.
    pub mcp_servers: Vec<cairn_agent::McpServerSection>,
    pub mcp: McpSection,
    pub auth: AuthSection,
    pub cache: CacheSection,
    /// Rate limits and budgets on `/v1/chat/completions`.
    pub limits: Vec<LimitSection>,
    /// Guardrails, run for the apps and routes that name them in `guards = [...]`.
    pub guards: Vec<cairn_guard::GuardSection>,
    /// Online evaluation of production answers.
    pub evals: EvalsSection,
    /// How long records are kept.
    pub retention: RetentionSection,
}

use cairn_app::apps::default_app_prompt;
pub use cairn_app::{AgentSection, AppSection};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSection {
    pub listen: String,
    /// `Host` names (or `host:port`) accepted besides loopback names, against DNS rebinding.
    pub allowed_hosts: Vec<String>,
    /// Web origins whose pages may call the API from a browser with a key or token (CORS).
    pub cors_origins: Vec<String>,
    pub max_body_bytes: u64,
    pub shutdown_grace_secs: u64,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            listen: "127.0.0.1:8080".into(),
            allowed_hosts: Vec::new(),
            cors_origins: Vec::new(),
            max_body_bytes: 10 * 1024 * 1024,
            shutdown_grace_secs: 30,
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
            agents: Vec::new(),
            mcp_servers: Vec::new(),
            mcp: McpSection::default(),
            auth: AuthSection::default(),
            cache: CacheSection::default(),
            limits: Vec::new(),
            guards: Vec::new(),
            evals: EvalsSection::default(),
            retention: RetentionSection::default(),
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
    /// Eval-gated labels, each with its suite's name read from the suite file.
    pub prompt_gates: Vec<PromptGate>,
    pub models: Vec<ModelConfig>,
    pub routes: Vec<RouteSection>,
    pub embedding: EmbeddingConfig,
    pub index: IndexConfig,
    pub ingest: IngestSection,
    /// The cross-encoder's directory or hub id, with `~` expanded; `None`: no reranking.
    pub rerank: Option<(String, usize)>,
    pub apps: Vec<AppSection>,
    pub agents: Vec<AgentSection>,
    pub mcp_servers: Vec<cairn_agent::McpServerSection>,
    /// The environment variables `[[mcp_servers]]` read bearer tokens from, read once.
    pub mcp_tokens: Vec<(String, SecretString)>,
    pub mcp: McpSection,
    /// OIDC sign-in for the web UI; `None`: no sign-in.
    pub auth: Option<OidcSettings>,
    /// Who may call: the authentication mode, accepted hosts, users' roles.
    pub access: AccessPolicy,
    pub cache: CacheSection,
    pub limits: Vec<cairn_gateway::LimitRule>,
    /// The guardrails, each checked (see `cairn_guard::GuardSection::build`).
    pub guards: Vec<cairn_guard::GuardSection>,
    /// Online evaluation, checked against the apps and models.
    pub evals: EvalsSection,
    /// How long records are kept, and how often the server prunes.
    pub retention: RetentionSection,
    /// Where each key's value came from, for error messages at run time (a refused connection, say).
    pub origins: Origins,
}

/// Reads and merges every layer, then validates.
pub fn load(sources: &Sources) -> Result<Config, ConfigError> {
    let (raw, origins) = parse(sources)?;
    validate(raw, origins, &sources.env)
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

    let (listen, max_body_bytes) = server_settings(&raw.server, &bad)?;
    check_data_dir_and_log(&raw, &bad)?;
    let prompt_gates = prompts::check_prompts(&raw.prompts, &bad)?;
    let database = database_config(&raw, &bad)?;
    let mut models = model_configs(&raw, env, &bad)?;
    let mut apps = raw.apps.clone();
    let mut guards = raw.guards.clone();
    if raw.models.is_empty() && raw.routes.is_empty() && raw.apps.is_empty() {
        (models, apps) = embedded_chat(env);
        if guards.is_empty() {
            guards = guards::embedded_guards();
        }
    }
    guards::check_guards(&guards, &apps, &raw.agents, &raw.routes, &bad)?;
    let embedding = embedding_config(&raw, &models, env, &bad)?;
    let index = index_config(&raw, &database, env, &bad)?;
    check_apps(&raw, &bad)?;
    check_ingest(&raw.ingest, &bad)?;
    let app_names: Vec<String> = apps.iter().map(|a| a.name.clone()).collect();
    let callable: Vec<String> = models
        .iter()
        .map(|m| m.name.clone())
        .chain(raw.routes.iter().map(|r| r.name.clone()))
        .collect();
    evals::check_evals(&raw.evals, &app_names, &callable, &bad)?;
    agents::check_agents(&raw, &callable, &bad)?;
    let mcp_tokens = agents::mcp_tokens(&raw.mcp_servers, env, &bad)?;
    Ok(Config {
        data_dir: raw.data_dir,
        listen,
        max_body_bytes,
        shutdown_grace: Duration::from_secs(raw.server.shutdown_grace_secs),
        database,
        log: raw.log,
        prompts: raw.prompts,
        prompt_gates,
        models,
        routes: raw.routes,
        embedding,
        index,
        ingest: raw.ingest,
        apps,
        agents: raw.agents.clone(),
        mcp_servers: raw.mcp_servers.clone(),
        mcp_tokens,
        mcp: raw.mcp.clone(),
        auth: auth_config(&raw.auth, env, &bad)?,
        access: access_policy(&raw.auth, &raw.server, &bad)?,
        cache: raw.cache.clone(),
        limits: limit_rules(&raw.limits, &bad)?,
        guards,
        evals: raw.evals.clone(),
        retention: raw.retention.clone(),
        rerank: (!raw.rerank.model.is_empty()).then(|| {
            (
                expand_home(&raw.rerank.model, env),
                raw.rerank.max_batch.max(1) as usize,
            )
        }),
        origins,
    })
}

/// `[server]`: the address to listen on, and the largest request body this machine can hold.
fn server_settings(
    server: &ServerSection,
    bad: &impl Fn(&str, String, &str) -> ConfigError,
) -> Result<(SocketAddr, usize), ConfigError> {
    let listen: SocketAddr = server.listen.parse().map_err(|_| {
        bad(
            "server.listen",
            format!("`{}` is not an address and port", server.listen),
            "write it as IP:PORT, e.g. 127.0.0.1:8080 (this machine only) or 0.0.0.0:8080 (all interfaces)",
        )
    })?;
    if server.max_body_bytes == 0 {
        return Err(bad(
            "server.max_body_bytes",
            "0 would refuse every request body".into(),
            "use a size in bytes, e.g. 10485760 for 10 MiB",
        ));
    }
    let max_body_bytes = usize::try_from(server.max_body_bytes).map_err(|_| {
        bad(
            "server.max_body_bytes",
            "too large for this machine".into(),
            "use at most 4294967295",
        )
    })?;
    Ok((listen, max_body_bytes))
}

/// `data_dir`, the catalog's pool size and the log filter.
fn check_data_dir_and_log(
    raw: &RawConfig,
    bad: &impl Fn(&str, String, &str) -> ConfigError,
) -> Result<(), ConfigError> {
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
    Ok(())
}

/// `[ingest]`: chunks long enough to mean something, overlapping by less than half.
fn check_ingest(
    ingest: &IngestSection,
    bad: &impl Fn(&str, String, &str) -> ConfigError,
) -> Result<(), ConfigError> {
    if ingest.chunk_tokens < 16 || ingest.chunk_overlap >= ingest.chunk_tokens / 2 {
        return Err(bad(
            "ingest.chunk_tokens",
            format!(
                "chunks of {} tokens with {} overlapping",
                ingest.chunk_tokens, ingest.chunk_overlap
            ),
            "use at least 16 tokens per chunk, and an overlap under half of that",
        ));
    }
    Ok(())
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
        check_named(
            ("app", &key),
            &app.name,
            &app.route,
            &mut names,
            &callable,
            bad,
        )?;
        if app.collections.is_empty() {
            return Err(bad(
                &key("collections"),
                "an app needs at least one collection".into(),
                "list the collections it answers from, e.g. collections = [\"handbook\"]",
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

/// An app's or agent's name (valid, not used twice) and route (a model or route there is).
/// `what` is `app` or `agent`; `key` makes the config key of a field.
fn check_named<'a>(
    (what, key): (&str, &dyn Fn(&str) -> String),
    name: &'a str,
    route: &str,
    names: &mut Vec<&'a str>,
    callable: &[&str],
    bad: &impl Fn(&str, String, &str) -> ConfigError,
) -> Result<(), ConfigError> {
    cairn_core::catalog::validate_name(what, name)
        .map_err(|e| bad(&key("name"), e.to_string(), "rename it"))?;
    if names.contains(&name) {
        return Err(bad(
            &key("name"),
            format!("{what} `{name}` is defined twice"),
            &format!("give each {what} a unique name"),
        ));
    }
    names.push(name);
    if !callable.contains(&route) {
        return Err(bad(
            &key("route"),
            format!("no model or route is named `{route}`"),
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

/// In an app's `collections`: every collection there is when the question is asked.
pub use cairn_app::ALL_COLLECTIONS;

/// Where a config file is looked for when none is named: `./cairn.toml`, if it exists.
pub fn default_file(dir: &Path) -> Option<PathBuf> {
    let candidate = dir.join("cairn.toml");
    candidate.is_file().then_some(candidate)
}
