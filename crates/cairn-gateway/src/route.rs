//! A route: targets tried in an order its [`Strategy`] chooses per call (as configured, drawn by
//! weight for a canary, or fastest first), retries with jittered backoff, fallback, a total
//! deadline, and an optional [`Shadow`] target that gets a copy of the request.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use backon::{BackoffBuilder, ExponentialBuilder};
use cairn_core::model::{
    ChatChunk, ChatModel, ChatRequest, ChatResponse, ChatStream, ModelError, Usage,
};
use futures_util::StreamExt;

use crate::breaker::{BreakerSettings, CircuitBreaker};

/// A model's prices, in US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Pricing {
    pub input_per_mtok: f64,
    /// Input tokens the provider served from its prompt cache.
    pub cached_input_per_mtok: f64,
    pub output_per_mtok: f64,
    /// Reasoning tokens (part of the output count); `None`: the output price.
    pub reasoning_per_mtok: Option<f64>,
}

impl Pricing {
    /// What a call with this usage cost. Cached input tokens are part of the input count, and
    /// reasoning tokens part of the output count, as OpenAI reports them.
    pub fn cost(&self, usage: &Usage) -> f64 {
        let cached = f64::from(usage.cached_input_tokens.min(usage.input_tokens));
        let fresh = f64::from(usage.input_tokens) - cached;
        let reasoning = f64::from(usage.reasoning_tokens.min(usage.output_tokens));
        let answer = f64::from(usage.output_tokens) - reasoning;
        (fresh * self.input_per_mtok
            + cached * self.cached_input_per_mtok
            + answer * self.output_per_mtok
            + reasoning * self.reasoning_per_mtok.unwrap_or(self.output_per_mtok))
            / 1_000_000.0
    }
}

/// One model a route can send to, with its circuit breaker and prices. Shared by every route that
/// uses it, so the breaker sees all of the target's traffic.
#[derive(Debug)]
pub struct Target {
    pub name: String,
    pub model: Arc<dyn ChatModel>,
    pub breaker: CircuitBreaker,
    /// `None`: the cost of its calls is not known.
    pub pricing: Option<Pricing>,
    latency: Ewma,
}

/// An exponentially weighted moving average of a target's latency (to its answer, or to a stream's
/// first chunk), in seconds; lock-free. No bits set: no sample yet.
#[derive(Debug, Default)]
struct Ewma(AtomicU64);

impl Ewma {
    /// The weight of the newest sample.
    const ALPHA: f64 = 0.3;

    fn get(&self) -> Option<f64> {
        let bits = self.0.load(Ordering::Relaxed);
        (bits != 0).then(|| f64::from_bits(bits))
    }

    fn record(&self, seconds: f64) {
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                let average = if bits == 0 {
                    seconds
                } else {
                    f64::from_bits(bits) * (1.0 - Self::ALPHA) + seconds * Self::ALPHA
                };
                Some(average.max(f64::MIN_POSITIVE).to_bits())
            });
    }
}

impl Target {
    pub fn new(
        name: impl Into<String>,
        model: Arc<dyn ChatModel>,
        breaker: BreakerSettings,
    ) -> Arc<Self> {
        Target::priced(name, model, breaker, None)
    }

    pub fn priced(
        name: impl Into<String>,
        model: Arc<dyn ChatModel>,
        breaker: BreakerSettings,
        pricing: Option<Pricing>,
    ) -> Arc<Self> {
        Arc::new(Target {
            name: name.into(),
            model,
            breaker: CircuitBreaker::new(breaker),
            pricing,
            latency: Ewma::default(),
        })
    }

    /// The moving average of this target's latency in seconds, once it has answered.
    pub fn latency_seconds(&self) -> Option<f64> {
        self.latency.get()
    }

    /// Records the call's tokens and cost, and returns the cost when the prices are known.
    fn account(&self, route: &str, usage: &Usage) -> Option<f64> {
        for (kind, tokens) in [
            ("input", usage.input_tokens),
            ("cached_input", usage.cached_input_tokens),
            ("output", usage.output_tokens),
        ] {
            metrics::counter!("cairn_gateway_tokens_total", "route" => route.to_owned(), "target" => self.name.clone(), "kind" => kind)
                .increment(u64::from(tokens));
        }
        let cost = self.pricing.map(|pricing| pricing.cost(usage));
        if let Some(cost) = cost {
            metrics::histogram!("cairn_gateway_request_cost_usd", "route" => route.to_owned(), "target" => self.name.clone())
                .record(cost);
        }
        cost
    }
}

/// How a route orders its targets for each call. Whatever comes first, the others follow as
/// fallbacks in their configured order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Strategy {
    /// As configured.
    #[default]
    Ordered,
    /// The first target drawn at random in proportion to its weight (one weight per target): a
    /// canary gets a small share of the traffic.
    Weighted(Vec<u32>),
    /// The lowest moving-average latency first; targets not yet measured go first, and one call in
    /// twenty draws its first target at random, so that a slow target's average can recover.
    Latency,
}

/// A target that receives a copy of some of a route's requests. Its answer never reaches the
/// client: it goes, next to the client's answer, to the sink.
#[derive(Debug, Clone)]
pub struct Shadow {
    pub target: Arc<Target>,
    /// The fraction of requests copied, from 0 to 1.
    pub sample: f64,
    pub sink: Arc<dyn ShadowSink>,
}

/// Where shadow comparisons go (the server stores them in the catalog).
pub trait ShadowSink: Send + Sync + fmt::Debug {
    fn record(&self, comparison: ShadowComparison);
}

/// A shadow target's answer next to the client's.
#[derive(Debug, Clone)]
pub struct ShadowComparison {
    pub route: String,
    pub request: Arc<ChatRequest>,
    /// The target that answered the client, unless every target failed.
    pub primary_target: Option<String>,
    /// The client's answer text (tool calls as JSON), or why there is none.
    pub primary: Result<String, String>,
    pub primary_latency: Duration,
    pub shadow_target: String,
    pub shadow: Result<ChatResponse, ModelError>,
    pub shadow_latency: Duration,
}

/// The text of an answer as shadow comparisons hold it: its content, then its tool calls as JSON.
pub fn answer_text(message: &cairn_core::model::ChatMessage) -> String {
    let mut text = message.content.clone();
    for call in &message.tool_calls {
        text.push_str(&tool_call_text(call));
    }
    text
}

fn tool_call_text(call: &cairn_core::model::ToolCall) -> String {
    serde_json::json!({"tool": call.name, "arguments": call.arguments}).to_string()
}

/// A shadow call under way.
struct ShadowRun {
    route: String,
    /// Shared with the shadow call: the request is copied once.
    request: Arc<ChatRequest>,
    target: Arc<Target>,
    sink: Arc<dyn ShadowSink>,
    call: tokio::task::JoinHandle<(Result<ChatResponse, ModelError>, Duration)>,
}

impl ShadowRun {
    /// Once the shadow has answered, hands both answers to the sink.
    fn finish(
        self,
        primary_target: Option<String>,
        primary: Result<String, String>,
        primary_latency: Duration,
    ) {
        tokio::spawn(async move {
            let (shadow, shadow_latency) = match self.call.await {
                Ok(outcome) => outcome,
                Err(e) => (
                    Err(ModelError::Transient(format!(
                        "the shadow call did not finish: {e}"
                    ))),
                    Duration::ZERO,
                ),
            };
            self.sink.record(ShadowComparison {
                route: self.route,
                request: self.request,
                primary_target,
                primary,
                primary_latency,
                shadow_target: self.target.name.clone(),
                shadow,
                shadow_latency,
            });
        });
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteSettings {
    /// Attempts on one target before falling back to the next (1 = no retries).
    pub attempts_per_target: u32,
    /// The whole call, all attempts and backoff included; for a stream, until its first chunk.
    pub deadline: Duration,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RouteSettings {
    fn default() -> Self {
        RouteSettings {
            attempts_per_target: 2,
            deadline: Duration::from_secs(60),
            min_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// What to do after a failed attempt.
enum Next {
    /// The request itself is wrong: every target would refuse it.
    GiveUp,
    Retry,
    Fallback,
}

fn next_step(error: &ModelError) -> Next {
    match error {
        ModelError::InvalidRequest(_) | ModelError::ContextLengthExceeded(_) => Next::GiveUp,
        ModelError::RateLimited { .. } | ModelError::Transient(_) => Next::Retry,
        ModelError::NotFound(_) | ModelError::Permanent(_) => Next::Fallback,
    }
}

/// Whether a failure says the target is unhealthy (and so counts for its breaker).
fn counts_against_target(error: &ModelError) -> bool {
    matches!(
        error,
        ModelError::RateLimited { .. } | ModelError::Transient(_) | ModelError::Permanent(_)
    )
}

/// A named route; itself a `ChatModel`.
#[derive(Debug)]
pub struct Route {
    name: String,
    targets: Vec<Arc<Target>>,
    settings: RouteSettings,
    strategy: Strategy,
    shadow: Option<Shadow>,
}

/// One call in this many draws its first target at random under [`Strategy::Latency`].
const EXPLORE_ONE_IN: u32 = 20;

impl Route {
    /// `targets` in order of preference; at least one.
    pub fn new(
        name: impl Into<String>,
        targets: Vec<Arc<Target>>,
        settings: RouteSettings,
    ) -> Self {
        Route {
            name: name.into(),
            targets,
            settings,
            strategy: Strategy::Ordered,
            shadow: None,
        }
    }

    /// How targets are ordered per call. A weighted strategy needs one weight per target.
    pub fn with_strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }

    pub fn with_shadow(mut self, shadow: Shadow) -> Self {
        self.shadow = Some(shadow);
        self
    }

    /// The targets in the order this call tries them.
    fn order(&self) -> Vec<Arc<Target>> {
        let mut order = self.targets.clone();
        let first = match &self.strategy {
            Strategy::Ordered => None,
            Strategy::Weighted(weights) => {
                let total: u64 = weights.iter().map(|w| u64::from(*w)).sum();
                (total > 0).then(|| {
                    let mut draw = fastrand::u64(0..total);
                    weights
                        .iter()
                        .position(|weight| {
                            let weight = u64::from(*weight);
                            if draw < weight {
                                true
                            } else {
                                draw -= weight;
                                false
                            }
                        })
                        .unwrap_or(0)
                })
            }
            Strategy::Latency => {
                if fastrand::u32(0..EXPLORE_ONE_IN) == 0 {
                    Some(fastrand::usize(0..order.len().max(1)))
                } else {
                    // Stable: ties (and unmeasured targets, at 0) keep the configured order.
                    order.sort_by(|a, b| {
                        let a = a.latency.get().unwrap_or(0.0);
                        a.total_cmp(&b.latency.get().unwrap_or(0.0))
                    });
                    None
                }
            }
        };
        if let Some(index) = first.filter(|&i| i > 0 && i < order.len()) {
            let chosen = order.remove(index);
            order.insert(0, chosen);
        }
        order
    }

    /// Starts the shadow call for a sampled request whose shadow target's circuit is closed.
    fn start_shadow(&self, request: &ChatRequest) -> Option<ShadowRun> {
        let shadow = self.shadow.as_ref()?;
        // (The shadow reports its outcome to the breaker itself, from its own task.)
        if fastrand::f64() >= shadow.sample || shadow.target.breaker.allow(Instant::now()).is_none()
        {
            return None;
        }
        let target = shadow.target.clone();
        let copy = Arc::new(request.clone());
        let request = copy.clone();
        let route = self.name.clone();
        let deadline = self.settings.deadline;
        let call = tokio::spawn(async move {
            let started = Instant::now();
            let result = tokio::time::timeout(deadline, target.model.complete(&copy))
                .await
                .unwrap_or_else(|_| {
                    Err(ModelError::Transient(format!(
                        "no answer within the route's {} s deadline",
                        deadline.as_secs()
                    )))
                });
            let outcome = match &result {
                Ok(_) => "ok",
                Err(error) => error.class(),
            };
            metrics::counter!("cairn_gateway_shadow_total", "route" => route.clone(), "target" => target.name.clone(), "outcome" => outcome)
                .increment(1);
            let result = match result {
                Ok(mut response) => {
                    target.breaker.record_success();
                    response.cost_usd = target.account(&route, &response.usage);
                    Ok(response)
                }
                Err(error) => {
                    if counts_against_target(&error) {
                        target.breaker.record_failure(Instant::now());
                    }
                    Err(error)
                }
            };
            (result, started.elapsed())
        });
        Some(ShadowRun {
            route: self.name.clone(),
            request,
            target: shadow.target.clone(),
            sink: shadow.sink.clone(),
            call,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn targets(&self) -> impl Iterator<Item = &str> {
        self.targets.iter().map(|t| t.name.as_str())
    }

    /// Runs `call` against the targets in order, with retries, fallback and the deadline, and
    /// records the route's outcome and duration (for a stream: until its first chunk).
    async fn run<T, F, Fut>(&self, call: F) -> Result<(T, Arc<Target>), ModelError>
    where
        F: Fn(Arc<Target>) -> Fut,
        Fut: Future<Output = Result<T, ModelError>>,
    {
        let started = Instant::now();
        let result = self.attempt_all(call, started).await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(error) => error.class(),
        };
        metrics::counter!("cairn_gateway_requests_total", "route" => self.name.clone(), "outcome" => outcome)
            .increment(1);
        metrics::histogram!("cairn_gateway_request_duration_seconds", "route" => self.name.clone())
            .record(started.elapsed().as_secs_f64());
        result
    }

    async fn attempt_all<T, F, Fut>(
        &self,
        call: F,
        started: Instant,
    ) -> Result<(T, Arc<Target>), ModelError>
    where
        F: Fn(Arc<Target>) -> Fut,
        Fut: Future<Output = Result<T, ModelError>>,
    {
        let deadline = started + self.settings.deadline;
        let mut last_error: Option<ModelError> = None;
        for (index, target) in self.order().iter().enumerate() {
            let Some(mut pass) = target.breaker.allow(Instant::now()) else {
                metrics::counter!("cairn_gateway_circuit_open_total", "route" => self.name.clone(), "target" => target.name.clone())
                    .increment(1);
                continue;
            };
            if index > 0 && last_error.is_some() {
                metrics::counter!("cairn_gateway_fallbacks_total", "route" => self.name.clone(), "target" => target.name.clone())
                    .increment(1);
            }
            let mut delays = ExponentialBuilder::default()
                .with_jitter()
                .with_min_delay(self.settings.min_backoff)
                .with_max_delay(self.settings.max_backoff)
                .with_max_times(self.settings.attempts_per_target.saturating_sub(1) as usize)
                .build();
            loop {
                let remaining = deadline.saturating_duration_since(Instant::now());
                if remaining.is_zero() {
                    return Err(self.deadline_error(last_error));
                }
                let attempt_started = Instant::now();
                let outcome = tokio::time::timeout(remaining, call(target.clone())).await;
                let elapsed = attempt_started.elapsed().as_secs_f64();
                let result = outcome.unwrap_or_else(|_| {
                    Err(ModelError::Transient(format!(
                        "no answer within the route's {} s deadline",
                        self.settings.deadline.as_secs()
                    )))
                });
                let class = match &result {
                    Ok(_) => "ok",
                    Err(error) => error.class(),
                };
                metrics::counter!("cairn_gateway_attempts_total", "route" => self.name.clone(), "target" => target.name.clone(), "outcome" => class)
                    .increment(1);
                metrics::histogram!("cairn_gateway_attempt_duration_seconds", "route" => self.name.clone(), "target" => target.name.clone())
                    .record(elapsed);
                let error = match result {
                    Ok(value) => {
                        pass.success();
                        target.latency.record(elapsed);
                        return Ok((value, target.clone()));
                    }
                    Err(error) => error,
                };
                tracing::warn!(route = %self.name, target = %target.name, class, "model call failed: {error}");
                match &error {
                    ModelError::RateLimited {
                        retry_after: Some(wait),
                    } => pass.back_off(Instant::now(), *wait),
                    error if counts_against_target(error) => pass.failure(Instant::now()),
                    _ => pass.answered(),
                }
                let step = next_step(&error);
                let retry_after = match &error {
                    ModelError::RateLimited { retry_after } => *retry_after,
                    _ => None,
                };
                last_error = Some(error);
                match step {
                    Next::GiveUp => {
                        return Err(
                            last_error.unwrap_or_else(|| ModelError::Permanent("unknown".into()))
                        );
                    }
                    Next::Fallback => break,
                    Next::Retry => {
                        let Some(delay) = delays.next() else { break };
                        let delay = retry_after.map_or(delay, |wait| wait.max(delay));
                        if Instant::now() + delay >= deadline {
                            // Waiting would spend the deadline: better to try the next target now.
                            break;
                        }
                        tokio::time::sleep(delay).await;
                    }
                }
            }
        }
        Err(last_error.unwrap_or_else(|| {
            ModelError::Transient(format!(
                "every target of route `{}` is failing (circuit open); try again in a moment",
                self.name
            ))
        }))
    }

    fn deadline_error(&self, last_error: Option<ModelError>) -> ModelError {
        let last = last_error
            .map(|e| format!("; last error: {e}"))
            .unwrap_or_default();
        ModelError::Transient(format!(
            "route `{}` used up its {} s deadline{last}",
            self.name,
            self.settings.deadline.as_secs()
        ))
    }
}

#[async_trait]
impl ChatModel for Route {
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ModelError> {
        let route = self.name.as_str();
        let shadow = self.start_shadow(request);
        let started = Instant::now();
        let result = self
            .run(|target| async move {
                let mut response = target.model.complete(request).await?;
                response.cost_usd = target.account(route, &response.usage);
                Ok(response)
            })
            .await;
        if let Some(shadow) = shadow {
            let (target, primary) = match &result {
                Ok((response, target)) => (
                    Some(target.name.clone()),
                    Ok(answer_text(&response.message)),
                ),
                Err(error) => (None, Err(error.to_string())),
            };
            shadow.finish(target, primary, started.elapsed());
        }
        result.map(|(response, _)| response)
    }

    /// Falls back only until the first chunk: once text has reached the caller, switching models
    /// would splice two answers.
    async fn stream(&self, request: &ChatRequest) -> Result<ChatStream, ModelError> {
        let shadow = self.start_shadow(request);
        let started = Instant::now();
        let result = self
            .run(|target| async move {
                let mut stream = target.model.stream(request).await?;
                match stream.next().await {
                    Some(Ok(first)) => {
                        metrics::histogram!("cairn_gateway_time_to_first_token_seconds", "route" => self.name.clone(), "target" => target.name.clone())
                            .record(started.elapsed().as_secs_f64());
                        let route = self.name.clone();
                        let served = target.clone();
                        let rest: ChatStream = Box::pin(
                            futures_util::stream::once(async move { Ok(first) })
                                .chain(stream)
                                .map(move |item| match item {
                                    Ok(ChatChunk::Finish { reason, usage, .. }) => {
                                        Ok(ChatChunk::Finish {
                                            reason,
                                            usage,
                                            cost_usd: served.account(&route, &usage),
                                        })
                                    }
                                    other => other,
                                }),
                        );
                        Ok(rest)
                    }
                    Some(Err(error)) => Err(error),
                    None => Err(ModelError::Transient(format!(
                        "`{}` returned an empty stream",
                        target.name
                    ))),
                }
            })
            .await;
        match (result, shadow) {
            (Ok((stream, _)), None) => Ok(stream),
            (Ok((stream, target)), Some(shadow)) => Ok(compared_stream(
                stream,
                target.name.clone(),
                shadow,
                started,
            )),
            (Err(error), shadow) => {
                if let Some(shadow) = shadow {
                    shadow.finish(None, Err(error.to_string()), started.elapsed());
                }
                Err(error)
            }
        }
    }
}

/// Passes the stream on unchanged, collecting its text; at its end (or when the client drops it)
/// the shadow run gets the client's answer to compare.
fn compared_stream(
    stream: ChatStream,
    target: String,
    shadow: ShadowRun,
    started: Instant,
) -> ChatStream {
    struct Collect {
        text: String,
        pending: Option<(ShadowRun, String)>,
        started: Instant,
    }
    impl Collect {
        fn finish(&mut self, primary: Result<String, String>) {
            if let Some((shadow, target)) = self.pending.take() {
                shadow.finish(Some(target), primary, self.started.elapsed());
            }
        }
    }
    impl Drop for Collect {
        fn drop(&mut self) {
            self.finish(Err("the client stopped reading before the end".into()));
        }
    }
    let mut collect = Collect {
        text: String::new(),
        pending: Some((shadow, target)),
        started,
    };
    Box::pin(stream.map(move |item| {
        match &item {
            Ok(ChatChunk::Delta(text)) => collect.text.push_str(text),
            Ok(ChatChunk::ToolCall(call)) => collect.text.push_str(&tool_call_text(call)),
            Ok(ChatChunk::Step(_)) => {}
            Ok(ChatChunk::Finish { .. }) => {
                let text = std::mem::take(&mut collect.text);
                collect.finish(Ok(text));
            }
            Err(error) => collect.finish(Err(error.to_string())),
        }
        item
    }))
}

#[cfg(test)]
mod tests;
