//! The axum application: routes, middleware, and the thin handlers that call into the ports.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use cairn_core::Catalog;
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{
    MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use crate::error::ApiError;
use crate::extract::body_too_large;
use crate::{access, collections, prompts, web_api};
use cairn_auth::Role;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What every handler may use. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    pub catalog: Arc<dyn Catalog>,
    pub prompts: Arc<cairn_prompts::PromptRegistry>,
    /// The one answer pipeline every front door calls (models, apps, limits, cache, guards).
    pub pipeline: cairn_app::Pipeline,
    pub metrics: PrometheusHandle,
    pub max_body_bytes: usize,
    /// The RAG pipeline, or why it could not be set up (ingest and search then answer 503).
    pub rag: Arc<Result<Arc<cairn_app::Rag>, cairn_app::RagSetupError>>,
    pub max_upload_bytes: usize,
    /// Uploads being ingested at once, at most `max_concurrent_uploads`.
    pub uploads: Arc<tokio::sync::Semaphore>,
    pub max_concurrent_uploads: usize,
    /// The MCP endpoint's settings.
    pub mcp: Arc<cairn_runtime::config::McpSection>,
    /// OIDC sign-in for the web UI; `None`: no sign-in.
    pub auth: Option<Arc<crate::auth::Oidc>>,
    /// Verifies API keys for the authentication layer and `/mcp`.
    pub keys: Arc<cairn_auth::KeyVerifier>,
    /// Runs the eval suites attached to what a request changed (`[[evals.continuous]]`).
    pub continuous: cairn_runtime::continuous::Watcher,
    /// Who may call: the mode, accepted hosts, users' roles (`access.rs` applies it).
    pub access: Arc<cairn_runtime::config::AccessPolicy>,
}

/// `router` with `role` required on every route (checked, and audited, by [`access::require`]).
fn needs(state: &AppState, router: Router<AppState>, role: Role) -> Router<AppState> {
    router.route_layer(middleware::from_fn_with_state(
        (state.clone(), role),
        access::require,
    ))
}

/// `router` with bodies over `bytes` refused, declared or streamed, naming `setting`.
fn limited(router: Router<AppState>, bytes: usize, setting: &'static str) -> Router<AppState> {
    router
        .layer(DefaultBodyLimit::max(bytes))
        .layer(middleware::from_fn_with_state(
            BodyLimit { bytes, setting },
            reject_declared_oversize,
        ))
}

/// The whole HTTP surface. Tests call it with `tower::ServiceExt::oneshot`, without a socket.
pub fn router(state: AppState) -> Router {
    let max_body_bytes = state.max_body_bytes;
    let max_upload_bytes = state.max_upload_bytes;
    let uploads = needs(
        &state,
        Router::new().route(
            "/v1/collections/{name}/documents",
            get(collections::list_documents),
        ),
        Role::Read,
    )
    .merge(needs(
        &state,
        Router::new().route(
            "/v1/collections/{name}/documents",
            post(collections::upload_documents),
        ),
        Role::Write,
    ));
    let uploads = limited(uploads, max_upload_bytes, "ingest.max_upload_bytes");
    let read = Router::new()
        .route("/v1/collections", get(collections::list_collections))
        .route("/v1/collections/{name}", get(collections::get_collection))
        .route("/v1/collections/{name}/search", post(collections::search))
        .route("/v1/prompts", get(prompts::list_prompts))
        .route("/v1/prompts/{name}", get(prompts::get_prompt))
        .route(
            "/v1/prompts/{name}/versions/{version}",
            get(prompts::get_version),
        )
        .route("/v1/prompts/{name}/render", post(prompts::render))
        .route("/v1/evals/runs", get(crate::evals_api::list_runs))
        .route("/v1/evals/runs/{id}", get(crate::evals_api::get_run))
        .route("/v1/evals/compare", get(crate::evals_api::compare))
        .route(
            "/v1/chat/completions",
            post(crate::openai_api::chat_completions),
        )
        .route("/v1/embeddings", post(crate::embeddings_api::embeddings))
        .route("/v1/guard/check", post(crate::guard_api::check))
        .route("/v1/lineage/{id}", get(crate::openai_api::get_lineage))
        .route("/v1/models", get(crate::openai_api::list_models))
        .route("/v1/models/{id}", get(crate::openai_api::get_model))
        .route("/v1/me", get(crate::auth::me))
        .route("/v1/apps", get(web_api::list_apps))
        .route(
            "/v1/conversations",
            get(web_api::list_conversations).post(web_api::create_conversation),
        )
        .route(
            "/v1/conversations/{id}",
            get(web_api::get_conversation)
                .patch(web_api::rename_conversation)
                .delete(web_api::delete_conversation),
        )
        .route("/v1/conversations/{id}/messages", post(web_api::ask))
        .route("/v1/lineage/{id}/feedback", post(web_api::give_feedback))
        .route("/v1/documents/{id}/text", get(web_api::document_text));
    let write = Router::new()
        .route("/v1/collections", post(collections::create_collection))
        .route(
            "/v1/collections/{name}",
            delete(collections::delete_collection),
        )
        .route(
            "/v1/collections/{name}/documents/{id}",
            delete(collections::delete_document),
        );
    let prompt_admin = Router::new()
        .route(
            "/v1/prompts/{name}/versions",
            post(prompts::publish_version),
        )
        .route("/v1/prompts/{name}/labels/{label}", put(prompts::set_label));
    let admin = Router::new()
        .route(
            "/v1/routes/{name}/shadow",
            get(crate::gateway::list_shadow_results),
        )
        .route("/v1/audit", get(crate::audit::list))
        .route("/v1/lineage", get(crate::openai_api::list_lineage))
        .route(
            "/v1/keys",
            get(crate::keys_api::list).post(crate::keys_api::create),
        )
        .route("/v1/keys/{name}", delete(crate::keys_api::revoke));
    let api = needs(&state, read, Role::Read)
        .merge(needs(&state, write, Role::Write))
        .merge(needs(&state, prompt_admin, Role::PromptAdmin))
        .merge(needs(&state, admin, Role::Admin));
    let api = limited(api, max_body_bytes, "server.max_body_bytes");
    let metrics_route = Router::new().route("/metrics", get(metrics));
    let metrics_route = if state.access.protect_metrics {
        needs(&state, metrics_route, Role::Admin)
    } else {
        metrics_route
    };
    let mcp = crate::mcp::router(&state);
    let cors = cors(&state.access.cors_origins);
    let app = Router::new()
        .route("/", get(web_api::index))
        .route("/evals", get(web_api::evals_page))
        .route("/assets/{*path}", get(web_api::asset))
        .route("/auth/login", get(crate::auth::login))
        .route("/auth/callback", get(crate::auth::callback))
        .route(
            "/auth/logout",
            get(crate::auth::logout).post(crate::auth::logout),
        )
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .merge(metrics_route)
        .merge(api)
        .merge(uploads)
        .with_state(state.clone())
        .merge(mcp)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state, access::authenticate));
    // Outside authentication: a browser's preflight carries no credentials, and is answered here.
    let app = match cors {
        Some(cors) => app.layer(cors),
        None => app,
    };
    app.layer(middleware::from_fn(crate::metrics::track))
        .layer(CatchPanicLayer::custom(|_| ApiError::internal("the server hit a bug answering this request").into_response()))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request| {
                let request_id = request.extensions().get::<RequestId>().and_then(|id| id.header_value().to_str().ok());
                tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id)
            })
            .on_response(DefaultOnResponse::new().level(tracing::Level::INFO).latency_unit(tower_http::LatencyUnit::Micros)),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

/// CORS for the origins `[server] cors_origins` lists (`None` when it lists none): what browser
/// clients on those pages may send (a key or token in `Authorization`, JSON) and read (Cairn's
/// `x-cairn-*` headers). No cookies: the web UI's session stays same-site.
fn cors(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    use tower_http::cors::{AllowOrigin, CorsLayer};
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    let name = HeaderName::from_static;
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([
                axum::http::Method::GET,
                axum::http::Method::POST,
                axum::http::Method::PUT,
                axum::http::Method::PATCH,
                axum::http::Method::DELETE,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::ACCEPT,
                name("x-cairn-cache"),
                name("x-request-id"),
            ])
            .expose_headers([
                name("x-cairn-lineage-id"),
                name("x-cairn-cache"),
                name("x-cairn-cost-usd"),
                name("x-cairn-overhead-ms"),
                name("x-cairn-attempts"),
                name("x-request-id"),
                header::RETRY_AFTER,
            ])
            .max_age(Duration::from_secs(600)),
    )
}

/// Refuses a body whose declared length is over the limit before reading any of it. Bodies without a
/// declared length are cut off by `DefaultBodyLimit` while they are read.
/// A body size limit and the setting that raises it.
#[derive(Debug, Clone, Copy)]
struct BodyLimit {
    bytes: usize,
    setting: &'static str,
}

async fn reject_declared_oversize(
    State(limit): State<BodyLimit>,
    request: Request,
    next: Next,
) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    if declared.is_some_and(|length| length > limit.bytes) {
        return body_too_large(limit.setting).into_response();
    }
    next.run(request).await
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Ready when every backing service answers within a second.
async fn readyz(State(state): State<AppState>) -> Response {
    let started = Instant::now();
    let catalog = match tokio::time::timeout(Duration::from_secs(1), state.catalog.ping()).await {
        Ok(Ok(())) => {
            json!({"status": "ok", "backend": state.catalog.backend(), "latency_ms": started.elapsed().as_millis() as u64})
        }
        Ok(Err(e)) => {
            json!({"status": "error", "backend": state.catalog.backend(), "error": e.to_string()})
        }
        Err(_) => {
            json!({"status": "error", "backend": state.catalog.backend(), "error": "no answer within 1 s"})
        }
    };
    let ready = catalog["status"] == "ok";
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({"status": if ready { "ready" } else { "unavailable" }, "checks": {"catalog": catalog}});
    (status, Json(body)).into_response()
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        crate::metrics::render(&state.metrics),
    )
}

async fn not_found(request: Request) -> ApiError {
    ApiError::not_found(
        "unknown_route",
        format!("no route for {} {}", request.method(), request.uri().path()),
    )
}

async fn method_not_allowed(request: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "invalid_request_error",
        "method_not_allowed",
        format!(
            "{} is not allowed on {}",
            request.method(),
            request.uri().path()
        ),
    )
}
