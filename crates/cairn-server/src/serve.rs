//! Startup and shutdown: open the catalog the config names, migrate it, bind, serve until a signal,
//! then let in-flight requests finish within the grace period.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use cairn_core::{Catalog, CatalogError};
use cairn_postgres::{PostgresCatalog, PostgresOptions};
use cairn_sqlite::SqliteCatalog;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;

use crate::app::{AppState, router};
use crate::config::{Config, DatabaseConfig};

/// A startup or serving failure, worded for the operator.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "cannot listen on {addr} (server.listen, from {origin}): {reason}; stop whatever uses the port or choose another"
    )]
    Bind {
        addr: SocketAddr,
        origin: String,
        reason: String,
    },
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
    #[error("cannot set up sign-in: {0}")]
    Auth(String),
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
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
pub async fn open_catalog(config: &Config) -> Result<OpenCatalog, ServeError> {
    let catalog_error = |source| ServeError::Catalog {
        what: config.database.describe(),
        origin: config.origins.of("database.url").to_string(),
        source,
    };
    match &config.database {
        DatabaseConfig::Sqlite { path, .. } => {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|e| ServeError::DataDir {
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
pub async fn open_and_migrate(config: &Config) -> Result<OpenCatalog, ServeError> {
    let catalog = open_catalog(config).await?;
    catalog
        .migrate()
        .await
        .map_err(|source| ServeError::Catalog {
            what: config.database.describe(),
            origin: config.origins.of("database.url").to_string(),
            source,
        })?;
    Ok(catalog)
}

/// Opens the catalog for serving or for a CLI command: migrated first, unless the operator runs
/// migrations as a separate step (`database.migrate_on_start = false`, PostgreSQL only).
pub async fn open_for_use(config: &Config) -> Result<OpenCatalog, ServeError> {
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
    cairn_prompts::PromptRegistry::new(
        catalog,
        limits,
        std::time::Duration::from_secs(config.prompts.label_cache_ttl_secs),
    )
}

/// Everything the handlers use, built from config over an open catalog: the prompt registry (with
/// the built-in prompts published), the models and routes, and the RAG pipeline (or why it is
/// unavailable). Shared by `cairn serve` and `cairn mcp`.
pub async fn build_state(config: &Config, catalog: &OpenCatalog) -> Result<AppState, ServeError> {
    let metrics = crate::metrics::handle();
    crate::metrics::record_build_info(config.database.backend());
    let prompts = prompt_registry(config, catalog.as_dyn());
    match prompts.seed_builtin().await {
        Ok(published) if !published.is_empty() => {
            tracing::info!(prompts = ?published, "published the built-in prompts, labelled production");
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "could not publish the built-in prompts"),
    }
    tokio::spawn(prompts.clone().follow_label_moves());
    let shadows = crate::gateway::CatalogShadows::new(catalog.as_dyn());
    let models =
        crate::models::ModelDirectory::from_config(&config.models, &config.routes, Some(shadows))
            .await
            .map_err(ServeError::Models)?;
    let rag = match crate::rag::build(config, catalog).await {
        Ok(rag) => {
            tracing::info!(
                embedding = rag.embedder.model_id(),
                index = rag.index.backend(),
                "retrieval is ready"
            );
            Ok(Arc::new(rag))
        }
        Err(e) => {
            tracing::warn!(error = %e, "ingest and search are unavailable");
            Err(e)
        }
    };
    let rag = Arc::new(rag);
    let pipeline = cairn_app::Pipeline::new(cairn_app::PipelineParts {
        catalog: catalog.as_dyn(),
        prompts: prompts.clone(),
        models: Arc::new(models),
        rag: rag.clone(),
        apps: Arc::new(config.apps.clone()),
        cache: (config.cache.ttl_secs > 0).then(|| {
            Arc::new(cairn_gateway::ResponseCache::new(
                std::time::Duration::from_secs(config.cache.ttl_secs),
                config.cache.max_entries,
            ))
        }),
        limiter: (!config.limits.is_empty()).then(|| {
            Arc::new(cairn_gateway::Limiter::new(
                config.limits.clone(),
                catalog.as_dyn(),
            ))
        }),
        guards: cairn_app::Guards::default(),
    });
    let state = AppState {
        catalog: catalog.as_dyn(),
        prompts,
        pipeline,
        metrics,
        max_body_bytes: config.max_body_bytes,
        rag,
        max_upload_bytes: usize::try_from(config.ingest.max_upload_bytes).unwrap_or(usize::MAX),
        mcp: Arc::new(config.mcp.clone()),
        auth: match &config.auth {
            Some(settings) => Some(Arc::new(
                crate::auth::Oidc::discover(settings.clone())
                    .await
                    .map_err(ServeError::Auth)?,
            )),
            None => None,
        },
        keys: Arc::default(),
    };
    Ok(state)
}

/// Runs the server until `shutdown` resolves, then drains: in-flight requests get `shutdown_grace`
/// to finish. `on_listening` receives the bound address (port 0 in tests picks a free one).
pub async fn serve(
    config: &Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_listening: impl FnOnce(SocketAddr),
) -> Result<(), ServeError> {
    // Bind before opening the catalog: a port conflict should not create a data directory.
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| ServeError::Bind {
            addr: config.listen,
            origin: config.origins.of("server.listen").to_string(),
            reason: e.to_string(),
        })?;
    let catalog = open_for_use(config).await?;
    let state = build_state(config, &catalog).await?;
    let app = router(state);

    let local_addr = listener.local_addr()?;
    tracing::info!(address = %local_addr, catalog = %config.database.describe(), "cairn is listening");
    on_listening(local_addr);

    let draining = Arc::new(tokio::sync::Notify::new());
    let drain_signal = draining.clone();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown.await;
        tracing::info!("shutting down: no new connections; waiting for in-flight requests");
        drain_signal.notify_waiters();
    });
    let grace = config.shutdown_grace;
    tokio::select! {
        result = server => result?,
        () = async { draining.notified().await; tokio::time::sleep(grace).await } => {
            tracing::warn!(grace_secs = grace.as_secs(), "in-flight requests did not finish within the grace period; exiting anyway");
        }
    }
    catalog.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!("cannot listen for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
