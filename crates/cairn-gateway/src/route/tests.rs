//! The route's retries, fallback, breakers, strategies, shadows, costs and metrics, against fake
//! models that follow a script.

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

/// A finished answer of `text`, from a model of the same name.
fn plain_answer(text: &str) -> ChatResponse {
    ChatResponse {
        message: ChatMessage::new(Role::Assistant, text),
        finish_reason: FinishReason::Stop,
        usage: USAGE,
        model: text.into(),
        cost_usd: None,
    }
}

/// `response` streamed as one delta and its finish.
fn one_delta(response: ChatResponse) -> ChatStream {
    Box::pin(futures_util::stream::iter([
        Ok(ChatChunk::Delta(response.message.content)),
        Ok(ChatChunk::Finish {
            reason: FinishReason::Stop,
            usage: USAGE,
            cost_usd: None,
        }),
    ]))
}

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

fn route(models: &[&Arc<Scripted>], settings: RouteSettings, breaker: BreakerSettings) -> Route {
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
async fn a_trial_the_target_refuses_as_a_bad_request_closes_the_circuit() {
    // `a` fails once (opening its circuit), then refuses a bad request at the trial, then answers.
    let a = Scripted::new(
        "a",
        vec![
            transient(),
            Behaviour::Fail(ModelError::InvalidRequest("bad".into())),
            Behaviour::Answer,
        ],
    );
    let breaker = BreakerSettings {
        failure_threshold: 1,
        cool_down: Duration::from_millis(1),
    };
    let route = route(&[&a], settings(1), breaker);
    assert!(answer(&route).await.is_err());
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(
        answer(&route).await,
        Err(ModelError::InvalidRequest("bad".into()))
    );
    // The trial ended answered: the circuit is closed, not half-open for ever.
    assert_eq!(answer(&route).await, Ok("a".into()));
    assert_eq!(a.calls(), 3);
}

#[tokio::test]
async fn a_target_that_asks_for_a_wait_is_left_alone_for_it() {
    let a = Scripted::new(
        "a",
        vec![Behaviour::Fail(ModelError::RateLimited {
            retry_after: Some(Duration::from_secs(60)),
        })],
    );
    let b = Scripted::new("b", vec![Behaviour::Answer]);
    let route = route(&[&a, &b], settings(1), BreakerSettings::default());
    for _ in 0..3 {
        assert_eq!(answer(&route).await, Ok("b".into()));
    }
    assert_eq!(
        a.calls(),
        1,
        "`a` asked for a minute and was not called again"
    );
}

#[tokio::test]
async fn a_trial_whose_caller_goes_away_lets_the_next_call_try() {
    let a = Scripted::new("a", vec![transient(), Behaviour::Hang, Behaviour::Answer]);
    let breaker = BreakerSettings {
        failure_threshold: 1,
        cool_down: Duration::from_millis(1),
    };
    let route = route(&[&a], settings(1), breaker);
    assert!(answer(&route).await.is_err());
    tokio::time::sleep(Duration::from_millis(5)).await;
    // The trial hangs and its caller gives up (a client that disconnected).
    let gave_up = tokio::time::timeout(Duration::from_millis(50), answer(&route)).await;
    assert!(gave_up.is_err(), "the trial was still waiting");
    assert_eq!(
        answer(&route).await,
        Ok("a".into()),
        "the next call is a new trial"
    );
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
        Ok(plain_answer(self.name))
    }

    async fn stream(&self, request: &ChatRequest) -> Result<ChatStream, ModelError> {
        Ok(one_delta(self.complete(request).await?))
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
        Ok(plain_answer("candidate"))
    }

    async fn stream(&self, request: &ChatRequest) -> Result<ChatStream, ModelError> {
        Ok(one_delta(self.complete(request).await?))
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
    let never = route(&[&primary], settings(1), BreakerSettings::default()).with_shadow(Shadow {
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
