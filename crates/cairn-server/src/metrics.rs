//! Prometheus metrics: one process-wide recorder (the `metrics` facade), rendered at `/metrics`.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's own figures (CPU seconds, resident memory, open files, threads), read at each
/// scrape.
static PROCESS: OnceLock<metrics_process::Collector> = OnceLock::new();

/// Dollars per call, from a fraction of a cent (small models) to a dollar (long contexts).
const COST_BUCKETS: &[f64] = &[0.000_01, 0.000_1, 0.001, 0.01, 0.1, 1.0];

/// Seconds, up to past the longest default deadline (a route's or an agent run's 120 s) and the
/// slow local generations of a CPU.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    120.0, 300.0, 600.0,
];

/// Model calls per agent run.
const STEP_BUCKETS: &[f64] = &[1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 25.0, 50.0, 100.0];

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
                .set_buckets_for_metric(Matcher::Full("cairn_agent_steps".into()), STEP_BUCKETS)
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
            PROCESS
                .get_or_init(metrics_process::Collector::default)
                .describe();
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
    metrics::describe_counter!(
        "cairn_gateway_cache_total",
        "Answer cache lookups, by route and result (hit or miss)."
    );
    metrics::describe_counter!(
        "cairn_gateway_cache_evictions_total",
        "Answers the cache dropped to make room."
    );
    metrics::describe_counter!(
        "cairn_gateway_shadow_total",
        "Shadow calls, by route, shadow target and outcome."
    );
    metrics::describe_counter!(
        "cairn_gateway_rate_limited_total",
        "Calls refused by a rate limit or budget, by route and limit."
    );
    metrics::describe_counter!(
        "cairn_gateway_limit_store_errors_total",
        "Rate-limit counts the catalog could not read or write (the call was let through)."
    );
    metrics::describe_counter!(
        "cairn_embedding_retries_total",
        "Remote embedding calls retried after a transient failure, by model and error class."
    );
    metrics::describe_counter!(
        "cairn_agent_runs_total",
        "Agent runs, by agent and outcome (ok, step_limit, budget, deadline, awaiting_approval, or a model error's class)."
    );
    metrics::describe_histogram!("cairn_agent_steps", "Model calls per agent run, by agent.");
    metrics::describe_counter!(
        "cairn_agent_tool_calls_total",
        "Agents' tool calls, by source (cairn or the MCP server), tool and status."
    );
    metrics::describe_counter!(
        "cairn_eval_online_skipped_total",
        "Production answers online evaluation left unjudged, by app and reason."
    );
    metrics::describe_counter!(
        "cairn_audit_refusals_suppressed_total",
        "Refusals not written to the audit log because they came faster than it records them."
    );
    metrics::describe_gauge!(
        "cairn_build_info",
        "Always 1; labels carry the version and catalog backend."
    );
}

/// The metrics as Prometheus text, with the process's figures read now.
pub fn render(handle: &PrometheusHandle) -> String {
    if let Some(process) = PROCESS.get() {
        process.collect();
    }
    handle.render()
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
