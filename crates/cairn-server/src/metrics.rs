//! Prometheus metrics: one process-wide recorder (the `metrics` facade), rendered at `/metrics`.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Dollars per call, from a fraction of a cent (small models) to a dollar (long contexts).
const COST_BUCKETS: &[f64] = &[0.000_01, 0.000_1, 0.001, 0.01, 0.1, 1.0];

const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Installs the recorder on first use and returns its handle. Later calls (tests building several
/// apps in one process) share it.
pub fn handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .expect("the bucket list is not empty")
                .set_buckets_for_metric(
                    Matcher::Full("cairn_gateway_request_cost_usd".into()),
                    COST_BUCKETS,
                )
                .expect("the bucket list is not empty")
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (by an embedding program); ours then renders empty
            // histograms, which is better than refusing to start.
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!(
                    "a metrics recorder was already installed; /metrics shows only Cairn's own"
                );
            }
            describe();
            handle
        })
        .clone()
}

fn describe() {
    metrics::describe_counter!(
        "cairn_http_requests_total",
        "HTTP requests answered, by method, route and status."
    );
    metrics::describe_histogram!(
        "cairn_http_request_duration_seconds",
        metrics::Unit::Seconds,
        "Time from request to response headers, by method and route."
    );
    metrics::describe_gauge!(
        "cairn_http_requests_in_flight",
        "HTTP requests being handled now."
    );
    metrics::describe_counter!(
        "cairn_gateway_requests_total",
        "Model calls through a route, by route and outcome (ok or the error class)."
    );
    metrics::describe_histogram!(
        "cairn_gateway_request_duration_seconds",
        metrics::Unit::Seconds,
        "A route's model calls, retries and fallback included; for streams, until the first chunk."
    );
    metrics::describe_histogram!(
        "cairn_gateway_time_to_first_token_seconds",
        metrics::Unit::Seconds,
        "Streamed calls: time to the first chunk, by route and the target that served it."
    );
    metrics::describe_counter!(
        "cairn_gateway_attempts_total",
        "Attempts on a target, by route, target and outcome."
    );
    metrics::describe_histogram!(
        "cairn_gateway_attempt_duration_seconds",
        metrics::Unit::Seconds,
        "One attempt on one target."
    );
    metrics::describe_counter!(
        "cairn_gateway_fallbacks_total",
        "Calls that moved to the next target of a route, by the target fallen back to."
    );
    metrics::describe_counter!(
        "cairn_gateway_circuit_open_total",
        "Targets skipped because their circuit breaker was open."
    );
    metrics::describe_counter!(
        "cairn_gateway_tokens_total",
        "Tokens of answered calls, by route, serving target and kind (input, cached_input, output)."
    );
    metrics::describe_histogram!(
        "cairn_gateway_request_cost_usd",
        "Cost of answered calls in US dollars, by route and serving target (priced targets only)."
    );
    metrics::describe_counter!(
        "cairn_guard_checks_total",
        "Guardrail checks, by guard, stage and verdict (allow, flag, redact, block, error)."
    );
    metrics::describe_histogram!(
        "cairn_guard_check_duration_seconds",
        metrics::Unit::Seconds,
        "One guardrail's check of one text (a streamed answer's part, a passage, a message)."
    );
    metrics::describe_gauge!(
        "cairn_build_info",
        "Always 1; labels carry the version and catalog backend."
    );
}

/// Records the build and backend once at startup, so `/metrics` is never empty.
pub fn record_build_info(catalog_backend: &'static str) {
    metrics::gauge!("cairn_build_info", "version" => env!("CARGO_PKG_VERSION"), "catalog" => catalog_backend).set(1.0);
}

/// Middleware: counts requests and measures their latency by route template (never the raw path,
/// which would make one series per id).
pub async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let in_flight = metrics::gauge!("cairn_http_requests_in_flight");
    in_flight.increment(1.0);
    let response = next.run(request).await;
    in_flight.decrement(1.0);
    let status = response.status().as_u16().to_string();
    metrics::counter!("cairn_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("cairn_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}
