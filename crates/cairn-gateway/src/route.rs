//! A route: ordered targets, retries with jittered backoff, fallback, a total deadline.

use std::sync::Arc;
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
}

impl Pricing {
    /// What a call with this usage cost. Cached input tokens are part of the input count.
    pub fn cost(&self, usage: &Usage) -> f64 {
        let cached = f64::from(usage.cached_input_tokens.min(usage.input_tokens));
        let fresh = f64::from(usage.input_tokens) - cached;
        (fresh * self.input_per_mtok
            + cached * self.cached_input_per_mtok
            + f64::from(usage.output_tokens) * self.output_per_mtok)
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
        })
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
}

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
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn targets(&self) -> impl Iterator<Item = &str> {
        self.targets.iter().map(|t| t.name.as_str())
    }

    /// Runs `call` against the targets in order, with retries, fallback and the deadline, and
    /// records the route's outcome and duration (for a stream: until its first chunk).
    async fn run<T, F, Fut>(&self, call: F) -> Result<T, ModelError>
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

    async fn attempt_all<T, F, Fut>(&self, call: F, started: Instant) -> Result<T, ModelError>
    where
        F: Fn(Arc<Target>) -> Fut,
        Fut: Future<Output = Result<T, ModelError>>,
    {
        let deadline = started + self.settings.deadline;
        let mut last_error: Option<ModelError> = None;
        for (index, target) in self.targets.iter().enumerate() {
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
                        return Ok(value);
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
        self.run(|target| async move {
            let mut response = target.model.complete(request).await?;
            response.cost_usd = target.account(route, &response.usage);
            Ok(response)
        })
        .await
    }

    /// Falls back only until the first chunk: once text has reached the caller, switching models
    /// would splice two answers.
    async fn stream(&self, request: &ChatRequest) -> Result<ChatStream, ModelError> {
        let started = Instant::now();
        self.run(|target| async move {
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
        .await
    }
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
        assert!(
            started.elapsed() < Duration::from_secs(2),
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
}
