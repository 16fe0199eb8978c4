//! `[[models]]` and `[[routes]]`: the models Cairn calls and the routes over them, resolved into
//! [`ModelConfig`]s; and the embedded default chat model and app when none are configured.

use super::*;

/// Which API a model speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProviderKind {
    /// api.openai.com.
    Openai,
    /// An Azure OpenAI deployment.
    Azure,
    /// Any server with OpenAI's API: vLLM, TGI, Ollama, mistralrs-server, a gateway in front of them.
    OpenaiCompatible,
    /// In this process, through mistral.rs: a GGUF file, a safetensors directory or a hub id.
    Local,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// What clients put in `"model"`, and what routes list as targets.
    pub name: String,
    pub provider: ProviderKind,
    /// OpenAI: defaults to https://api.openai.com/v1. Compatible servers: their `/v1` base URL.
    /// Azure: the resource endpoint, https://NAME.openai.azure.com.
    #[serde(default)]
    pub base_url: Option<String>,
    /// The upstream model name (defaults to `name`); on Azure, the deployment name.
    #[serde(default)]
    pub model: Option<String>,
    /// Local models: a `.gguf` file, a safetensors directory, or a Hugging Face model id.
    #[serde(default)]
    pub path: Option<String>,
    /// Azure only.
    #[serde(default)]
    pub api_version: Option<String>,
    /// The environment variable holding the API key (sent as a bearer token, or as `api-key` on Azure).
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Azure only: the environment variable holding an Entra ID access token, instead of a key.
    #[serde(default)]
    pub bearer_token_env: Option<String>,
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: u64,
    /// The longest silence tolerated while reading an answer.
    #[serde(default = "default_read_timeout")]
    pub read_timeout_secs: u64,
    /// Consecutive failures that take the model out of rotation (its circuit opens) ...
    #[serde(default = "default_breaker_failures")]
    pub breaker_failures: u32,
    /// ... for this long, after which one trial call decides.
    #[serde(default = "default_breaker_cool_down")]
    pub breaker_cool_down_secs: u64,
    /// Prices in US dollars per million tokens, for cost accounting (lineage `cost_usd`, the
    /// `x-cairn-cost-usd` header, metrics). Unset: the cost is not known; local models cost 0.
    #[serde(default)]
    pub input_price_per_mtok: Option<f64>,
    /// Input tokens served from the provider's prompt cache; default: the input price.
    #[serde(default)]
    pub cached_input_price_per_mtok: Option<f64>,
    #[serde(default)]
    pub output_price_per_mtok: Option<f64>,
    /// Reasoning tokens, which providers count among the output tokens; default: the output price.
    #[serde(default)]
    pub reasoning_price_per_mtok: Option<f64>,
}

pub(super) fn default_connect_timeout() -> u64 {
    10
}

pub(super) fn default_read_timeout() -> u64 {
    120
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSection {
    /// What clients put in `"model"` to use the route.
    pub name: String,
    /// Model names, in order of preference.
    pub targets: Vec<String>,
    #[serde(default = "default_attempts")]
    pub attempts_per_target: u32,
    /// The whole call, retries included (for streams: until the first token).
    #[serde(default = "default_deadline")]
    pub deadline_secs: u64,
    /// Which target goes first: `ordered` (as listed), `weighted` (drawn by `weights`, for a
    /// canary) or `latency` (the lowest moving-average latency). The others follow as fallbacks.
    #[serde(default)]
    pub strategy: RouteStrategy,
    /// With `strategy = "weighted"`: one weight per target, e.g. `[95, 5]`.
    #[serde(default)]
    pub weights: Vec<u32>,
    /// A model that gets a copy of the requests; its answers never reach clients and are stored
    /// next to theirs for comparison (`GET /v1/routes/NAME/shadow`).
    #[serde(default)]
    pub shadow: Option<String>,
    /// The fraction of requests copied to the shadow.
    #[serde(default = "default_shadow_sample")]
    pub shadow_sample: f64,
    /// The guardrails (`[[guards]]` names) that check calls to this route, in order.
    #[serde(default)]
    pub guards: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteStrategy {
    #[default]
    Ordered,
    Weighted,
    Latency,
}

pub(super) fn default_shadow_sample() -> f64 {
    1.0
}

pub(super) fn default_attempts() -> u32 {
    2
}

pub(super) fn default_deadline() -> u64 {
    60
}

pub(super) fn default_breaker_failures() -> u32 {
    5
}

pub(super) fn default_breaker_cool_down() -> u64 {
    30
}

/// A model ready to build: where it is, what it is called there, how long to wait.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    pub name: String,
    pub backend: ModelBackend,
    pub breaker: cairn_gateway::BreakerSettings,
    /// `None`: the cost of its calls is not known.
    pub pricing: Option<cairn_gateway::Pricing>,
}

/// How a model is reached.
#[derive(Debug, Clone)]
pub enum ModelBackend {
    Remote {
        endpoint: cairn_openai::Endpoint,
        upstream_model: String,
        timeouts: cairn_openai::Timeouts,
    },
    Local(cairn_local::LocalModelSource),
    /// A local model loaded when it is first called: the embedded default chat model, so that a
    /// server that never chats never pays for loading it.
    LocalOnFirstUse(cairn_local::LocalModelSource),
}

/// The chat model of the embedded default: the SmolLM2 GGUF that scripts/fetch-models.sh caches,
/// else the hub's SmolLM2-360M-Instruct (downloaded on first use).
pub(super) const DEFAULT_LOCAL_CHAT: &str = ".cache/cairn-models/smollm2-135m-instruct-q4_1.gguf";
pub(super) const DEFAULT_HUB_CHAT: &str = "HuggingFaceTB/SmolLM2-360M-Instruct";

/// With no models, routes or apps configured, the embedded mode still chats: a local model named
/// `local`, loaded on first use, and an app `chat` that answers from every collection.
pub(super) fn embedded_chat(env: &[(String, String)]) -> (Vec<ModelConfig>, Vec<AppSection>) {
    let cached = env
        .iter()
        .find(|(k, _)| k == "HOME")
        .map(|(_, home)| Path::new(home).join(DEFAULT_LOCAL_CHAT))
        .filter(|path| path.is_file());
    let source = match cached {
        Some(path) => cairn_local::LocalModelSource::Gguf(path),
        None => cairn_local::LocalModelSource::Hub(DEFAULT_HUB_CHAT.into()),
    };
    let model = ModelConfig {
        name: "local".into(),
        backend: ModelBackend::LocalOnFirstUse(source),
        breaker: cairn_gateway::BreakerSettings::default(),
        pricing: Some(cairn_gateway::Pricing::default()),
    };
    let app = AppSection {
        name: "chat".into(),
        description: "Answers from every collection".into(),
        collections: vec![ALL_COLLECTIONS.into()],
        prompt: default_app_prompt(),
        route: "local".into(),
        // The default model reads ~10 prompt tokens/s on a 2-core CPU (docs/benchmarks.md): a
        // shorter context and answer keep a first answer to a minute or two.
        top_k: 4,
        context_tokens: 600,
        max_tokens: Some(256),
        guards: vec!["pii".into(), "injection".into()],
    };
    (vec![model], vec![app])
}

/// Checks `[[models]]` and `[[routes]]` and resolves the models. Models and routes share one
/// namespace, since clients name either in `"model"`.
pub(super) fn model_configs(
    raw: &RawConfig,
    env: &[(String, String)],
    bad: &impl Fn(&str, String, &str) -> ConfigError,
) -> Result<Vec<ModelConfig>, ConfigError> {
    let mut names: Vec<&str> = Vec::new();
    let mut models = Vec::new();
    for (index, model) in raw.models.iter().enumerate() {
        let key = |field: &str| format!("models[{index}].{field}");
        cairn_core::catalog::validate_name("model", &model.name)
            .map_err(|e| bad(&key("name"), e.to_string(), "rename it"))?;
        if names.contains(&model.name.as_str()) {
            return Err(bad(
                &key("name"),
                format!("model `{}` is defined twice", model.name),
                "give each model a unique name",
            ));
        }
        names.push(&model.name);
        models.push(model_config(model, &key, env, bad)?);
    }
    for (index, route) in raw.routes.iter().enumerate() {
        let key = |field: &str| format!("routes[{index}].{field}");
        cairn_core::catalog::validate_name("route", &route.name)
            .map_err(|e| bad(&key("name"), e.to_string(), "rename it"))?;
        if names.contains(&route.name.as_str()) {
            return Err(bad(
                &key("name"),
                format!("`{}` is already the name of a model or route", route.name),
                "model and route names share one namespace: rename one",
            ));
        }
        names.push(&route.name);
        check_route(route, &raw.models, &key, bad)?;
    }
    Ok(models)
}

/// One `[[models]]` entry, its name already checked: prices, breaker, and how it is reached.
fn model_config(
    model: &ModelSection,
    key: &impl Fn(&str) -> String,
    env: &[(String, String)],
    bad: &impl Fn(&str, String, &str) -> ConfigError,
) -> Result<ModelConfig, ConfigError> {
    let breaker = cairn_gateway::BreakerSettings {
        failure_threshold: model.breaker_failures.max(1),
        cool_down: Duration::from_secs(model.breaker_cool_down_secs),
    };
    let pricing = model_pricing(model, key, bad)?;
    if model.provider != ProviderKind::Local && model.path.is_some() {
        return Err(bad(
            &key("path"),
            "`path` is for local models".into(),
            "remove it, or set provider = \"local\"",
        ));
    }
    let upstream_model = model.model.clone().unwrap_or_else(|| model.name.clone());
    // Checked for every provider, local ones included: a variable that is named must be set.
    let key_secret = model_secret(&model.api_key_env, &key("api_key_env"), env, bad)?;
    let endpoint = match model.provider {
        ProviderKind::Local => {
            return Ok(ModelConfig {
                name: model.name.clone(),
                backend: ModelBackend::Local(local_source(model, key, env, bad)?),
                breaker,
                pricing: Some(pricing.unwrap_or_default()),
            });
        }
        ProviderKind::Openai | ProviderKind::OpenaiCompatible => {
            openai_endpoint(model, key_secret, key, bad)?
        }
        ProviderKind::Azure => azure_endpoint(model, &upstream_model, key_secret, key, env, bad)?,
    };
    Ok(ModelConfig {
        name: model.name.clone(),
        backend: remote_backend(model, endpoint, upstream_model, key, bad)?,
        breaker,
        pricing,
    })
}

/// The secret in the environment variable `var` names, if the config names one.
fn model_secret(
    var: &Option<String>,
    key: &str,
    env: &[(String, String)],
    bad: &impl Fn(&str, String, &str) -> ConfigError,
) -> Result<Option<SecretString>, ConfigError> {
    var.as_deref()
        .map(|var| env_secret(env, var, key, bad))
        .transpose()
}

/// A model's prices: none at all (cost unknown), or at least input and output, all non-negative.
fn model_pricing(
    model: &ModelSection,
    key: &impl Fn(&str) -> String,
    bad: &impl Fn(&str, String, &str) -> ConfigError,
) -> Result<Option<cairn_gateway::Pricing>, ConfigError> {
    let cached = model.cached_input_price_per_mtok;
    let reasoning = model.reasoning_price_per_mtok;
    match (
        model.input_price_per_mtok,
        model.output_price_per_mtok,
        cached.or(reasoning),
    ) {
        (None, None, None) => Ok(None),
        (Some(input), Some(output), _) => {
            if [
                input,
                output,
                cached.unwrap_or(input),
                reasoning.unwrap_or(output),
            ]
            .iter()
            .any(|p| !p.is_finite() || *p < 0.0)
            {
                return Err(bad(
                    &key("input_price_per_mtok"),
                    "a price is negative or not a number".into(),
                    "give prices in US dollars per million tokens, e.g. 2.5",
                ));
            }
            Ok(Some(cairn_gateway::Pricing {
                input_per_mtok: input,
                cached_input_per_mtok: cached.unwrap_or(input),
                output_per_mtok: output,
                reasoning_per_mtok: reasoning,
            }))
        }
        _ => Err(bad(
            &key("output_price_per_mtok"),
            "only some of the prices are set".into(),
            "set both input_price_per_mtok and output_price_per_mtok (and optionally cached_input_price_per_mtok and reasoning_price_per_mtok)",
        )),
    }
}

/// A local model's weights: a GGUF file must exist now; a directory or hub id is read on load.
fn local_source(
    model: &ModelSection,
    key: &impl Fn(&str) -> String,
    env: &[(String, String)],
    bad: &impl Fn(&str, String, &str) -> ConfigError,
) -> Result<cairn_local::LocalModelSource, ConfigError> {
    let path = model.path.as_deref().ok_or_else(|| {
        bad(
            &key("path"),
            "a local model needs `path`".into(),
            "give a .gguf file, a safetensors directory or a Hugging Face model id",
        )
    })?;
    let path = expand_home(path, env);
    let source = cairn_local::LocalModelSource::from_path_or_id(&path);
    if let cairn_local::LocalModelSource::Gguf(file) = &source
        && !file.is_file()
    {
        return Err(bad(
            &key("path"),
            format!("{} does not exist", file.display()),
            "correct the path, or fetch the model first",
        ));
    }
    Ok(source)
}

/// api.openai.com or a server with its API: a base URL and an optional bearer key.
fn openai_endpoint(
    model: &ModelSection,
    key_secret: Option<SecretString>,
    key: &impl Fn(&str) -> String,
    bad: &impl Fn(&str, String, &str) -> ConfigError,
) -> Result<cairn_openai::Endpoint, ConfigError> {
    if model.api_version.is_some() || model.bearer_token_env.is_some() {
        return Err(bad(
            &key("api_version"),
            "api_version and bearer_token_env are for Azure only".into(),
            "remove them, or set provider = \"azure\"",
        ));
    }
    let base_url = match (model.provider, &model.base_url) {
        (_, Some(url)) => url.clone(),
        (ProviderKind::Openai, None) => "https://api.openai.com/v1".to_owned(),
        _ => {
            return Err(bad(
                &key("base_url"),
                "an OpenAI-compatible model needs its server's base URL".into(),
                "set base_url, e.g. \"http://vllm:8000/v1\"",
            ));
        }
    };
    let auth = key_secret.map_or(cairn_openai::Auth::None, cairn_openai::Auth::Bearer);
    Ok(cairn_openai::Endpoint::OpenAi { base_url, auth })
}

/// An Azure OpenAI deployment: resource endpoint, API version, and a key or an Entra ID token.
fn azure_endpoint(
    model: &ModelSection,
    deployment: &str,
    key_secret: Option<SecretString>,
    key: &impl Fn(&str) -> String,
    env: &[(String, String)],
    bad: &impl Fn(&str, String, &str) -> ConfigError,
) -> Result<cairn_openai::Endpoint, ConfigError> {
    use cairn_openai::Auth;
    let resource_url = model.base_url.clone().ok_or_else(|| {
        bad(
            &key("base_url"),
            "an Azure model needs its resource endpoint".into(),
            "set base_url = \"https://NAME.openai.azure.com\"",
        )
    })?;
    let api_version = model.api_version.clone().ok_or_else(|| {
        bad(
            &key("api_version"),
            "an Azure model needs an API version".into(),
            "set api_version, e.g. \"2024-10-21\"",
        )
    })?;
    let token_secret = model_secret(&model.bearer_token_env, &key("bearer_token_env"), env, bad)?;
    let auth = match (key_secret, token_secret) {
        (Some(api_key), None) => Auth::AzureApiKey(api_key),
        (None, Some(token)) => Auth::Bearer(token),
        _ => {
            return Err(bad(
                &key("api_key_env"),
                "an Azure model needs exactly one of api_key_env and bearer_token_env".into(),
                "name the variable holding the key, or the Entra ID token",
            ));
        }
    };
    Ok(cairn_openai::Endpoint::Azure {
        resource_url,
        deployment: deployment.to_owned(),
        api_version,
        auth,
    })
}

/// A model behind HTTP, its client built once now to check the URL and the credential.
fn remote_backend(
    model: &ModelSection,
    endpoint: cairn_openai::Endpoint,
    upstream_model: String,
    key: &impl Fn(&str) -> String,
    bad: &impl Fn(&str, String, &str) -> ConfigError,
) -> Result<ModelBackend, ConfigError> {
    // Building the client checks the URL and the credential's characters now, not at the first call.
    cairn_openai::OpenAiChatModel::new(
        &endpoint,
        &upstream_model,
        cairn_openai::Timeouts::default(),
    )
    .map_err(|e| {
        bad(
            &key("base_url"),
            e.to_string(),
            "use an http:// or https:// URL and a plain-text key",
        )
    })?;
    let timeouts = cairn_openai::Timeouts {
        connect: Duration::from_secs(model.connect_timeout_secs.max(1)),
        read: Duration::from_secs(model.read_timeout_secs.max(1)),
    };
    Ok(ModelBackend::Remote {
        endpoint,
        upstream_model,
        timeouts,
    })
}

/// One `[[routes]]` entry, its name already checked: targets and shadow name models, and the
/// strategy, attempts and shadow sample make sense.
fn check_route(
    route: &RouteSection,
    models: &[ModelSection],
    key: &impl Fn(&str) -> String,
    bad: &impl Fn(&str, String, &str) -> ConfigError,
) -> Result<(), ConfigError> {
    if route.targets.is_empty() {
        return Err(bad(
            &key("targets"),
            "a route needs at least one target".into(),
            "list model names, best first",
        ));
    }
    for target in &route.targets {
        check_model_named(models, target, &key("targets"), bad)?;
    }
    if let Some(shadow) = &route.shadow {
        check_model_named(models, shadow, &key("shadow"), bad)?;
    }
    if route.attempts_per_target == 0 {
        return Err(bad(
            &key("attempts_per_target"),
            "0 attempts would never call the model".into(),
            "use 1 for no retries",
        ));
    }
    let weighted = route.strategy == RouteStrategy::Weighted;
    if weighted
        && (route.weights.len() != route.targets.len() || route.weights.iter().all(|w| *w == 0))
    {
        return Err(bad(
            &key("weights"),
            format!(
                "{} weights for {} targets",
                route.weights.len(),
                route.targets.len()
            ),
            "give one weight per target, not all 0, e.g. weights = [95, 5]",
        ));
    }
    if !weighted && !route.weights.is_empty() {
        return Err(bad(
            &key("weights"),
            "weights are only read by the weighted strategy".into(),
            "set strategy = \"weighted\", or remove weights",
        ));
    }
    if !(0.0..=1.0).contains(&route.shadow_sample) {
        return Err(bad(
            &key("shadow_sample"),
            format!("{} is not a fraction", route.shadow_sample),
            "use a number from 0 to 1, e.g. 0.1 for one request in ten",
        ));
    }
    Ok(())
}

/// A route's target or shadow must name a model; a name that is none gets the list of models.
fn check_model_named(
    models: &[ModelSection],
    name: &str,
    key: &str,
    bad: &impl Fn(&str, String, &str) -> ConfigError,
) -> Result<(), ConfigError> {
    if models.iter().any(|m| m.name == name) {
        return Ok(());
    }
    let known: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
    Err(bad(
        key,
        format!("no model is named `{name}`"),
        &format!(
            "use one of: {}",
            if known.is_empty() {
                "(no models defined)".to_owned()
            } else {
                known.join(", ")
            }
        ),
    ))
}
