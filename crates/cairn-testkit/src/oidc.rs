//! A fake OpenID Connect provider on loopback, for sign-in tests: discovery, an authorization
//! endpoint that signs in whoever `set_user` names (no login page), a token endpoint that checks
//! the PKCE verifier against the challenge, and RS256 ID tokens verifiable with its JWKS; access
//! tokens minted on demand (`access_token`), and a key rotation (`rotate_key`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use openidconnect::core::{
    CoreIdToken, CoreIdTokenClaims, CoreJsonWebKeySet, CoreJwsSigningAlgorithm,
    CoreRsaPrivateSigningKey,
};
use openidconnect::{
    AccessToken, Audience, EmptyAdditionalClaims, EndUserUsername, IssuerUrl, JsonWebKeyId, Nonce,
    PkceCodeChallenge, PkceCodeVerifier, PrivateSigningKey, StandardClaims, SubjectIdentifier,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The client id the fake provider knows.
pub const CLIENT_ID: &str = "cairn-test";

/// 2048-bit RSA keys made for these tests only; they sign nothing else. The provider signs with the
/// first until `rotate_key`, then publishes and signs with the second only.
const TEST_KEYS: [(&str, &str); 2] = [
    ("test", include_str!("oidc-test-key.pem")),
    ("test-2", include_str!("oidc-test-key-2.pem")),
];

/// Claims the fake provider adds to access tokens: the user's roles.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct ExtraClaims {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    roles: Vec<String>,
}

impl openidconnect::AdditionalClaims for ExtraClaims {}

type AccessJwt = openidconnect::IdToken<
    ExtraClaims,
    openidconnect::core::CoreGenderClaim,
    openidconnect::core::CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

#[derive(Debug, Clone)]
struct Issued {
    nonce: String,
    challenge: String,
    redirect_uri: String,
    user: String,
}

#[derive(Debug, Default)]
struct Provider {
    issuer: String,
    user: String,
    codes: HashMap<String, Issued>,
    counter: u64,
    /// PKCE verifications that failed, for tests to assert on.
    rejected: u32,
    /// Which of [`TEST_KEYS`] signs and is published.
    key: usize,
}

type Shared = Arc<Mutex<Provider>>;

/// A running fake provider.
#[derive(Debug)]
pub struct FakeOidc {
    issuer: String,
    provider: Shared,
    _task: tokio::task::JoinHandle<()>,
}

impl FakeOidc {
    /// Serves on a free loopback port; signs in `alice` until `set_user` says otherwise.
    pub async fn start() -> FakeOidc {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake OIDC provider");
        let issuer = format!(
            "http://{}",
            listener.local_addr().expect("the provider's address")
        );
        let provider: Shared = Arc::new(Mutex::new(Provider {
            issuer: issuer.clone(),
            user: "alice".into(),
            ..Provider::default()
        }));
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/jwks", get(jwks))
            .with_state(provider.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeOidc {
            issuer,
            provider,
            _task: task,
        }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Who the next sign-in signs in.
    pub fn set_user(&self, user: &str) {
        if let Ok(mut provider) = self.provider.lock() {
            provider.user = user.to_owned();
        }
    }

    /// Signs and publishes a new key from now on (the old one is no longer published).
    pub fn rotate_key(&self) {
        if let Ok(mut provider) = self.provider.lock() {
            provider.key = 1;
        }
    }

    /// An access token (a JWT signed with the current key) for `user` (subject `sub-USER`), for
    /// `audience`, with `roles`, expiring after `lifetime` (negative: already expired).
    pub fn access_token(
        &self,
        user: &str,
        audience: &str,
        roles: &[&str],
        lifetime: chrono::Duration,
    ) -> String {
        let key = self.provider.lock().map_or(0, |p| p.key);
        let now = chrono::Utc::now();
        let claims = openidconnect::IdTokenClaims::new(
            IssuerUrl::new(self.issuer.clone()).expect("issuer URL"),
            vec![Audience::new(audience.into())],
            now + lifetime,
            now,
            StandardClaims::new(SubjectIdentifier::new(format!("sub-{user}")))
                .set_preferred_username(Some(EndUserUsername::new(user.into()))),
            ExtraClaims {
                roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            },
        );
        AccessJwt::new(
            claims,
            &signing_key(key),
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
            None,
            None,
        )
        .expect("sign the access token")
        .to_string()
    }

    /// How many token requests were refused for a wrong PKCE verifier.
    pub fn pkce_rejections(&self) -> u32 {
        self.provider.lock().map_or(0, |p| p.rejected)
    }
}

fn signing_key(index: usize) -> CoreRsaPrivateSigningKey {
    let (kid, pem) = TEST_KEYS[index];
    CoreRsaPrivateSigningKey::from_pem(pem, Some(JsonWebKeyId::new(kid.into())))
        .expect("the test key parses")
}

async fn discovery(State(provider): State<Shared>) -> Json<serde_json::Value> {
    let issuer = provider
        .lock()
        .map(|p| p.issuer.clone())
        .unwrap_or_default();
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": ["openid", "profile", "email"],
    }))
}

#[derive(Debug, Deserialize)]
struct AuthorizeQuery {
    response_type: String,
    client_id: String,
    redirect_uri: String,
    scope: String,
    state: String,
    nonce: String,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

async fn authorize(State(provider): State<Shared>, Query(q): Query<AuthorizeQuery>) -> Response {
    if q.response_type != "code"
        || q.client_id != CLIENT_ID
        || !q.scope.split(' ').any(|s| s == "openid")
    {
        return (StatusCode::BAD_REQUEST, "bad authorization request").into_response();
    }
    let (Some(challenge), Some("S256")) = (q.code_challenge, q.code_challenge_method.as_deref())
    else {
        return (StatusCode::BAD_REQUEST, "PKCE with S256 is required").into_response();
    };
    let Ok(mut provider) = provider.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    provider.counter += 1;
    let code = format!("code-{}", provider.counter);
    let user = provider.user.clone();
    provider.codes.insert(
        code.clone(),
        Issued {
            nonce: q.nonce,
            challenge,
            redirect_uri: q.redirect_uri.clone(),
            user,
        },
    );
    let separator = if q.redirect_uri.contains('?') {
        '&'
    } else {
        '?'
    };
    Redirect::to(&format!(
        "{}{separator}code={code}&state={}",
        q.redirect_uri, q.state
    ))
    .into_response()
}

#[derive(Debug, Deserialize)]
struct TokenForm {
    grant_type: String,
    code: String,
    redirect_uri: String,
    code_verifier: Option<String>,
}

async fn token(State(provider): State<Shared>, Form(form): Form<TokenForm>) -> Response {
    let error =
        |code: &str| (StatusCode::BAD_REQUEST, Json(json!({"error": code}))).into_response();
    let Ok(mut provider) = provider.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    if form.grant_type != "authorization_code" {
        return error("unsupported_grant_type");
    }
    let Some(issued) = provider.codes.remove(&form.code) else {
        return error("invalid_grant");
    };
    let verified = form.code_verifier.is_some_and(|verifier| {
        PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(verifier)).as_str()
            == issued.challenge
    });
    if !verified || form.redirect_uri != issued.redirect_uri {
        provider.rejected += 1;
        return error("invalid_grant");
    }
    let now = chrono::Utc::now();
    let claims = CoreIdTokenClaims::new(
        IssuerUrl::new(provider.issuer.clone()).expect("issuer URL"),
        vec![Audience::new(CLIENT_ID.into())],
        now + chrono::Duration::minutes(5),
        now,
        StandardClaims::new(SubjectIdentifier::new(format!("sub-{}", issued.user)))
            .set_preferred_username(Some(EndUserUsername::new(issued.user.clone()))),
        EmptyAdditionalClaims {},
    )
    .set_nonce(Some(Nonce::new(issued.nonce)));
    let access = AccessToken::new(format!("access-{}", form.code));
    let id_token = CoreIdToken::new(
        claims,
        &signing_key(provider.key),
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        Some(&access),
        None,
    )
    .expect("sign the ID token");
    Json(json!({
        "access_token": access.secret(),
        "token_type": "Bearer",
        "expires_in": 300,
        "id_token": id_token.to_string(),
    }))
    .into_response()
}

async fn jwks(State(provider): State<Shared>) -> Json<CoreJsonWebKeySet> {
    let key = provider.lock().map_or(0, |p| p.key);
    Json(CoreJsonWebKeySet::new(vec![
        signing_key(key).as_verification_key(),
    ]))
}
