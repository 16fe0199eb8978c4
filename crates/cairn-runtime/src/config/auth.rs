//! `[auth]` (who may call: the authentication mode, OpenID Connect sign-in for the web UI, the roles
//! of signed-in users) and `[mcp]` (the MCP endpoint), validated into [`AccessPolicy`] and
//! [`OidcSettings`].

use super::*;

/// How callers are authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// `required` when an OIDC issuer is configured, else `local`.
    #[default]
    Auto,
    /// No sign-in: every request is the local user, and the server listens on loopback only.
    Local,
    /// Every route but the probes, static assets and sign-in needs an API key or a session.
    Required,
    /// No authentication on any address: the operator's explicit choice, warned about at start.
    None,
}

/// Who may call, as the one authentication layer of the server applies it.
#[derive(Debug, Clone)]
pub struct AccessPolicy {
    /// `Auto` resolved: `Local`, `Required` or `None`.
    pub mode: AuthMode,
    /// `Host` names (or `host:port`) accepted besides the loopback names, against DNS rebinding.
    pub allowed_hosts: Vec<String>,
    /// Roles every signed-in user holds.
    pub user_roles: Vec<cairn_auth::Role>,
    /// The ID-token claim listing more roles for a user; empty: none read.
    pub roles_claim: String,
    /// Whether `/metrics` needs the admin role.
    pub protect_metrics: bool,
    /// Web origins (`https://chat.example.com`) whose pages may call the API from a browser with
    /// a key or token (CORS); `*` for any. Session cookies stay same-site only.
    pub cors_origins: Vec<String>,
}

impl AccessPolicy {
    /// Whether the server may listen on `addr` under this policy: without authentication only
    /// loopback addresses, unless the operator chose `auth.mode = "none"`.
    pub fn check_listen(&self, addr: SocketAddr) -> Result<(), String> {
        if self.mode == AuthMode::Local && !addr.ip().is_loopback() {
            return Err(format!(
                "server.listen is {addr}, which other machines can reach, and nobody has to sign in \
                 (auth.mode is local): set [auth] mode = \"required\" and give callers API keys \
                 (`cairn key create`) or OIDC sign-in (auth.oidc_issuer); or listen on 127.0.0.1; \
                 or, to serve without authentication on purpose, set [auth] mode = \"none\""
            ));
        }
        Ok(())
    }
}

/// Who may call, and sign-in for the web UI.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSection {
    /// `auto`, `local`, `required` or `none` (see [`AuthMode`]).
    pub mode: AuthMode,
    /// Roles every signed-in user holds.
    pub user_roles: Vec<String>,
    /// The ID-token claim (a list of strings) naming more roles for a user; empty: none.
    pub roles_claim: String,
    /// Whether `/metrics` needs an admin key.
    pub protect_metrics: bool,
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
    /// Audiences accepted in the provider's bearer tokens on the API and `/mcp`. Empty: the client
    /// id.
    pub token_audiences: Vec<String>,
    /// The environment variable holding the key that signs session cookies (64 bytes or more),
    /// shared by replicas. Empty: a random key per process (sessions end at restart).
    pub session_secret_env: String,
    pub session_ttl_secs: u64,
}

impl Default for AuthSection {
    fn default() -> Self {
        AuthSection {
            mode: AuthMode::Auto,
            user_roles: vec!["read".into()],
            roles_claim: "roles".into(),
            protect_metrics: false,
            oidc_issuer: String::new(),
            oidc_client_id: String::new(),
            oidc_client_secret_env: String::new(),
            oidc_redirect_url: String::new(),
            oidc_scopes: vec!["openid".into(), "profile".into(), "email".into()],
            token_audiences: Vec::new(),
            session_secret_env: String::new(),
            session_ttl_secs: 8 * 3600,
        }
    }
}

/// The MCP tool server (`/mcp` over streamable HTTP, `cairn mcp` over stdio).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct McpSection {
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
            resource_url: String::new(),
            authorization_servers: Vec::new(),
            answer_route: String::new(),
            eval_suites: "evals".to_owned(),
        }
    }
}

/// `[auth]` and `[server] allowed_hosts` into the policy the server's authentication layer applies.
pub(super) fn access_policy(
    section: &AuthSection,
    server: &super::ServerSection,
    bad: &impl Fn(&str, String, &str) -> ConfigError,
) -> Result<AccessPolicy, ConfigError> {
    let allowed_hosts = &server.allowed_hosts;
    if let Some(origin) = server.cors_origins.iter().find(|o| !is_origin(o)) {
        return Err(bad(
            "server.cors_origins",
            format!("`{origin}` is not a web origin"),
            "write scheme, host and port only, e.g. \"https://chat.example.com\" or \"http://localhost:3000\", or \"*\" for any",
        ));
    }
    let oidc = !section.oidc_issuer.is_empty();
    let mode = match section.mode {
        AuthMode::Auto if oidc => AuthMode::Required,
        AuthMode::Auto => AuthMode::Local,
        AuthMode::Local if oidc => {
            return Err(bad(
                "auth.mode",
                "`local` has no sign-in, but auth.oidc_issuer is set".into(),
                "set auth.mode = \"required\" (or remove it), or remove auth.oidc_issuer",
            ));
        }
        mode => mode,
    };
    let user_roles = section
        .user_roles
        .iter()
        .map(|name| cairn_auth::Role::parse(name))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|problem| {
            bad(
                "auth.user_roles",
                problem,
                "list roles by name, e.g. [\"read\"]",
            )
        })?;
    if let Some(host) = allowed_hosts
        .iter()
        .find(|h| h.is_empty() || h.contains('/') || h.contains("://"))
    {
        return Err(bad(
            "server.allowed_hosts",
            format!("`{host}` is not a host name"),
            "list names as the Host header carries them, e.g. \"cairn.example.com\" or \"cairn.example.com:8443\"",
        ));
    }
    Ok(AccessPolicy {
        mode,
        allowed_hosts: allowed_hosts.to_vec(),
        user_roles,
        roles_claim: section.roles_claim.trim().to_owned(),
        protect_metrics: section.protect_metrics,
        cors_origins: server.cors_origins.clone(),
    })
}

/// `*`, or `http(s)://host[:port]` with nothing after it.
fn is_origin(text: &str) -> bool {
    if text == "*" {
        return true;
    }
    let Some((scheme, rest)) = text.split_once("://") else {
        return false;
    };
    matches!(scheme, "http" | "https") && !rest.is_empty() && !rest.contains(['/', '?', '#', ' '])
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
        audiences: if section.token_audiences.is_empty() {
            vec![section.oidc_client_id.clone()]
        } else {
            section.token_audiences.clone()
        },
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
    /// Audiences accepted in bearer tokens (the client id unless configured).
    pub audiences: Vec<String>,
    pub session_ttl: Duration,
    /// Signs the cookies; shared by replicas. `None`: a random key per process.
    pub session_secret: Option<SecretString>,
}
