//! Opening what the config names: the catalog (SQLite under the data directory, or PostgreSQL),
//! migrated unless the operator migrates separately, and the prompt registry over it.

use std::sync::Arc;

use cairn_core::{Catalog, CatalogError};
use cairn_postgres::{PostgresCatalog, PostgresOptions};
use cairn_sqlite::SqliteCatalog;
use secrecy::ExposeSecret;

use crate::config::{Config, DatabaseConfig};

/// Why Cairn could not start from its config, worded for the operator.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the catalog ({what}; database.url from {origin}): {source}")]
    Catalog {
        what: String,
        origin: String,
        source: CatalogError,
    },
    #[error("cannot create the data directory {path}: {reason}")]
    DataDir { path: String, reason: String },
    #[error("cannot set up the configured models: {0}")]
    Models(String),
    #[error("cannot set up the configured guardrails: {0}")]
    Guards(#[from] cairn_guard::PolicyError),
    #[error(
        "agent `{agent}` names prompt `{prompt}`, which cannot be used: {reason}; publish it (cairn prompt push FILE) or name another in [[agents]] prompt"
    )]
    AgentPrompt {
        agent: String,
        prompt: String,
        reason: String,
    },
}

/// The opened catalog, with the handle the server needs to close it.
#[derive(Debug, Clone)]
pub enum OpenCatalog {
    Sqlite(SqliteCatalog),
    Postgres(PostgresCatalog),
}

impl OpenCatalog {
    pub fn as_dyn(&self) -> Arc<dyn Catalog> {
        match self {
            OpenCatalog::Sqlite(catalog) => Arc::new(catalog.clone()),
            OpenCatalog::Postgres(catalog) => Arc::new(catalog.clone()),
        }
    }

    pub async fn migrate(&self) -> Result<(), CatalogError> {
        match self {
            OpenCatalog::Sqlite(catalog) => catalog.migrate().await,
            OpenCatalog::Postgres(catalog) => catalog.migrate().await,
        }
    }

    pub async fn close(&self) {
        match self {
            OpenCatalog::Sqlite(catalog) => catalog.close().await,
            OpenCatalog::Postgres(catalog) => catalog.close().await,
        }
    }
}

/// Opens the configured catalog. For SQLite this creates the data directory; nothing is written
/// before the config has been validated.
pub async fn open_catalog(config: &Config) -> Result<OpenCatalog, StartError> {
    let catalog_error = |source| StartError::Catalog {
        what: config.database.describe(),
        origin: config.origins.of("database.url").to_string(),
        source,
    };
    match &config.database {
        DatabaseConfig::Sqlite { path, .. } => {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|e| StartError::DataDir {
                    path: parent.display().to_string(),
                    reason: e.to_string(),
                })?;
            }
            Ok(OpenCatalog::Sqlite(
                SqliteCatalog::open(path).await.map_err(catalog_error)?,
            ))
        }
        DatabaseConfig::Postgres {
            url,
            max_connections,
            connect_timeout,
            ..
        } => {
            let options = PostgresOptions {
                max_connections: *max_connections,
                acquire_timeout: *connect_timeout,
            };
            let catalog = PostgresCatalog::connect(url.expose_secret(), &options).await.map_err(|e| {
                catalog_error(match e {
                    CatalogError::Unavailable(reason) => CatalogError::Unavailable(format!(
                        "{reason}; check that PostgreSQL is running and that the URL's host, port, user and database are right"
                    )),
                    other => other,
                })
            })?;
            Ok(OpenCatalog::Postgres(catalog))
        }
    }
}

/// Opens and migrates the catalog: what `cairn migrate` does, and `cairn serve` before it listens.
pub async fn open_and_migrate(config: &Config) -> Result<OpenCatalog, StartError> {
    let catalog = open_catalog(config).await?;
    catalog
        .migrate()
        .await
        .map_err(|source| StartError::Catalog {
            what: config.database.describe(),
            origin: config.origins.of("database.url").to_string(),
            source,
        })?;
    Ok(catalog)
}

/// Opens the catalog for serving or for a CLI command: migrated first, unless the operator runs
/// migrations as a separate step (`database.migrate_on_start = false`, PostgreSQL only).
pub async fn open_for_use(config: &Config) -> Result<OpenCatalog, StartError> {
    match &config.database {
        DatabaseConfig::Postgres {
            migrate_on_start: false,
            ..
        } => open_catalog(config).await,
        _ => open_and_migrate(config).await,
    }
}

/// The prompt registry over `catalog`, with the configured limits and label cache.
pub fn prompt_registry(
    config: &Config,
    catalog: Arc<dyn Catalog>,
) -> Arc<cairn_prompts::PromptRegistry> {
    let limits = cairn_prompts::RenderLimits {
        fuel: config.prompts.render_fuel,
        max_output_bytes: usize::try_from(config.prompts.max_render_bytes).unwrap_or(usize::MAX),
        ..Default::default()
    };
    cairn_prompts::PromptRegistry::with_gates(
        catalog,
        limits,
        std::time::Duration::from_secs(config.prompts.label_cache_ttl_secs),
        config.prompt_gates.iter().map(|g| g.gate.clone()).collect(),
    )
}
