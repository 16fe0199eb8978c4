//! The one authentication layer in front of every route, and the role each route needs.
//!
//! For each request, in order: public paths (health probes, the UI's static files, sign-in, the
//! MCP resource metadata, `/metrics` unless protected) pass untouched. Every other request must
//! name a host this server answers to (`Host`: loopback names or `server.allowed_hosts`, against
//! DNS rebinding), and a state-changing one must come from this server's own pages (`Origin`, and
//! `Sec-Fetch-Site`, against cross-site form posts and CSRF). Then the caller is found: a Cairn API
//! key (`Authorization: Bearer cairn_…`), the web UI's session, or, by `auth.mode`, the local user
//! (`local`), anyone (`none`) or nobody (`required`: 401). The [`Grant`] it becomes is put on the
//! request, where [`require`] checks roles per route group, the handlers read collections and
//! ownership, and `/mcp` its tools. `/mcp` words its own refusals (RFC 9728's challenge), so an
//! unauthenticated MCP request passes on without a grant.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cairn_auth::{AuthError, Grant, Role};
use cairn_runtime::config::{AccessPolicy, AuthMode};

use crate::app::AppState;
use crate::audit::Seen;
use crate::error::ApiError;

/// Paths anyone may fetch: probes, static pages and assets, sign-in, the MCP resource metadata.
fn is_public(path: &str, policy: &AccessPolicy) -> bool {
    matches!(
        path,
        "/healthz" | "/readyz" | "/" | "/evals" | "/auth/login" | "/auth/callback" | "/auth/logout"
    ) || path.starts_with("/assets/")
        || path.starts_with("/.well-known/oauth-protected-resource")
        || (path == "/metrics" && !policy.protect_metrics)
}

/// The host names a loopback server always answers to.
const LOOPBACK_NAMES: [&str; 4] = ["localhost", "127.0.0.1", "[::1]", "::1"];

/// `host` or `host:port` without the port (IPv6 literals keep their brackets).
fn host_name(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority
            .find(']')
            .map_or(authority, |end| &authority[..=end]);
    }
    authority.split(':').next().unwrap_or(authority)
}

/// Whether the `Host` header names this server. A request without one (HTTP/1.0, in-process
/// tests) cannot come from a browser, so DNS rebinding does not apply.
fn host_allowed(headers: &HeaderMap, policy: &AccessPolicy) -> Result<(), String> {
    let Some(host) = headers.get(header::HOST) else {
        return Ok(());
    };
    let host = host
        .to_str()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let name = host_name(&host);
    let allowed = LOOPBACK_NAMES.contains(&name)
        || policy.allowed_hosts.iter().any(|allowed| {
            allowed.eq_ignore_ascii_case(&host) || allowed.eq_ignore_ascii_case(name)
        });
    if allowed {
        Ok(())
    } else {
        Err(format!(
            "this server does not answer to the host `{host}`; if clients reach it by that name, add it to server.allowed_hosts"
        ))
    }
}

/// Whether a state-changing request comes from this server's own pages. Browsers send `Origin`
/// with every such request (and `Sec-Fetch-Site`); clients that are not browsers send neither.
/// A request authenticated by the session cookie must carry a matching `Origin`: that is the CSRF
/// defence, besides the cookie's `SameSite`.
/// Pages of the origins `[server] cors_origins` lists may change things with a key or token, never
/// with the cookie.
fn same_origin(
    headers: &HeaderMap,
    method: &Method,
    by_cookie: bool,
    cors_origins: &[String],
) -> Result<(), String> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let text = |name: header::HeaderName| {
        headers
            .get(name)
            .map(|v| v.to_str().unwrap_or("(not text)").trim().to_owned())
    };
    if !by_cookie
        && let Some(origin) = text(header::ORIGIN)
        && cors_origins.iter().any(|o| o == "*" || *o == origin)
    {
        return Ok(());
    }
    if text(header::HeaderName::from_static("sec-fetch-site")).as_deref() == Some("cross-site") {
        return Err("a page on another site may not change anything here".into());
    }
    let Some(origin) = text(header::ORIGIN) else {
        return if by_cookie {
            Err("a request signed in by cookie must come from this server's pages (no Origin header was sent)".into())
        } else {
            Ok(())
        };
    };
    let authority = origin
        .split_once("://")
        .map(|(_, rest)| rest.trim_end_matches('/').to_ascii_lowercase());
    let ours = [header::HOST.as_str(), "x-forwarded-host"]
        .iter()
        .filter_map(|name| headers.get(*name))
        .filter_map(|v| v.to_str().ok())
        .map(|v| v.split(',').next().unwrap_or(v).trim().to_ascii_lowercase())
        .any(|host| authority.as_deref() == Some(host.as_str()));
    if ours {
        Ok(())
    } else {
        Err(format!(
            "a page on another site ({origin}) may not change anything here"
        ))
    }
}

fn forbidden(code: &'static str, message: String) -> Response {
    ApiError::new(StatusCode::FORBIDDEN, "permission_error", code, message).into_response()
}

fn unauthenticated(code: &'static str, message: &str) -> Response {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "authentication_error",
        code,
        message,
    )
    .into_response()
}

/// The bearer token of `Authorization`, if any.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Who is calling, or the response that refuses the request.
enum Found {
    Known(Grant),
    /// Unauthenticated on `/mcp`: its own layer answers with the RFC 9728 challenge.
    ToMcp,
}

async fn find_caller(
    state: &AppState,
    headers: &HeaderMap,
    path: &str,
    session: Option<Grant>,
) -> Result<Found, Response> {
    let mcp = path == cairn_mcp::http::MCP_PATH || path.starts_with("/mcp/");
    let required = state.access.mode == AuthMode::Required;
    match bearer(headers) {
        Some(token) if token.starts_with(cairn_auth::keys::KEY_PREFIX) => {
            return match state.keys.verify(state.catalog.as_ref(), token).await {
                Ok(key) => Ok(Found::Known(Grant::from_key(&key))),
                Err(_) if mcp => Ok(Found::ToMcp),
                Err(error @ AuthError::UnknownKey) => Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "invalid_request_error",
                    "invalid_api_key",
                    error.to_string(),
                )
                .into_response()),
                Err(AuthError::Catalog(error)) => Err(ApiError::from(error).into_response()),
            };
        }
        // The sign-in provider's tokens (JWTs) name a user.
        Some(token) if state.auth.is_some() && token.matches('.').count() == 2 => {
            let oidc = state.auth.as_ref().expect("checked above");
            match oidc.bearer_grant(token).await {
                Ok(user) => return Ok(Found::Known(user)),
                Err(_) if mcp => return Ok(Found::ToMcp),
                Err(problem) if required => {
                    tracing::info!("refused a bearer token: {problem}");
                    return Err(unauthenticated("invalid_token", &problem));
                }
                Err(_) => {}
            }
        }
        // OpenAI clients always send a bearer token; without required authentication it is not
        // Cairn's business.
        Some(_) if required && !mcp => {
            return Err(unauthenticated(
                "invalid_api_key",
                "only Cairn API keys and the sign-in provider's tokens are accepted as bearer tokens: send `Authorization: Bearer cairn_…` (create one with `cairn key create`)",
            ));
        }
        _ => {}
    }
    if let Some(user) = session {
        return Ok(Found::Known(user));
    }
    match state.access.mode {
        AuthMode::Local | AuthMode::Auto => Ok(Found::Known(Grant::local())),
        AuthMode::None => Ok(Found::Known(Grant::open())),
        AuthMode::Required if mcp => Ok(Found::ToMcp),
        // The web UI signs in again on `login_required`.
        AuthMode::Required if state.auth.is_some() => Err(unauthenticated(
            "login_required",
            "sign in first: open /auth/login (programs send an API key: `Authorization: Bearer cairn_…`, from `cairn key create`)",
        )),
        AuthMode::Required => Err(unauthenticated(
            "authentication_required",
            "this server needs an API key: send `Authorization: Bearer cairn_…` (create one with `cairn key create`)",
        )),
    }
}

/// The authentication layer: checks the host and origin, finds the caller and puts its [`Grant`]
/// on the request.
pub(crate) async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_owned();
    if is_public(&path, &state.access) {
        return next.run(request).await;
    }
    // What the audit log records is gathered only for a refusal: most requests pass.
    let headers = request.headers();
    if let Err(problem) = host_allowed(headers, &state.access) {
        tracing::warn!(path, "refused a request for another host: {problem}");
        Seen::of(&request)
            .record(&state, None, StatusCode::FORBIDDEN, Some(&problem))
            .await;
        return forbidden("host_not_allowed", problem);
    }
    let session = match (&state.auth, bearer(headers)) {
        (Some(oidc), None) => oidc.session_grant(headers, state.catalog.as_ref()).await,
        _ => None,
    };
    let by_cookie = session.is_some();
    if let Err(problem) = same_origin(
        headers,
        request.method(),
        by_cookie,
        &state.access.cors_origins,
    ) {
        tracing::warn!(path, "refused a cross-site request: {problem}");
        Seen::of(&request)
            .record(&state, None, StatusCode::FORBIDDEN, Some(&problem))
            .await;
        return forbidden("cross_site_refused", problem);
    }
    match find_caller(&state, request.headers(), &path, session).await {
        Ok(Found::Known(grant)) => {
            request.extensions_mut().insert(grant);
            next.run(request).await
        }
        Ok(Found::ToMcp) => next.run(request).await,
        Err(refused) => {
            Seen::of(&request)
                .record(&state, None, refused.status(), Some("no valid credentials"))
                .await;
            refused
        }
    }
}

/// Refuses callers without the route group's role; layered on each group in
/// [`crate::app::router`]. Requests that need more than reading are audited, and so is every
/// refusal.
pub(crate) async fn require(
    State((state, role)): State<(AppState, Role)>,
    request: Request,
    next: Next,
) -> Response {
    let Some(grant) = request.extensions().get::<Grant>() else {
        return unauthenticated(
            "authentication_required",
            "this request needs an API key or a signed-in session",
        );
    };
    if !grant.has(role) {
        let problem = format!(
            "`{}` lacks the {role} role this request needs; an admin can create a key with `cairn key create --roles {role}` (or grant it through auth.user_roles)",
            grant.name
        );
        Seen::of(&request)
            .record(&state, Some(grant), StatusCode::FORBIDDEN, Some(&problem))
            .await;
        return forbidden("missing_role", problem);
    }
    // Reads are not audited (answers have lineage): nothing to gather on the common path.
    if role == Role::Read {
        return next.run(request).await;
    }
    let (seen, grant) = (Seen::of(&request), grant.clone());
    let response = next.run(request).await;
    seen.record(&state, Some(&grant), response.status(), None)
        .await;
    response
}

/// The caller a handler acts for, as the authentication layer found it.
#[derive(Debug, Clone)]
pub struct Caller(pub Grant);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Grant>()
            .cloned()
            .map(Caller)
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "authentication_error",
                    "authentication_required",
                    "this request needs an API key or a signed-in session",
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(hosts: &[&str]) -> AccessPolicy {
        AccessPolicy {
            mode: AuthMode::Local,
            allowed_hosts: hosts.iter().map(|h| (*h).to_owned()).collect(),
            user_roles: vec![Role::Read],
            roles_claim: String::new(),
            protect_metrics: false,
            cors_origins: Vec::new(),
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().expect("header value"));
        }
        map
    }

    #[test]
    fn loopback_and_listed_hosts_are_answered_and_rebound_names_are_not() {
        for host in ["127.0.0.1:8080", "localhost", "[::1]:8080", "LOCALHOST:1"] {
            assert!(
                host_allowed(&headers(&[("host", host)]), &policy(&[])).is_ok(),
                "{host}"
            );
        }
        let refused = host_allowed(&headers(&[("host", "evil.example:8080")]), &policy(&[]))
            .expect_err("rebound name");
        assert!(refused.contains("server.allowed_hosts"), "{refused}");
        let listed = policy(&["cairn.example.com"]);
        assert!(host_allowed(&headers(&[("host", "cairn.example.com:443")]), &listed).is_ok());
        assert!(host_allowed(&headers(&[("host", "localhost.evil.example")]), &listed).is_err());
        assert!(host_allowed(&HeaderMap::new(), &policy(&[])).is_ok());
    }

    #[test]
    fn state_changes_must_come_from_our_own_pages() {
        let ours = headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080"),
        ]);
        assert!(same_origin(&ours, &Method::POST, true, &[]).is_ok());
        let theirs = headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "https://evil.example"),
        ]);
        assert!(same_origin(&theirs, &Method::DELETE, false, &[]).is_err());
        assert!(
            same_origin(&theirs, &Method::GET, false, &[]).is_ok(),
            "reads are not changes"
        );
        let null = headers(&[("host", "127.0.0.1:8080"), ("origin", "null")]);
        assert!(same_origin(&null, &Method::POST, false, &[]).is_err());
        let fetch = headers(&[("host", "127.0.0.1:8080"), ("sec-fetch-site", "cross-site")]);
        assert!(same_origin(&fetch, &Method::POST, false, &[]).is_err());
        let bare = headers(&[("host", "127.0.0.1:8080")]);
        assert!(
            same_origin(&bare, &Method::POST, false, &[]).is_ok(),
            "not a browser"
        );
        assert!(
            same_origin(&bare, &Method::POST, true, &[]).is_err(),
            "a cookie needs an Origin"
        );
        let proxied = headers(&[
            ("host", "cairn:8080"),
            ("x-forwarded-host", "cairn.example.com"),
            ("origin", "https://cairn.example.com"),
        ]);
        assert!(same_origin(&proxied, &Method::POST, true, &[]).is_ok());
    }

    #[test]
    fn only_probes_static_files_and_sign_in_are_public() {
        let open = policy(&[]);
        for path in [
            "/healthz",
            "/readyz",
            "/",
            "/assets/app.js",
            "/auth/login",
            "/metrics",
        ] {
            assert!(is_public(path, &open), "{path}");
        }
        for path in ["/v1/collections", "/mcp", "/v1/me", "/unknown", "/assets"] {
            assert!(!is_public(path, &open), "{path}");
        }
        let protected = AccessPolicy {
            protect_metrics: true,
            ..policy(&[])
        };
        assert!(!is_public("/metrics", &protected));
    }
}
