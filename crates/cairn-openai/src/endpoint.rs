//! Where a model lives and how to authenticate: the async-openai `Config` for each kind of server.

use std::time::Duration;

use async_openai::Client;
use async_openai::config::Config;
use async_openai::middleware::ReqwestService;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use secrecy::{ExposeSecret, SecretString};

/// How requests authenticate.
#[derive(Debug, Clone)]
pub enum Auth {
    /// No credentials (a local vLLM or Ollama, say).
    None,
    /// `Authorization: Bearer …`: OpenAI and most compatible servers, or an Entra ID access token for
    /// Azure OpenAI.
    Bearer(SecretString),
    /// `api-key: …`: Azure OpenAI keys.
    AzureApiKey(SecretString),
}

/// A server that speaks the OpenAI API.
#[derive(Debug, Clone)]
pub enum Endpoint {
    /// api.openai.com, or any server with the same paths under `base_url` (e.g. `http://vllm:8000/v1`).
    OpenAi { base_url: String, auth: Auth },
    /// An Azure OpenAI deployment: `{resource_url}/openai/deployments/{deployment}/…?api-version=…`.
    Azure {
        resource_url: String,
        deployment: String,
        api_version: String,
        auth: Auth,
    },
}

/// Connection and read timeouts. There is no total deadline here: a long stream is fine as long as
/// bytes keep arriving; the gateway enforces request deadlines.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    pub read: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            read: Duration::from_secs(120),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error("invalid endpoint URL `{url}`: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("the credential contains characters that cannot be sent in an HTTP header")]
    InvalidCredential,
    #[error("cannot build the HTTP client: {0}")]
    Http(String),
}

/// The async-openai `Config` for an [`Endpoint`]. Written here rather than using the crate's own
/// configs because those read `OPENAI_*` environment variables and panic on an unusable key.
#[derive(Debug, Clone)]
pub(crate) struct EndpointConfig {
    base: String,
    deployment: Option<String>,
    api_version: Option<String>,
    headers: HeaderMap,
    /// What `Config::api_key` returns; the credential actually sent is in `headers`.
    key: SecretString,
}

impl EndpointConfig {
    pub(crate) fn new(endpoint: &Endpoint) -> Result<Self, EndpointError> {
        let (base, deployment, api_version, auth) = match endpoint {
            Endpoint::OpenAi { base_url, auth } => (base_url, None, None, auth),
            Endpoint::Azure {
                resource_url,
                deployment,
                api_version,
                auth,
            } => (
                resource_url,
                Some(deployment.clone()),
                Some(api_version.clone()),
                auth,
            ),
        };
        let parsed = reqwest::Url::parse(base).map_err(|e| EndpointError::InvalidUrl {
            url: base.clone(),
            reason: e.to_string(),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(EndpointError::InvalidUrl {
                url: base.clone(),
                reason: "use http:// or https://".into(),
            });
        }
        let mut headers = HeaderMap::new();
        let key = match auth {
            Auth::None => SecretString::from(String::new()),
            Auth::Bearer(token) => {
                let value = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
                    .map_err(|_| EndpointError::InvalidCredential)?;
                headers.insert(AUTHORIZATION, sensitive(value));
                token.clone()
            }
            Auth::AzureApiKey(key) => {
                let value = HeaderValue::from_str(key.expose_secret())
                    .map_err(|_| EndpointError::InvalidCredential)?;
                headers.insert("api-key", sensitive(value));
                key.clone()
            }
        };
        Ok(EndpointConfig {
            base: base.trim_end_matches('/').to_owned(),
            deployment,
            api_version,
            headers,
            key,
        })
    }

    /// A client that makes exactly one attempt per call.
    pub(crate) fn client(
        self,
        timeouts: Timeouts,
    ) -> Result<Client<EndpointConfig>, EndpointError> {
        let http = reqwest::Client::builder()
            .connect_timeout(timeouts.connect)
            .read_timeout(timeouts.read)
            .build()
            .map_err(|e| EndpointError::Http(e.to_string()))?;
        Ok(
            Client::build(http.clone(), self).with_http_service(
                crate::retry_after::ReadRetryAfter(ReqwestService::new(http)),
            ),
        )
    }
}

fn sensitive(mut value: HeaderValue) -> HeaderValue {
    value.set_sensitive(true);
    value
}

impl Config for EndpointConfig {
    fn headers(&self) -> HeaderMap {
        self.headers.clone()
    }

    fn url(&self, path: &str) -> String {
        match &self.deployment {
            Some(deployment) => format!("{}/openai/deployments/{deployment}{path}", self.base),
            None => format!("{}{path}", self.base),
        }
    }

    fn query(&self) -> Vec<(&str, &str)> {
        self.api_version
            .as_deref()
            .map(|version| vec![("api-version", version)])
            .unwrap_or_default()
    }

    fn api_base(&self) -> &str {
        &self.base
    }

    fn api_key(&self) -> &SecretString {
        &self.key
    }
}
