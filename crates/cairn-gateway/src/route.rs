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
        if fastrand::f64() >= shadow.sample || !shadow.target.breaker.allow(Instant::now()) {
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
            if !target.breaker.allow(Instant::now()) {
                metrics::counter!("cairn_gateway_circuit_open_total", "route" => self.name.clone(), "target" => target.name.clone())
                    .increment(1);
                continue;
            }
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
                        target.breaker.record_success();
                        target.latency.record(elapsed);
                        return Ok((value, target.clone()));
                    }
                    Err(error) => error,
                };
                tracing::warn!(route = %self.name, target = %target.name, class, "model call failed: {error}");
                if counts_against_target(&error) {
                    target.breaker.record_failure(Instant::now());
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
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use cairn_core::model::{ChatMessage, FinishReason, Role};

    use super::*;

    #[derive(Debug, Clone)]
    enum Behaviour {
        Answer,
        Fail(ModelError),
        Hang,
        /// Streams one chunk, then fails.
        BreakMidStream,
    }

    const USAGE: Usage = Usage {
        input_tokens: 1_000,
        cached_input_tokens: 400,
        output_tokens: 100,
        reasoning_tokens: 0,
    };

    /// A fake model that follows a script, then repeats its last step.
    #[derive(Debug)]
    struct Scripted {
        name: &'static str,
        script: Mutex<VecDeque<Behaviour>>,
        calls: AtomicUsize,
    }

    impl Scripted {
        fn new(name: &'static str, script: Vec<Behaviour>) -> Arc<Self> {
            Arc::new(Scripted {
                name,
                script: Mutex::new(script.into()),
                calls: AtomicUsize::new(0),
            })
        }

        fn calls(&self) -> usize {
            self.calls.load(Ordering::SeqCst)
        }

        fn step(&self) -> Behaviour {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let mut script = self.script.lock().expect("lock");
            if script.len() > 1 {
                script.pop_front().expect("step")
            } else {
                script.front().cloned().expect("step")
            }
        }
    }

    #[async_trait]
    impl ChatModel for Scripted {
        async fn complete(&self, _request: &ChatRequest) -> Result<ChatResponse, ModelError> {
            match self.step() {
                Behaviour::Answer | Behaviour::BreakMidStream => Ok(ChatResponse {
                    message: ChatMessage::new(Role::Assistant, self.name),
                    finish_reason: FinishReason::Stop,
                    usage: USAGE,
                    model: self.name.into(),
                    cost_usd: None,
                }),
                Behaviour::Fail(error) => Err(error),
                Behaviour::Hang => {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    Err(ModelError::Transient("woke up".into()))
                }
            }
        }

        async fn stream(&self, _request: &ChatRequest) -> Result<ChatStream, ModelError> {
            let chunks: Vec<Result<ChatChunk, ModelError>> = match self.step() {
                Behaviour::Answer => vec![
                    Ok(ChatChunk::Delta(self.name.into())),
                    Ok(ChatChunk::Finish {
                        reason: FinishReason::Stop,
                        usage: USAGE,
                        cost_usd: None,
                    }),
                ],
                Behaviour::BreakMidStream => {
                    vec![
                        Ok(ChatChunk::Delta(self.name.into())),
                        Err(ModelError::Transient("reset".into())),
                    ]
                }
                Behaviour::Fail(error) => vec![Err(error)],
                Behaviour::Hang => {
                    return Err(ModelError::Transient("hang is for complete()".into()));
                }
            };
            Ok(Box::pin(futures_util::stream::iter(chunks)))
        }
    }

    fn settings(attempts: u32) -> RouteSettings {
        RouteSettings {
            attempts_per_target: attempts,
            deadline: Duration::from_secs(5),
            min_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
        }
    }

    fn route(
        models: &[&Arc<Scripted>],
        settings: RouteSettings,
        breaker: BreakerSettings,
    ) -> Route {
        let targets = models
            .iter()
            .map(|m| Target::new(m.name, (*m).clone() as Arc<dyn ChatModel>, breaker))
            .collect();
        Route::new("test", targets, settings)
    }

    fn transient() -> Behaviour {
        Behaviour::Fail(ModelError::Transient("503".into()))
    }

    async fn answer(route: &Route) -> Result<String, ModelError> {
        route
            .complete(&ChatRequest::default())
            .await
            .map(|r| r.message.content)
    }

    #[test]
    fn cached_input_is_charged_at_its_own_price() {
        let pricing = Pricing {
            input_per_mtok: 2.5,
            cached_input_per_mtok: 1.25,
            output_per_mtok: 10.0,
            reasoning_per_mtok: None,
        };
        let expected = (600.0 * 2.5 + 400.0 * 1.25 + 100.0 * 10.0) / 1e6;
        assert!((pricing.cost(&USAGE) - expected).abs() < 1e-12);
    }

    #[tokio::test]
    async fn the_served_target_prices_the_answer_and_its_stream() {
        let a = Scripted::new("a", vec![transient()]);
        let b = Scripted::new("b", vec![Behaviour::Answer]);
        let pricing = Pricing {
            input_per_mtok: 1.0,
            cached_input_per_mtok: 0.5,
            output_per_mtok: 4.0,
            reasoning_per_mtok: None,
        };
        let targets = vec![
            Target::new(
                "a",
                a.clone() as Arc<dyn ChatModel>,
                BreakerSettings::default(),
            ),
            Target::priced(
                "b",
                b.clone() as Arc<dyn ChatModel>,
                BreakerSettings::default(),
                Some(pricing),
            ),
        ];
        let route = Route::new("priced", targets, settings(1));
        let response = route
            .complete(&ChatRequest::default())
            .await
            .expect("an answer from b");
        assert_eq!(response.cost_usd, Some(pricing.cost(&USAGE)));
        let mut stream = route
            .stream(&ChatRequest::default())
            .await
            .expect("a stream from b");
        let mut cost = None;
        while let Some(Ok(chunk)) = stream.next().await {
            if let ChatChunk::Finish { cost_usd, .. } = chunk {
                cost = cost_usd;
            }
        }
        assert_eq!(cost, Some(pricing.cost(&USAGE)));
        // An unpriced target answers with an unknown cost.
        let unpriced = route_of(&b);
        let response = unpriced
            .complete(&ChatRequest::default())
            .await
            .expect("answer");
        assert_eq!(response.cost_usd, None);
    }

    fn route_of(model: &Arc<Scripted>) -> Route {
        Route::new(
            "unpriced",
            vec![Target::new(
                "m",
                model.clone() as Arc<dyn ChatModel>,
                BreakerSettings::default(),
            )],
            settings(1),
        )
    }

    #[tokio::test]
    async fn retries_then_succeeds_on_the_same_target() {
        let a = Scripted::new(
            "a",
            vec![
                transient(),
                Behaviour::Fail(ModelError::RateLimited { retry_after: None }),
                Behaviour::Answer,
            ],
        );
        let b = Scripted::new("b", vec![Behaviour::Answer]);
        let route = route(&[&a, &b], settings(3), BreakerSettings::default());
        assert_eq!(answer(&route).await, Ok("a".into()));
        assert_eq!((a.calls(), b.calls()), (3, 0));
    }

    #[tokio::test]
    async fn falls_back_after_the_attempts_on_a_target() {
        let a = Scripted::new("a", vec![transient()]);
        let b = Scripted::new("b", vec![Behaviour::Answer]);
        let route = route(&[&a, &b], settings(2), BreakerSettings::default());
        assert_eq!(answer(&route).await, Ok("b".into()));
        assert_eq!((a.calls(), b.calls()), (2, 1));
    }

    #[tokio::test]
    async fn a_bad_request_is_never_retried_nor_sent_elsewhere() {
        for error in [
            ModelError::InvalidRequest("bad".into()),
            ModelError::ContextLengthExceeded("8k".into()),
        ] {
            let a = Scripted::new("a", vec![Behaviour::Fail(error.clone())]);
            let b = Scripted::new("b", vec![Behaviour::Answer]);
            let route = route(&[&a, &b], settings(3), BreakerSettings::default());
            assert_eq!(answer(&route).await, Err(error));
            assert_eq!((a.calls(), b.calls()), (1, 0));
        }
    }

    #[tokio::test]
    async fn credentials_failures_fall_back_without_retrying() {
        let a = Scripted::new(
            "a",
            vec![Behaviour::Fail(ModelError::Permanent("401".into()))],
        );
        let b = Scripted::new("b", vec![Behaviour::Answer]);
        let route = route(&[&a, &b], settings(3), BreakerSettings::default());
        assert_eq!(answer(&route).await, Ok("b".into()));
        assert_eq!((a.calls(), b.calls()), (1, 1));
    }

    #[tokio::test]
    async fn the_last_error_is_returned_when_every_target_fails() {
        let a = Scripted::new("a", vec![transient()]);
        let b = Scripted::new(
            "b",
            vec![Behaviour::Fail(ModelError::Permanent("403".into()))],
        );
        let route = route(&[&a, &b], settings(2), BreakerSettings::default());
        assert_eq!(
            answer(&route).await,
            Err(ModelError::Permanent("403".into()))
        );
    }

    #[tokio::test]
    async fn an_open_circuit_skips_the_target() {
        let a = Scripted::new("a", vec![transient()]);
        let b = Scripted::new("b", vec![Behaviour::Answer]);
        let breaker = BreakerSettings {
            failure_threshold: 2,
            cool_down: Duration::from_secs(60),
        };
        let route = route(&[&a, &b], settings(1), breaker);
        for _ in 0..5 {
            assert_eq!(answer(&route).await, Ok("b".into()));
        }
        assert_eq!(
            a.calls(),
            2,
            "after two failures `a` is not called again during the cool-down"
        );
        assert_eq!(b.calls(), 5);
    }

    #[tokio::test]
    async fn the_deadline_bounds_the_whole_call() {
        let a = Scripted::new("a", vec![Behaviour::Hang]);
        let b = Scripted::new("b", vec![Behaviour::Answer]);
        let mut short = settings(2);
        short.deadline = Duration::from_millis(100);
        let route = route(&[&a, &b], short, BreakerSettings::default());
        let started = Instant::now();
        let error = answer(&route).await.expect_err("deadline");
        // `a` never answers: returning at all shows the deadline cut it short (the bound only
        // catches a hang).
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{:?}",
            started.elapsed()
        );
        assert!(
            matches!(&error, ModelError::Transient(m) if m.contains("deadline")),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn streams_fall_back_before_the_first_chunk_only() {
        let a = Scripted::new("a", vec![transient()]);
        let b = Scripted::new("b", vec![Behaviour::BreakMidStream]);
        let route = route(&[&a, &b], settings(1), BreakerSettings::default());
        let chunks: Vec<_> = route
            .stream(&ChatRequest::default())
            .await
            .expect("starts")
            .collect()
            .await;
        assert_eq!(
            chunks,
            vec![
                Ok(ChatChunk::Delta("b".into())),
                Err(ModelError::Transient("reset".into()))
            ]
        );
        assert_eq!(
            (a.calls(), b.calls()),
            (1, 1),
            "the mid-stream failure is passed on, not retried"
        );
    }

    #[tokio::test]
    async fn a_weighted_route_sends_each_target_its_share() {
        let stable = Scripted::new("stable", vec![Behaviour::Answer]);
        let canary = Scripted::new("canary", vec![Behaviour::Answer]);
        let split = route(&[&stable, &canary], settings(1), BreakerSettings::default())
            .with_strategy(Strategy::Weighted(vec![9, 1]));
        for _ in 0..1_000 {
            answer(&split).await.expect("answer");
        }
        // 100 expected; the bounds are 6 standard deviations wide.
        assert!(
            (40..=160).contains(&canary.calls()),
            "canary got {} of 1000",
            canary.calls()
        );
        assert_eq!(stable.calls() + canary.calls(), 1_000);

        // A failing canary falls back to the stable target.
        let stable = Scripted::new("stable", vec![Behaviour::Answer]);
        let canary = Scripted::new("canary", vec![transient()]);
        let route = route(&[&stable, &canary], settings(1), BreakerSettings::default())
            .with_strategy(Strategy::Weighted(vec![0, 1]));
        assert_eq!(answer(&route).await, Ok("stable".into()));
        assert_eq!((canary.calls(), stable.calls()), (1, 1));
    }

    /// Answers after a fixed delay.
    #[derive(Debug)]
    struct Slow {
        name: &'static str,
        delay: Duration,
        calls: AtomicUsize,
    }

    #[async_trait]
    impl ChatModel for Slow {
        async fn complete(&self, _request: &ChatRequest) -> Result<ChatResponse, ModelError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(self.delay).await;
            Ok(ChatResponse {
                message: ChatMessage::new(Role::Assistant, self.name),
                finish_reason: FinishReason::Stop,
                usage: USAGE,
                model: self.name.into(),
                cost_usd: None,
            })
        }

        async fn stream(&self, request: &ChatRequest) -> Result<ChatStream, ModelError> {
            let response = self.complete(request).await?;
            Ok(Box::pin(futures_util::stream::iter([
                Ok(ChatChunk::Delta(response.message.content)),
                Ok(ChatChunk::Finish {
                    reason: FinishReason::Stop,
                    usage: USAGE,
                    cost_usd: None,
                }),
            ])))
        }
    }

    fn slow(name: &'static str, millis: u64) -> Arc<Slow> {
        Arc::new(Slow {
            name,
            delay: Duration::from_millis(millis),
            calls: AtomicUsize::new(0),
        })
    }

    #[tokio::test]
    async fn a_latency_route_prefers_the_fastest_target() {
        let sluggish = slow("sluggish", 30);
        let quick = slow("quick", 1);
        let targets = [&sluggish, &quick]
            .iter()
            .map(|m| {
                Target::new(
                    m.name,
                    (*m).clone() as Arc<dyn ChatModel>,
                    BreakerSettings::default(),
                )
            })
            .collect();
        let route = Route::new("fast", targets, settings(1)).with_strategy(Strategy::Latency);
        for _ in 0..100 {
            route
                .complete(&ChatRequest::default())
                .await
                .expect("answer");
        }
        // Each is measured first; after that only exploration (1 in 20, half of it to `sluggish`)
        // reaches the slow one.
        let to_slow = sluggish.calls.load(Ordering::SeqCst);
        assert!((1..=15).contains(&to_slow), "sluggish got {to_slow} of 100");
        let averages: Vec<f64> = route
            .targets
            .iter()
            .filter_map(|t| t.latency_seconds())
            .collect();
        assert_eq!(averages.len(), 2);
        assert!(averages[0] > averages[1], "{averages:?}");
    }

    /// Keeps every comparison it is given.
    #[derive(Debug, Default)]
    struct Collected(Mutex<Vec<ShadowComparison>>, tokio::sync::Notify);

    impl ShadowSink for Collected {
        fn record(&self, comparison: ShadowComparison) {
            self.0.lock().expect("lock").push(comparison);
            self.1.notify_one();
        }
    }

    async fn next_comparison(sink: &Collected) -> ShadowComparison {
        loop {
            if let Some(found) = sink.0.lock().expect("lock").pop() {
                return found;
            }
            tokio::time::timeout(Duration::from_secs(30), sink.1.notified())
                .await
                .expect("a comparison (the deadline only catches a hang)");
        }
    }

    /// Answers only once the test opens its gate; says when a call is waiting there.
    #[derive(Debug)]
    struct Gated {
        calls: AtomicUsize,
        gate: tokio::sync::Semaphore,
        waiting: tokio::sync::Notify,
    }

    impl Gated {
        fn closed() -> Arc<Gated> {
            Arc::new(Gated {
                calls: AtomicUsize::new(0),
                gate: tokio::sync::Semaphore::new(0),
                waiting: tokio::sync::Notify::new(),
            })
        }

        /// Lets every call, now and later, through.
        fn open(&self) {
            self.gate
                .add_permits(tokio::sync::Semaphore::MAX_PERMITS / 2);
        }
    }

    #[async_trait]
    impl ChatModel for Gated {
        async fn complete(&self, _request: &ChatRequest) -> Result<ChatResponse, ModelError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.waiting.notify_one();
            let _permit = self.gate.acquire().await.expect("the gate stays open");
            Ok(ChatResponse {
                message: ChatMessage::new(Role::Assistant, "candidate"),
                finish_reason: FinishReason::Stop,
                usage: USAGE,
                model: "candidate".into(),
                cost_usd: None,
            })
        }

        async fn stream(&self, request: &ChatRequest) -> Result<ChatStream, ModelError> {
            let response = self.complete(request).await?;
            Ok(Box::pin(futures_util::stream::iter([
                Ok(ChatChunk::Delta(response.message.content)),
                Ok(ChatChunk::Finish {
                    reason: FinishReason::Stop,
                    usage: USAGE,
                    cost_usd: None,
                }),
            ])))
        }
    }

    /// Long enough that only a hang reaches it.
    const HANG: Duration = Duration::from_secs(30);

    #[tokio::test]
    async fn a_shadow_gets_a_copy_whose_answer_only_the_sink_sees() {
        let primary = Scripted::new("primary", vec![Behaviour::Answer]);
        let candidate = Gated::closed();
        let sink = Arc::new(Collected::default());
        let shadow = Shadow {
            target: Target::new(
                "candidate",
                candidate.clone() as Arc<dyn ChatModel>,
                BreakerSettings::default(),
            ),
            sample: 1.0,
            sink: sink.clone(),
        };
        let shadowed =
            route(&[&primary], settings(1), BreakerSettings::default()).with_shadow(shadow.clone());
        // The shadow cannot answer until the gate opens, so an answer now means the client did not
        // wait for it.
        let answered = tokio::time::timeout(HANG, answer(&shadowed))
            .await
            .expect("the client does not wait for the shadow");
        assert_eq!(answered, Ok("primary".into()));
        tokio::time::timeout(HANG, async {
            while candidate.calls.load(Ordering::SeqCst) == 0 {
                candidate.waiting.notified().await;
            }
        })
        .await
        .expect("the shadow was called");
        // The shadow has been waiting at least since `held` started: its latency covers that.
        let held = Instant::now();
        assert!(
            sink.0.lock().expect("lock").is_empty(),
            "no comparison before the shadow answers"
        );
        let held_for = held.elapsed();
        candidate.open();
        let comparison = next_comparison(&sink).await;
        assert_eq!(comparison.primary, Ok("primary".into()));
        assert_eq!(comparison.primary_target.as_deref(), Some("primary"));
        assert_eq!(comparison.shadow_target, "candidate");
        assert_eq!(
            comparison.shadow.map(|r| r.message.content),
            Ok("candidate".into())
        );
        assert!(comparison.shadow_latency >= held_for);

        // Streams: compared once the client's stream has ended.
        let chunks: Vec<_> = shadowed
            .stream(&ChatRequest::default())
            .await
            .expect("stream")
            .collect()
            .await;
        assert_eq!(chunks.len(), 2);
        let comparison = next_comparison(&sink).await;
        assert_eq!(comparison.primary, Ok("primary".into()));
        assert_eq!(candidate.calls.load(Ordering::SeqCst), 2);

        // A failing primary is compared too; a sample of 0 copies nothing.
        let down = Scripted::new(
            "down",
            vec![Behaviour::Fail(ModelError::Permanent("401".into()))],
        );
        let route_down =
            route(&[&down], settings(1), BreakerSettings::default()).with_shadow(shadow.clone());
        answer(&route_down).await.expect_err("primary fails");
        let comparison = next_comparison(&sink).await;
        assert_eq!(comparison.primary_target, None);
        assert!(comparison.primary.is_err());
        let never =
            route(&[&primary], settings(1), BreakerSettings::default()).with_shadow(Shadow {
                sample: 0.0,
                ..shadow
            });
        answer(&never).await.expect("answer");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(candidate.calls.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn reasoning_tokens_have_their_own_price() {
        let pricing = Pricing {
            input_per_mtok: 1.0,
            cached_input_per_mtok: 1.0,
            output_per_mtok: 4.0,
            reasoning_per_mtok: Some(8.0),
        };
        let usage = Usage {
            input_tokens: 0,
            cached_input_tokens: 0,
            output_tokens: 100,
            reasoning_tokens: 60,
        };
        assert!((pricing.cost(&usage) - (40.0 * 4.0 + 60.0 * 8.0) / 1e6).abs() < 1e-12);
        let same = Pricing {
            reasoning_per_mtok: None,
            ..pricing
        };
        assert!((same.cost(&usage) - 100.0 * 4.0 / 1e6).abs() < 1e-12);
    }
}
