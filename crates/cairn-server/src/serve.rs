//! Startup and shutdown: open the catalog the config names, migrate it, bind, serve until a signal,
//! then let in-flight requests finish within the grace period.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use cairn_runtime::catalog::{OpenCatalog, StartError, open_for_use};
use cairn_runtime::config::Config;
use tokio::net::TcpListener;

use crate::app::{AppState, router};

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
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("cannot set up sign-in: {0}")]
    Auth(String),
    #[error("refusing to start: {0}")]
    Unprotected(String),
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

/// Everything the handlers use: the runtime built from config over an open catalog (prompt
/// registry, answer pipeline, retrieval), the metrics recorder, and sign-in. Shared by `cairn serve`
/// and `cairn mcp`.
pub async fn build_state(config: &Config, catalog: &OpenCatalog) -> Result<AppState, ServeError> {
    let metrics = crate::metrics::handle();
    crate::metrics::record_build_info(config.database.backend());
    let runtime = cairn_runtime::Runtime::build(config, catalog).await?;
    if let Some(runner) = runtime.pipeline.parts().agent_runner.clone() {
        // External MCP servers start now rather than at the first agent run.
        tokio::spawn(async move {
            runner.external_tools().await;
        });
    }
    let continuous = cairn_runtime::continuous::Watcher::new(
        config.evals.continuous.clone(),
        runtime.pipeline.clone(),
        runtime.catalog.clone(),
    );
    let state = AppState {
        continuous,
        catalog: runtime.catalog,
        prompts: runtime.prompts,
        pipeline: runtime.pipeline,
        metrics,
        max_body_bytes: config.max_body_bytes,
        rag: runtime.rag,
        max_upload_bytes: usize::try_from(config.ingest.max_upload_bytes).unwrap_or(usize::MAX),
        uploads: Arc::new(tokio::sync::Semaphore::new(
            config.ingest.max_concurrent_uploads.max(1) as usize,
        )),
        max_concurrent_uploads: config.ingest.max_concurrent_uploads.max(1) as usize,
        mcp: Arc::new(config.mcp.clone()),
        auth: match &config.auth {
            Some(settings) => Some(Arc::new(
                crate::auth::Oidc::discover(settings.clone(), &config.access)
                    .await
                    .map_err(ServeError::Auth)?,
            )),
            None => None,
        },
        keys: Arc::default(),
        access: Arc::new(config.access.clone()),
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
    config
        .access
        .check_listen(config.listen)
        .map_err(ServeError::Unprotected)?;
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
    let pruning = spawn_pruning(state.catalog.clone(), config.retention.clone());
    let app = router(state);

    let local_addr = listener.local_addr()?;
    tracing::info!(address = %local_addr, catalog = %config.database.describe(), "cairn is listening");
    announce_access(&config.access, local_addr);
    on_listening(local_addr);

    let draining = Arc::new(tokio::sync::Notify::new());
    let drain_signal = draining.clone();
    // The peer's address reaches the handlers, for the audit log.
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
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
    if let Some(pruning) = pruning {
        pruning.abort();
    }
    catalog.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Prunes what `[retention]` no longer keeps, at start and every `prune_every_mins`, for as long
/// as the server runs.
fn spawn_pruning(
    catalog: Arc<dyn cairn_core::Catalog>,
    retention: cairn_runtime::config::RetentionSection,
) -> Option<tokio::task::JoinHandle<()>> {
    if retention.periods().is_empty() {
        return None;
    }
    let every = std::time::Duration::from_secs(u64::from(retention.prune_every_mins.max(1)) * 60);
    Some(tokio::spawn(async move {
        loop {
            cairn_runtime::retention::prune_all(catalog.as_ref(), &retention).await;
            tokio::time::sleep(every).await;
        }
    }))
}

/// Says at every start who may call: the operator should never have to guess.
fn announce_access(access: &cairn_runtime::config::AccessPolicy, addr: SocketAddr) {
    use cairn_runtime::config::AuthMode;
    match access.mode {
        AuthMode::Local | AuthMode::Auto => tracing::info!(
            "no sign-in (auth.mode = local): every request is the local user, so cairn listens on loopback only ({addr}); set [auth] mode = \"required\" to serve others"
        ),
        AuthMode::Required => tracing::info!(
            "every request needs an API key or a signed-in session (auth.mode = required)"
        ),
        AuthMode::None => tracing::warn!(
            "authentication is OFF (auth.mode = none): anyone who can reach {addr} may read, change and delete everything; set [auth] mode = \"required\" unless something in front of cairn authenticates"
        ),
    }
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
