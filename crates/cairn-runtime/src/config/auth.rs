//! `[auth]` (OpenID Connect sign-in for the web UI) and `[mcp]` (the MCP endpoint), validated into
//! [`OidcSettings`].

use super::*;

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
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// The directory `run_eval_suite` reads suites from (`NAME` is `DIR/NAME.yaml`), relative to
    /// the working directory. Empty: the tool refuses every suite.
    pub eval_suites: String,
}

impl Default for McpSection {
    fn default() -> Self {
        McpSection {
            allowed_hosts: Vec::new(),
            resource_url: String::new(),
            authorization_servers: Vec::new(),
            answer_route: String::new(),
            eval_suites: "evals".to_owned(),
        }
    }
}

pub(super) fn auth_config(
    section: &AuthSection,
    env: &[(String, String)],
    bad: &impl Fn(&str, String, &str) -> ConfigError,
) -> Result<Option<OidcSettings>, ConfigError> {
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
        (!var.is_empty())
            .then(|| env_secret(env, var, key, bad))
            .transpose()
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
    Ok(Some(OidcSettings {
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

/// OIDC sign-in, as configured.
#[derive(Debug, Clone)]
pub struct OidcSettings {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<SecretString>,
    /// `https://cairn.example.com/auth/callback`; empty: from each request's Host header.
    pub redirect_url: String,
    pub scopes: Vec<String>,
    pub session_ttl: Duration,
    /// Signs the cookies; shared by replicas. `None`: a random key per process.
    pub session_secret: Option<SecretString>,
}
