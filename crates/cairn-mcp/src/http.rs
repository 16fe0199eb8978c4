//! Streamable HTTP: `/mcp` behind bearer API keys, and the OAuth 2.0 protected-resource metadata
//! (RFC 9728) that tells clients how to authenticate. A request without a valid key gets a 401 whose
//! `WWW-Authenticate` header points at that metadata, and nothing else.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use cairn_auth::{AuthError, Grant, KeyVerifier};
use cairn_core::Catalog;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::json;

use crate::server::CairnMcp;

/// Where the MCP endpoint is mounted.
pub const MCP_PATH: &str = "/mcp";
/// The protected-resource metadata of `/mcp` (RFC 9728 §3.1: the well-known prefix before the path).
pub const METADATA_PATH: &str = "/.well-known/oauth-protected-resource/mcp";

/// How the HTTP transport is exposed.
#[derive(Debug, Clone, Default)]
pub struct HttpOptions {
    /// Host names (or `host:port`) accepted in the `Host` header, against DNS rebinding. Empty:
    /// loopback only.
    pub allowed_hosts: Vec<String>,
    /// The public URL of the endpoint (`https://cairn.example.com/mcp`), advertised as the
    /// resource. Empty: built from each request's `Host` header.
    pub resource_url: String,
    /// OAuth authorization servers that issue tokens for this resource (an OIDC issuer). Empty:
    /// Cairn API keys only.
    pub authorization_servers: Vec<String>,
}

#[derive(Debug, Clone)]
struct Auth {
    catalog: Arc<dyn Catalog>,
    keys: Arc<KeyVerifier>,
    options: Arc<HttpOptions>,
}

/// `/mcp` and its metadata, ready to merge into the server's router. Keys are checked by `keys`,
/// the verifier every front door of the process shares.
pub fn router(
    server: CairnMcp,
    catalog: Arc<dyn Catalog>,
    keys: Arc<KeyVerifier>,
    options: HttpOptions,
) -> Router {
    let mut config = StreamableHttpServerConfig::default();
    if !options.allowed_hosts.is_empty() {
        config = config.with_allowed_hosts(options.allowed_hosts.clone());
    }
    let service = StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let auth = Auth {
        catalog,
        keys,
        options: Arc::new(options),
    };
    let mcp = Router::new()
        .nest_service(MCP_PATH, service)
        .layer(middleware::from_fn_with_state(auth.clone(), require_key));
    Router::new()
        .route(METADATA_PATH, get(metadata))
        .route("/.well-known/oauth-protected-resource", get(metadata))
        .with_state(auth)
        .merge(mcp)
}

/// The scheme and authority the client used (`https://cairn.example.com`), from the proxy headers
/// (`X-Forwarded-Proto`, `X-Forwarded-Host`) or the request's `Host`.
pub fn request_origin(headers: &HeaderMap) -> String {
    let value = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(',').next().unwrap_or(v).trim().to_owned())
    };
    let scheme = value("x-forwarded-proto").unwrap_or_else(|| "http".into());
    let host = value("x-forwarded-host")
        .or_else(|| value(header::HOST.as_str()))
        .unwrap_or_else(|| "localhost".into());
    format!("{scheme}://{host}")
}

fn resource_url(options: &HttpOptions, headers: &HeaderMap) -> String {
    if options.resource_url.is_empty() {
        format!("{}{MCP_PATH}", request_origin(headers))
    } else {
        options.resource_url.clone()
    }
}

fn metadata_url(options: &HttpOptions, headers: &HeaderMap) -> String {
    let resource = resource_url(options, headers);
    match url_origin(&resource) {
        Some(origin) => format!("{origin}{METADATA_PATH}"),
        None => format!("{}{METADATA_PATH}", request_origin(headers)),
    }
}

/// `https://host:port` of a URL.
fn url_origin(url: &str) -> Option<&str> {
    let after_scheme = url.find("://")? + 3;
    let end = url[after_scheme..]
        .find('/')
        .map_or(url.len(), |i| after_scheme + i);
    Some(&url[..end])
}

async fn metadata(State(auth): State<Auth>, headers: HeaderMap) -> Json<serde_json::Value> {
    Json(json!({
        "resource": resource_url(&auth.options, &headers),
        "authorization_servers": auth.options.authorization_servers,
        "bearer_methods_supported": ["header"],
        "resource_name": "Cairn MCP server",
    }))
}

fn unauthorized(
    auth: &Auth,
    headers: &HeaderMap,
    problem: Option<&str>,
    message: &str,
) -> Response {
    let mut challenge = format!(
        "Bearer resource_metadata=\"{}\"",
        metadata_url(&auth.options, headers)
    );
    if let Some(problem) = problem {
        challenge.push_str(&format!(
            ", error=\"{problem}\", error_description=\"{message}\""
        ));
    }
    let mut response = (
        StatusCode::UNAUTHORIZED,
        Json(json!({"error": {"code": "unauthorized", "message": message}})),
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// Verifies the bearer key and attaches its [`Grant`] to the request for the tools to enforce. A
/// request that already carries a grant (the server's authentication layer found its caller) goes
/// on as it is.
async fn require_key(State(auth): State<Auth>, mut request: Request, next: Next) -> Response {
    if request.extensions().get::<Grant>().is_some() {
        return next.run(request).await;
    }
    let headers = request.headers().clone();
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return unauthorized(
            &auth,
            &headers,
            None,
            "this endpoint needs an API key: send `Authorization: Bearer cairn_…` (create one with `cairn key create`)",
        );
    };
    match auth.keys.verify(auth.catalog.as_ref(), token).await {
        Ok(key) => {
            request.extensions_mut().insert(Grant::from_key(&key));
            next.run(request).await
        }
        Err(AuthError::UnknownKey) => unauthorized(
            &auth,
            &headers,
            Some("invalid_token"),
            "the API key is unknown or revoked",
        ),
        Err(AuthError::Catalog(e)) => {
            tracing::error!(error = %e, "cannot check an API key");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"error": {"code": "catalog_unavailable", "message": "cannot check the API key right now; retry shortly"}})),
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_resource_and_its_metadata_follow_the_host_or_the_configured_url() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        let options = HttpOptions::default();
        assert_eq!(
            resource_url(&options, &headers),
            "http://127.0.0.1:8080/mcp"
        );
        assert_eq!(
            metadata_url(&options, &headers),
            "http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp"
        );
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        headers.insert(
            "x-forwarded-host",
            HeaderValue::from_static("cairn.example.com"),
        );
        assert_eq!(
            resource_url(&options, &headers),
            "https://cairn.example.com/mcp"
        );
        let configured = HttpOptions {
            resource_url: "https://kb.example.org/mcp".into(),
            ..HttpOptions::default()
        };
        assert_eq!(
            metadata_url(&configured, &headers),
            "https://kb.example.org/.well-known/oauth-protected-resource/mcp"
        );
    }
}
