//! Sign-in for the web UI. Without `[auth] oidc_issuer`, none: the caller is whoever the
//! authentication layer (`access.rs`) says, the local user on loopback. With it, sign-in through the
//! OpenID Connect provider with the authorization-code flow and PKCE (`/auth/login` → the provider →
//! `/auth/callback`), and a signed, HTTP-only session cookie carrying the user's roles
//! (`auth.user_roles` and the ID token's `auth.roles_claim`); conversations and feedback then belong
//! to the provider's subject.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, Key, SameSite, SignedCookieJar};
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::app::AppState;
use crate::error::ApiError;

const SESSION_COOKIE: &str = "cairn_session";
const PENDING_COOKIE: &str = "cairn_oidc";
/// How long a sign-in may take at the provider.
const PENDING_TTL: Duration = Duration::from_secs(600);

pub use cairn_runtime::config::OidcSettings;

/// Sign-in through an OpenID Connect provider, discovered at startup.
#[derive(Clone)]
pub struct Oidc {
    settings: OidcSettings,
    /// The provider's endpoints and keys; the keys are fetched again when it rotates them.
    metadata: Arc<std::sync::RwLock<CoreProviderMetadata>>,
    key: Key,
    http: ProviderHttp,
    /// Roles every signed-in user holds.
    user_roles: Vec<cairn_auth::Role>,
    /// The ID-token claim naming more roles; empty: none.
    roles_claim: String,
    /// The provider's bearer tokens, checked against its published keys.
    tokens: Arc<cairn_auth::TokenVerifier>,
    jwks_uri: String,
    /// When the key set was last fetched again for an unknown key (at most every few seconds).
    refetched: Arc<std::sync::Mutex<Option<std::time::Instant>>>,
}

/// How often an unknown key may send Cairn to fetch the provider's key set again.
const REFETCH_EVERY: Duration = Duration::from_secs(10);

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc")
            .field("issuer", &self.settings.issuer)
            .field("client_id", &self.settings.client_id)
            .finish_non_exhaustive()
    }
}

/// An HTTP failure talking to the provider.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ProviderHttpError(String);

/// The OIDC library's HTTP client: reqwest, never following redirects (as the library asks,
/// against SSRF through a provider's redirects).
#[derive(Debug, Clone)]
struct ProviderHttp(reqwest::Client);

impl<'c> openidconnect::AsyncHttpClient<'c> for ProviderHttp {
    type Error = ProviderHttpError;
    type Future = std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<openidconnect::HttpResponse, ProviderHttpError>>
                + Send
                + 'c,
        >,
    >;

    fn call(&'c self, request: openidconnect::HttpRequest) -> Self::Future {
        Box::pin(send(&self.0, request))
    }
}

async fn send(
    http: &reqwest::Client,
    request: openidconnect::HttpRequest,
) -> Result<openidconnect::HttpResponse, ProviderHttpError> {
    let (parts, body) = request.into_parts();
    let mut outgoing = http.request(parts.method, parts.uri.to_string()).body(body);
    for (name, value) in &parts.headers {
        outgoing = outgoing.header(name, value);
    }
    let response = outgoing
        .send()
        .await
        .map_err(|e| ProviderHttpError(format!("{e}")))?;
    let mut builder = axum::http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        builder = builder.header(name, value);
    }
    let bytes = response
        .bytes()
        .await
        .map_err(|e| ProviderHttpError(format!("{e}")))?;
    builder
        .body(bytes.to_vec())
        .map_err(|e| ProviderHttpError(e.to_string()))
}

/// A sign-in in progress: what the callback needs to finish it.
#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    state: String,
    nonce: String,
    verifier: String,
    return_to: String,
    exp: u64,
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Oidc {
    /// Discovers the provider's endpoints and keys. Fails with a message naming the issuer.
    pub async fn discover(
        settings: OidcSettings,
        access: &cairn_runtime::config::AccessPolicy,
    ) -> Result<Oidc, String> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
        let issuer = IssuerUrl::new(settings.issuer.clone())
            .map_err(|e| format!("auth.oidc_issuer `{}` is not a URL: {e}", settings.issuer))?;
        let http = ProviderHttp(http);
        let metadata = CoreProviderMetadata::discover_async(issuer, &http)
            .await
            .map_err(|e| {
                format!(
                    "cannot discover the OpenID provider at {} (auth.oidc_issuer): {e}",
                    settings.issuer
                )
            })?;
        let key = match &settings.session_secret {
            Some(secret) => {
                let bytes = secret.expose_secret().as_bytes();
                Key::try_from(bytes).map_err(|_| {
                    "the session secret (auth.session_secret_env) must be at least 64 bytes"
                        .to_owned()
                })?
            }
            None => Key::generate(),
        };
        let jwks_uri = metadata.jwks_uri().url().to_string();
        let keys = fetch_keys(&http, &jwks_uri).await?;
        let tokens =
            cairn_auth::TokenVerifier::new(&settings.issuer, settings.audiences.clone(), keys);
        Ok(Oidc {
            settings,
            metadata: Arc::new(std::sync::RwLock::new(metadata)),
            key,
            http,
            user_roles: access.user_roles.clone(),
            roles_claim: access.roles_claim.clone(),
            tokens: Arc::new(tokens),
            jwks_uri,
            refetched: Arc::default(),
        })
    }

    /// The provider's issuer URL.
    pub fn issuer(&self) -> &str {
        &self.settings.issuer
    }

    fn redirect_url(&self, headers: &HeaderMap) -> String {
        if !self.settings.redirect_url.is_empty() {
            return self.settings.redirect_url.clone();
        }
        format!("{}/auth/callback", cairn_mcp::http::request_origin(headers))
    }

    fn client(
        &self,
        redirect: String,
    ) -> Result<
        CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
        String,
    > {
        let redirect = RedirectUrl::new(redirect).map_err(|e| e.to_string())?;
        let metadata = self
            .metadata
            .read()
            .map_err(|_| "the provider metadata is unavailable".to_owned())?
            .clone();
        Ok(CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.settings.client_id.clone()),
            self.settings
                .client_secret
                .as_ref()
                .map(|s| ClientSecret::new(s.expose_secret().to_owned())),
        )
        .set_redirect_uri(redirect))
    }

    fn cookie<'c>(
        &self,
        name: &'c str,
        value: String,
        max_age: Duration,
        headers: &HeaderMap,
    ) -> Cookie<'c> {
        let secure = self.redirect_url(headers).starts_with("https://");
        let mut cookie = Cookie::new(name, value);
        cookie.set_http_only(true);
        cookie.set_secure(secure);
        cookie.set_same_site(SameSite::Lax);
        cookie.set_path("/");
        cookie.set_max_age(time_duration(max_age));
        cookie
    }

    /// The session's user, if the cookie is valid and not expired.
    /// The id in a valid (signed) session cookie.
    fn session_id(&self, headers: &HeaderMap) -> Option<uuid::Uuid> {
        let jar = SignedCookieJar::from_headers(headers, self.key.clone());
        jar.get(SESSION_COOKIE)?.value().parse().ok()
    }

    /// The signed-in user of the session the cookie names, unless it was signed out, revoked or
    /// has expired (the record is the catalog's, so this holds on every replica at once).
    pub(crate) async fn session_grant(
        &self,
        headers: &HeaderMap,
        catalog: &dyn cairn_core::Catalog,
    ) -> Option<cairn_auth::Grant> {
        let id = self.session_id(headers)?;
        let session = match catalog.find_active_session(id, chrono::Utc::now()).await {
            Ok(session) => session?,
            Err(error) => {
                tracing::error!(%error, "cannot look up a session; treating the request as signed out");
                return None;
            }
        };
        Some(cairn_auth::Grant::user(
            session.user_id,
            session.name,
            cairn_auth::roles_of(&session.roles),
        ))
    }

    /// `auth.user_roles`, plus the roles the verified token's `auth.roles_claim` names (values
    /// that are not roles are left out).
    fn roles_for(
        &self,
        claims: &serde_json::Value,
    ) -> std::collections::BTreeSet<cairn_auth::Role> {
        let mut roles: std::collections::BTreeSet<cairn_auth::Role> =
            self.user_roles.iter().copied().collect();
        if !self.roles_claim.is_empty() {
            let claimed = cairn_auth::claim_strings(claims, &self.roles_claim);
            roles.extend(cairn_auth::roles_of(&claimed));
        }
        roles
    }

    /// Whether the provider's keys may be fetched again now (at most every [`REFETCH_EVERY`]).
    fn refetch_due(&self) -> bool {
        self.refetched
            .lock()
            .map(|mut last| {
                let due = last.is_none_or(|at| at.elapsed() >= REFETCH_EVERY);
                if due {
                    *last = Some(std::time::Instant::now());
                }
                due
            })
            .unwrap_or(false)
    }

    /// Fetches the provider's keys again for ID-token checks (it rotated them); `false` when it
    /// was too soon or the fetch failed.
    async fn refresh_id_token_keys(&self) -> bool {
        if !self.refetch_due() {
            return false;
        }
        let uri = match self.metadata.read() {
            Ok(metadata) => metadata.jwks_uri().clone(),
            Err(_) => return false,
        };
        match openidconnect::core::CoreJsonWebKeySet::fetch_async(&uri, &self.http).await {
            Ok(keys) => {
                if let Ok(mut metadata) = self.metadata.write() {
                    *metadata = metadata.clone().set_jwks(keys);
                }
                tracing::info!(issuer = %self.settings.issuer, "fetched the provider's keys again to check an ID token");
                true
            }
            Err(error) => {
                tracing::warn!(%error, "cannot fetch the provider's keys again");
                false
            }
        }
    }

    /// The user a bearer token from the provider names, with its roles. A token signed by a key
    /// Cairn has not seen fetches the provider's key set again (it rotated), at most every
    /// [`REFETCH_EVERY`].
    pub(crate) async fn bearer_grant(&self, token: &str) -> Result<cairn_auth::Grant, String> {
        let verified = match self.tokens.verify(token) {
            Err(cairn_auth::TokenError::UnknownKey(kid)) => {
                if !self.refetch_due() {
                    return Err(cairn_auth::TokenError::UnknownKey(kid).to_string());
                }
                let keys = fetch_keys(&self.http, &self.jwks_uri).await?;
                tracing::info!(issuer = %self.settings.issuer, "fetched the provider's keys again for a key it had not published before");
                self.tokens.replace_keys(keys);
                self.tokens.verify(token)
            }
            other => other,
        }
        .map_err(|e| e.to_string())?;
        Ok(cairn_auth::Grant::user(
            verified.subject,
            verified.name,
            self.roles_for(&verified.claims),
        ))
    }
}

/// The provider's published keys.
async fn fetch_keys(http: &ProviderHttp, jwks_uri: &str) -> Result<cairn_auth::JwkSet, String> {
    let response = http
        .0
        .get(jwks_uri)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| format!("cannot fetch the provider's keys from {jwks_uri}: {e}"))?;
    response
        .json()
        .await
        .map_err(|e| format!("the provider's keys at {jwks_uri} are not a JWK set: {e}"))
}

/// The claims of a JWT whose signature was already verified.
fn verified_claims(jwt: &str) -> serde_json::Value {
    use base64::Engine as _;
    jwt.split('.')
        .nth(1)
        .and_then(|payload| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .ok()
        })
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

fn time_duration(duration: Duration) -> cookie::time::Duration {
    cookie::time::Duration::seconds(i64::try_from(duration.as_secs()).unwrap_or(i64::MAX))
}

/// The user a request acts for, as the authentication layer found it: `local` on loopback without
/// sign-in, the session's subject, `key:NAME` for an API key, `anonymous` where authentication is
/// off. Conversations and feedback belong to this id.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub id: String,
    pub name: String,
    pub grant: cairn_auth::Grant,
}

impl<S: Send + Sync> FromRequestParts<S> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let crate::access::Caller(grant) =
            crate::access::Caller::from_request_parts(parts, state).await?;
        let id = match grant.via {
            cairn_auth::Via::Key => format!("key:{}", grant.principal),
            _ => grant.principal.clone(),
        };
        Ok(CurrentUser {
            id,
            name: grant.name.clone(),
            grant,
        })
    }
}

/// `GET /v1/me`: who is signed in, and how to sign in or out.
pub(crate) async fn me(
    State(state): State<AppState>,
    user: CurrentUser,
) -> axum::Json<serde_json::Value> {
    let oidc = state.auth.is_some();
    let roles: Vec<&str> = user.grant.roles().map(cairn_auth::Role::as_str).collect();
    axum::Json(json!({
        "user": user.id, "name": user.name, "roles": roles,
        "auth": if oidc { "oidc" } else { "none" },
        "logout_url": oidc.then_some("/auth/logout"),
    }))
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginQuery {
    #[serde(default)]
    return_to: Option<String>,
}

/// Only paths on this server: `/…`, never `//host` or a URL, so a login link cannot send the
/// user elsewhere. Browsers drop tabs and line breaks from a URL and read `\\` as `/`, so
/// `/<TAB>/evil.example` would become `//evil.example`: a path with any control character,
/// whitespace or backslash is refused too.
fn local_path(return_to: Option<String>) -> String {
    return_to
        .filter(|p| {
            p.starts_with('/')
                && !p.starts_with("//")
                && !p
                    .chars()
                    .any(|c| c == '\\' || c.is_control() || c.is_whitespace())
        })
        .unwrap_or_else(|| "/".into())
}

fn no_oidc() -> Response {
    ApiError::not_found(
        "sign_in_not_configured",
        "sign-in is not configured (set [auth] oidc_issuer); the embedded mode has one local user",
    )
    .into_response()
}

/// `GET /auth/login`: starts the authorization-code flow with PKCE at the provider.
pub(crate) async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<LoginQuery>,
) -> Response {
    let Some(oidc) = state.auth.clone() else {
        return no_oidc();
    };
    let client = match oidc.client(oidc.redirect_url(&headers)) {
        Ok(client) => client,
        Err(e) => return ApiError::internal(format!("bad redirect URL: {e}")).into_response(),
    };
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client.authorize_url(
        CoreAuthenticationFlow::AuthorizationCode,
        CsrfToken::new_random,
        Nonce::new_random,
    );
    for scope in oidc.settings.scopes.iter().filter(|s| *s != "openid") {
        request = request.add_scope(Scope::new(scope.clone()));
    }
    let (url, state_token, nonce) = request.set_pkce_challenge(challenge).url();
    let pending = Pending {
        state: state_token.secret().clone(),
        nonce: nonce.secret().clone(),
        verifier: verifier.secret().clone(),
        return_to: local_path(query.return_to),
        exp: now() + PENDING_TTL.as_secs(),
    };
    let jar = SignedCookieJar::new(oidc.key.clone()).add(oidc.cookie(
        PENDING_COOKIE,
        serde_json::to_string(&pending).unwrap_or_default(),
        PENDING_TTL,
        &headers,
    ));
    (jar, Redirect::to(url.as_str())).into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

fn sign_in_failed(message: String) -> Response {
    tracing::warn!("sign-in failed: {message}");
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "authentication_error",
        "sign_in_failed",
        format!("{message}; start again at /auth/login"),
    )
    .into_response()
}

/// `GET /auth/callback`: finishes the flow (see [`finish_sign_in`]); a failed sign-in is audited
/// (a successful one is, with the user, where the session starts).
pub(crate) async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Query<CallbackQuery>,
) -> Response {
    let response = finish_sign_in(&state, &headers, query).await;
    if response.status() == StatusCode::UNAUTHORIZED {
        crate::audit::record(
            &state,
            cairn_core::catalog::NewAuditEvent {
                actor: "anonymous".into(),
                action: "sign_in".into(),
                target: "/auth/callback".into(),
                outcome: cairn_core::catalog::AuditOutcome::Refused,
                source: "browser".into(),
                detail: json!({"reason": "the sign-in did not complete; the server log says why"}),
            },
        )
        .await;
    }
    response
}

/// Checks the state, exchanges the code with the PKCE verifier, verifies the ID token (signature,
/// issuer, audience, expiry, nonce) and starts a session.
async fn finish_sign_in(
    state: &AppState,
    headers: &HeaderMap,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let headers = headers.clone();
    let Some(oidc) = state.auth.clone() else {
        return no_oidc();
    };
    if let Some(error) = query.error {
        return sign_in_failed(format!(
            "the provider refused the sign-in: {error}{}",
            query
                .error_description
                .map(|d| format!(" ({d})"))
                .unwrap_or_default()
        ));
    }
    let jar = SignedCookieJar::from_headers(&headers, oidc.key.clone());
    let Some(pending) = jar
        .get(PENDING_COOKIE)
        .and_then(|c| serde_json::from_str::<Pending>(c.value()).ok())
        .filter(|p| p.exp > now())
    else {
        return sign_in_failed(
            "no sign-in is in progress in this browser, or it took too long".into(),
        );
    };
    if query.state.as_deref() != Some(pending.state.as_str()) {
        return sign_in_failed("the sign-in response does not match the request (state)".into());
    }
    let Some(code) = query.code else {
        return sign_in_failed("the provider sent no authorization code".into());
    };
    let client = match oidc.client(oidc.redirect_url(&headers)) {
        Ok(client) => client,
        Err(e) => return sign_in_failed(format!("bad redirect URL: {e}")),
    };
    let exchange = match client.exchange_code(AuthorizationCode::new(code)) {
        Ok(exchange) => exchange,
        Err(e) => return sign_in_failed(format!("the provider has no token endpoint: {e}")),
    };
    let tokens = match exchange
        .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier.clone()))
        .request_async(&oidc.http)
        .await
    {
        Ok(tokens) => tokens,
        Err(e) => return sign_in_failed(format!("the code exchange failed: {e}")),
    };
    let Some(id_token) = tokens.id_token() else {
        return sign_in_failed("the provider returned no ID token".into());
    };
    let nonce = Nonce::new(pending.nonce.clone());
    let claims = match id_token.claims(&client.id_token_verifier(), &nonce) {
        Ok(claims) => claims.clone(),
        // The provider may have rotated its keys since Cairn started: fetch them and check again.
        Err(first) => match oidc.refresh_id_token_keys().await {
            true => match oidc.client(oidc.redirect_url(&headers)) {
                Ok(fresh) => match id_token.claims(&fresh.id_token_verifier(), &nonce) {
                    Ok(claims) => claims.clone(),
                    Err(e) => return sign_in_failed(format!("the ID token is not valid: {e}")),
                },
                Err(e) => return sign_in_failed(format!("bad redirect URL: {e}")),
            },
            false => return sign_in_failed(format!("the ID token is not valid: {first}")),
        },
    };
    let sub = claims.subject().as_str().to_owned();
    let name = claims
        .preferred_username()
        .map(|n| n.as_str().to_owned())
        .or_else(|| claims.email().map(|e| e.as_str().to_owned()))
        .unwrap_or_else(|| sub.clone());
    let ttl = chrono::Duration::from_std(oidc.settings.session_ttl)
        .unwrap_or_else(|_| chrono::Duration::hours(8));
    let session = match state
        .catalog
        .create_session(cairn_core::catalog::NewSession {
            roles: oidc
                .roles_for(&verified_claims(&id_token.to_string()))
                .into_iter()
                .map(|r| r.as_str().to_owned())
                .collect(),
            user_id: sub,
            name,
            expires_at: chrono::Utc::now() + ttl,
        })
        .await
    {
        Ok(session) => session,
        Err(e) => return ApiError::from(e).into_response(),
    };
    tracing::info!(user = %session.user_id, "signed in");
    crate::audit::record(
        state,
        cairn_core::catalog::NewAuditEvent {
            actor: format!("user:{}", session.user_id),
            action: "sign_in".into(),
            target: "/auth/callback".into(),
            outcome: cairn_core::catalog::AuditOutcome::Ok,
            source: "browser".into(),
            detail: json!({"name": session.name, "roles": session.roles}),
        },
    )
    .await;
    let jar = jar
        .remove(Cookie::build(PENDING_COOKIE).path("/"))
        .add(oidc.cookie(
            SESSION_COOKIE,
            session.id.to_string(),
            oidc.settings.session_ttl,
            &headers,
        ));
    (jar, Redirect::to(&pending.return_to)).into_response()
}

/// `POST /auth/logout` (or GET): ends the session, in the catalog (so a copy of the cookie is
/// worthless from now on) and in the browser.
pub(crate) async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(oidc) = state.auth.clone() else {
        return no_oidc();
    };
    if let Some(id) = oidc.session_id(&headers) {
        match state.catalog.revoke_session(id).await {
            Ok(true) => tracing::info!(session = %id, "signed out"),
            Ok(false) => {}
            Err(e) => return ApiError::from(e).into_response(),
        }
    }
    let jar = SignedCookieJar::from_headers(&headers, oidc.key.clone())
        .remove(Cookie::build(SESSION_COOKIE).path("/"));
    (jar, Redirect::to("/")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_paths_stay_on_this_server() {
        assert_eq!(local_path(Some("/#c=1".into())), "/#c=1");
        assert_eq!(local_path(Some("//evil.example/".into())), "/");
        assert_eq!(local_path(Some("https://evil.example/".into())), "/");
        assert_eq!(local_path(Some("/\\evil.example".into())), "/");
        assert_eq!(local_path(None), "/");
        // `return_to=/%09/evil.example`, decoded: browsers drop the tab and go to //evil.example.
        for hostile in [
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r//evil.example",
            "/ /evil.example",
        ] {
            assert_eq!(local_path(Some(hostile.into())), "/", "{hostile:?}");
        }
    }
}
