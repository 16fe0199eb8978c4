//! `/v1/chat/completions` and `/v1/models` over real adapters pointed at a scripted upstream.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use cairn_runtime::config::{ModelBackend, ModelConfig, RouteSection, RouteStrategy};
use cairn_runtime::models::ModelDirectory;
use cairn_testkit::ScriptedUpstream;
use serde_json::{Value, json};

use super::{check_error, eventually, json_request, send};

async fn app() -> (Router, ScriptedUpstream, super::TestApp) {
    let (state, upstream, test) = app_state().await;
    (cairn_server::router(state), upstream, test)
}

async fn app_state() -> (cairn_server::AppState, ScriptedUpstream, super::TestApp) {
    let upstream = ScriptedUpstream::start().await;
    let base = upstream.base_url();
    let model = |name: &str, upstream_model: &str| ModelConfig {
        name: name.into(),
        backend: ModelBackend::Remote {
            endpoint: cairn_openai::Endpoint::OpenAi {
                base_url: base.clone(),
                auth: cairn_openai::Auth::None,
            },
            upstream_model: upstream_model.into(),
            timeouts: cairn_openai::Timeouts::default(),
        },
        breaker: cairn_gateway::BreakerSettings::default(),
        pricing: None,
    };
    let mut backup = model("backup", "good");
    backup.pricing = Some(cairn_gateway::Pricing {
        input_per_mtok: 2.5,
        cached_input_per_mtok: 1.25,
        output_per_mtok: 10.0,
        reasoning_per_mtok: None,
    });
    let models = [
        model("primary", "down"),
        backup,
        model("small", "context"),
        model("agent", "tools"),
        model("json", "json-on-second-try"),
        model("small-talk", "slow-50"),
    ];
    let route = |name: &str, targets: &[&str]| RouteSection {
        name: name.into(),
        targets: targets.iter().map(|t| (*t).to_owned()).collect(),
        attempts_per_target: 2,
        deadline_secs: 10,
        strategy: RouteStrategy::Ordered,
        weights: Vec::new(),
        shadow: None,
        shadow_sample: 1.0,
        guards: Vec::new(),
    };
    let routes = [
        route("default", &["primary", "backup"]),
        RouteSection {
            strategy: RouteStrategy::Weighted,
            weights: vec![3, 1],
            ..route("canary", &["backup", "agent"])
        },
        RouteSection {
            shadow: Some("small-talk".into()),
            ..route("shadowed", &["backup"])
        },
    ];
    let test = super::test_app(1 << 20).await;
    let shadows = cairn_runtime::shadows::CatalogShadows::new(test.state.catalog.clone());
    let directory = ModelDirectory::from_config(&models, &routes, Some(shadows))
        .await
        .expect("directory");
    let mut state = test.state.clone();
    state.pipeline = cairn_app::Pipeline::new(cairn_app::PipelineParts {
        models: Arc::new(directory),
        ..state.pipeline.parts().clone()
    });
    (state, upstream, test)
}

fn chat(model: &str, extra: Value) -> String {
    let mut body = json!({"model": model, "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello?"}]});
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    body.to_string()
}

/// The served target's prices give the cost (header, response, lineage); the overhead header
/// says what Cairn added to the upstream call.
#[tokio::test]
async fn answers_carry_their_cost_and_cairns_overhead() {
    let (app, _, _test) = app().await;
    let request = Request::post("/v1/chat/completions")
        .header("content-type", "application/json")
        .body(Body::from(chat("default", json!({}))))
        .expect("request");
    let (status, headers, body) = send(&app, request).await;
    assert_eq!(status, StatusCode::OK);
    // The route fell back from `primary` (unpriced, down) to `backup`: 8 fresh input tokens at
    // $2.50, 4 cached at $1.25 and 3 output at $10 per million.
    let expected = (8.0 * 2.5 + 4.0 * 1.25 + 3.0 * 10.0) / 1e6;
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<f64>().ok())
    };
    assert_eq!(header("x-cairn-cost-usd"), Some(expected));
    let overhead = header("x-cairn-overhead-ms").expect("overhead header");
    // A duration in milliseconds; how long is the benchmark's business, not the test's.
    assert!(overhead.is_finite() && overhead >= 0.0, "{overhead}");
    let body: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(body["cairn"]["cost_usd"].as_f64(), Some(expected));
    let lineage = body["cairn"]["lineage_id"]
        .as_str()
        .expect("lineage id")
        .to_owned();
    let path = format!("/v1/lineage/{lineage}");
    let (app_ref, path) = (&app, path.as_str());
    let record = eventually("the lineage record", || async move {
        let (status, found) = json_request(app_ref, "GET", path, None).await;
        (status == StatusCode::OK).then_some(found)
    })
    .await;
    assert_eq!(record["cost_usd"].as_f64(), Some(expected), "{record}");

    // An unpriced model's answers carry no cost.
    let request = Request::post("/v1/chat/completions")
        .header("content-type", "application/json")
        .body(Body::from(chat("agent", json!({}))))
        .expect("request");
    let (status, headers, _) = send(&app, request).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers.get("x-cairn-cost-usd").is_none());
    assert!(headers.get("x-cairn-overhead-ms").is_some());

    // A streamed call records its time to first token.
    let request = Request::post("/v1/chat/completions")
        .header("content-type", "application/json")
        .body(Body::from(chat("backup", json!({"stream": true}))))
        .expect("request");
    let (status, _, _) = send(&app, request).await;
    assert_eq!(status, StatusCode::OK);

    // Per route and target: requests by outcome, latency, TTFT, tokens, cost, fallbacks.
    let request = Request::get("/metrics")
        .body(Body::empty())
        .expect("request");
    let (_, _, body) = send(&app, request).await;
    let metrics = String::from_utf8_lossy(&body);
    for series in [
        r#"cairn_gateway_requests_total{route="default",outcome="ok"}"#,
        r#"cairn_gateway_request_duration_seconds_count{route="default"}"#,
        r#"cairn_gateway_time_to_first_token_seconds_count{route="backup",target="backup"}"#,
        r#"cairn_gateway_tokens_total{route="default",target="backup",kind="output"}"#,
        r#"cairn_gateway_request_cost_usd_sum{route="default",target="backup"}"#,
        r#"cairn_gateway_fallbacks_total{route="default",target="backup"}"#,
    ] {
        assert!(metrics.contains(series), "no {series} in\n{metrics}");
    }
}

/// The same request is answered from the cache (no upstream call, lineage `cached`); the bypass
/// header and any change to the request go to the model.
#[tokio::test]
async fn identical_requests_are_answered_from_the_cache_unless_bypassed() {
    let (_, upstream, test) = app().await;
    let mut state = test.state.clone();
    let models = [ModelConfig {
        name: "backup".into(),
        backend: ModelBackend::Remote {
            endpoint: cairn_openai::Endpoint::OpenAi {
                base_url: upstream.base_url(),
                auth: cairn_openai::Auth::None,
            },
            upstream_model: "good".into(),
            timeouts: cairn_openai::Timeouts::default(),
        },
        breaker: cairn_gateway::BreakerSettings::default(),
        pricing: None,
    }];
    state.pipeline = cairn_app::Pipeline::new(cairn_app::PipelineParts {
        models: Arc::new(
            ModelDirectory::from_config(&models, &[], None)
                .await
                .expect("directory"),
        ),
        cache: Some(Arc::new(cairn_gateway::ResponseCache::new(
            std::time::Duration::from_secs(60),
            100,
        ))),
        ..state.pipeline.parts().clone()
    });
    let app = cairn_server::router(state);
    let ask = |body: String, bypass: bool| {
        let mut request =
            Request::post("/v1/chat/completions").header("content-type", "application/json");
        if bypass {
            request = request.header("x-cairn-cache", "bypass");
        }
        request.body(Body::from(body)).expect("request")
    };
    let calls = || upstream.chat_calls();
    let before = calls();
    let mut lineages = Vec::new();
    for (body, bypass, expected) in [
        (chat("backup", json!({})), false, "miss"),
        (chat("backup", json!({})), false, "hit"),
        (chat("backup", json!({})), true, ""),
        (chat("backup", json!({"temperature": 0.3})), false, "miss"),
    ] {
        let (status, headers, body) = send(&app, ask(body, bypass)).await;
        assert_eq!(status, StatusCode::OK);
        let cache = headers
            .get("x-cairn-cache")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert_eq!(cache, expected);
        let body: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(body["choices"][0]["message"]["content"], "answer from good");
        lineages.push(
            body["cairn"]["lineage_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    assert_eq!(calls() - before, 3, "the cached answer called the model");
    let path = format!("/v1/lineage/{}", lineages[1]);
    let (app_ref, path) = (&app, path.as_str());
    let status = eventually("the cached answer's lineage record", || async move {
        let (code, record) = json_request(app_ref, "GET", path, None).await;
        (code == StatusCode::OK).then(|| record["status"].clone())
    })
    .await;
    assert_eq!(status, "cached");
}

#[tokio::test]
async fn each_model_is_found_by_id_and_kind() {
    let (app, _, _test) = app().await;
    let (status, body) = json_request(&app, "GET", "/v1/models/small-talk", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], "small-talk");
    assert_eq!(body["object"], "model");
    assert_eq!(body["cairn"]["kind"], "route");
    let (status, body) = json_request(&app, "GET", "/v1/models/app:nowhere", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"]["code"], "model_not_found", "{body}");
}

#[tokio::test]
async fn lists_models_and_routes() {
    let (app, _, _test) = app().await;
    let (status, body) = json_request(&app, "GET", "/v1/models", None).await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = body["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert_eq!(
        ids,
        [
            "agent",
            "backup",
            "canary",
            "default",
            "json",
            "primary",
            "shadowed",
            "small",
            "small-talk"
        ]
    );
}

#[tokio::test]
async fn completes_in_the_openai_shape_and_falls_back_along_a_route() {
    let (app, log, _test) = app().await;
    let (status, body) = json_request(
        &app,
        "POST",
        "/v1/chat/completions",
        Some(&chat(
            "backup",
            json!({"temperature": 0.1, "logprobs": false}),
        )),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "backup");
    assert_eq!(
        body["choices"][0]["message"],
        json!({"role": "assistant", "content": "answer from good"})
    );
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        (
            body["usage"]["prompt_tokens"].as_u64(),
            body["usage"]["total_tokens"].as_u64()
        ),
        (Some(12), Some(15))
    );

    log.clear();
    let (status, body) = json_request(
        &app,
        "POST",
        "/v1/chat/completions",
        Some(&chat("default", json!({}))),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["choices"][0]["message"]["content"], "answer from good");
    let upstream_models = log.models_called();
    assert_eq!(
        upstream_models,
        ["down", "down", "good"],
        "two attempts on the primary, then the backup"
    );
}

#[tokio::test]
async fn upstream_failures_map_to_clear_statuses() {
    let (app, _, _test) = app().await;
    let (status, body) = json_request(
        &app,
        "POST",
        "/v1/chat/completions",
        Some(&chat("primary", json!({}))),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        check_error(&body, "server_error", "upstream_unavailable")
            .contains("overloaded, try later")
    );
    let (status, body) = json_request(
        &app,
        "POST",
        "/v1/chat/completions",
        Some(&chat("small", json!({}))),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        check_error(&body, "invalid_request_error", "context_length_exceeded")
            .contains("maximum context length is 8192 tokens")
    );
    let (status, body) = json_request(
        &app,
        "POST",
        "/v1/chat/completions",
        Some(&chat("gpt-5", json!({}))),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        check_error(&body, "not_found_error", "model_not_found")
            .contains("models: agent, backup, canary, default, json, primary, shadowed, small")
    );
}

#[tokio::test]
async fn bad_requests_say_what_to_fix() {
    let (app, _, _test) = app().await;
    let cases = [
        (chat("backup", json!({"n": 2})), "invalid_request", "`n` must be 1"),
        (json!({"model": "backup", "messages": []}).to_string(), "invalid_request", "`messages` is empty"),
        (json!({"model": "backup"}).to_string(), "invalid_body", "missing field `messages`"),
        (json!({"model": "backup", "messages": [{"role": "robot", "content": "x"}]}).to_string(), "invalid_request", "messages[0].role `robot`"),
        (json!({"model": "backup", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}).to_string(), "invalid_request", "`image_url` are not supported"),
        (chat("backup", json!({"tool_choice": "sometimes"})), "invalid_request", "tool_choice `sometimes` is not one of auto, none, required"),
    ];
    for (body, code, fragment) in cases {
        let (status, response) =
            json_request(&app, "POST", "/v1/chat/completions", Some(&body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {response}");
        let message = check_error(&response, "invalid_request_error", code);
        assert!(message.contains(fragment), "{body}: {message}");
    }
}

#[tokio::test]
async fn tools_are_forwarded_and_tool_calls_returned() {
    let (app, log, _test) = app().await;
    let extra = json!({
        "tools": [{"type": "function", "function": {"name": "lookup", "description": "Search", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}],
        "tool_choice": {"type": "function", "function": {"name": "lookup"}},
        "response_format": {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}, "strict": true}}
    });
    let (status, body) = json_request(
        &app,
        "POST",
        "/v1/chat/completions",
        Some(&chat("agent", extra)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(body["choices"][0]["message"]["content"], Value::Null);
    assert_eq!(
        body["choices"][0]["message"]["tool_calls"][0],
        json!({"id": "call_9", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}})
    );
    let sent = log.requests()[0].body.clone();
    assert_eq!(sent["tools"][0]["function"]["name"], "lookup");
    assert_eq!(
        sent["tool_choice"],
        json!({"type": "function", "function": {"name": "lookup"}})
    );
    assert_eq!(sent["response_format"]["json_schema"]["strict"], true);
}

#[tokio::test]
async fn streams_server_sent_events_with_usage_last() {
    let (app, _, _test) = app().await;
    let body = chat(
        "default",
        json!({"stream": true, "stream_options": {"include_usage": true}}),
    );
    let request = Request::post("/v1/chat/completions")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .expect("request");
    let (status, headers, bytes) =
        tokio::time::timeout(Duration::from_secs(20), send(&app, request))
            .await
            .expect("no hang");
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .expect("ascii")
            .starts_with("text/event-stream")
    );
    let text = String::from_utf8(bytes).expect("utf-8");
    let data: Vec<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .collect();
    assert_eq!(data.last(), Some(&"[DONE]"), "{text}");
    let events: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).expect("JSON event"))
        .collect();
    assert_eq!(events[0]["choices"][0]["delta"]["role"], "assistant");
    let content: String = events
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, "Hi there");
    let finish: Vec<&Value> = events
        .iter()
        .map(|e| &e["choices"][0]["finish_reason"])
        .filter(|f| !f.is_null())
        .collect();
    assert_eq!(finish, [&json!("stop")]);
    let last = events.last().expect("usage event");
    assert_eq!(
        (
            last["choices"].as_array().map(Vec::len),
            last["usage"]["total_tokens"].as_u64()
        ),
        (Some(0), Some(9))
    );
    assert!(
        events
            .iter()
            .all(|e| e["object"] == "chat.completion.chunk" && e["model"] == "default")
    );
}

fn post_chat(body: String, key: Option<&str>) -> Request<Body> {
    let mut request =
        Request::post("/v1/chat/completions").header("content-type", "application/json");
    if let Some(key) = key {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    request.body(Body::from(body)).expect("request")
}

async fn with_limits(rules: Vec<cairn_gateway::LimitRule>) -> (Router, super::TestApp) {
    let (mut state, _upstream, test) = app_state().await;
    state.pipeline = cairn_app::Pipeline::new(cairn_app::PipelineParts {
        limiter: Some(Arc::new(cairn_gateway::Limiter::new(
            rules,
            test.state.catalog.clone(),
        ))),
        ..state.pipeline.parts().clone()
    });
    (cairn_server::router(state), test)
}

fn rule(key: cairn_gateway::Scope) -> cairn_gateway::LimitRule {
    cairn_gateway::LimitRule {
        route: cairn_gateway::Scope::Each,
        key,
        requests_per_minute: None,
        tokens_per_minute: None,
        cost_per_day_usd: None,
    }
}

/// Requests per minute per key: the third call of a key gets 429 with `Retry-After`; other keys
/// and anonymous callers count apart; an unknown Cairn key is refused; other bearer tokens
/// (what OpenAI clients send) are anonymous.
#[tokio::test]
async fn rate_limits_refuse_with_retry_after_per_key() {
    let (app, test) = with_limits(vec![cairn_gateway::LimitRule {
        requests_per_minute: Some(2),
        ..rule(cairn_gateway::Scope::Each)
    }])
    .await;
    let mut keys = Vec::new();
    for name in ["ci", "web"] {
        let key =
            cairn_mcp::keys::generate(name, Vec::new(), Vec::new(), &[cairn_auth::Role::Read]);
        cairn_core::catalog::ApiKeyRepo::create_api_key(&test.catalog, key.record)
            .await
            .expect("key");
        keys.push(key.secret);
    }
    for _ in 0..2 {
        let (status, _, _) = send(&app, post_chat(chat("backup", json!({})), Some(&keys[0]))).await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, headers, body) =
        send(&app, post_chat(chat("backup", json!({})), Some(&keys[0]))).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = headers
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=60).contains(&retry), "{retry}");
    let body: Value = serde_json::from_slice(&body).expect("json");
    let message = check_error(&body, "rate_limit_error", "rate_limit_exceeded");
    assert!(
        message.contains("key `ci` on `backup`") && message.contains("2 requests per minute"),
        "{message}"
    );
    // Another route is counted apart (route = "*").
    let (status, _, _) = send(&app, post_chat(chat("default", json!({})), Some(&keys[0]))).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = send(&app, post_chat(chat("backup", json!({})), Some(&keys[1]))).await;
    assert_eq!(status, StatusCode::OK, "another key has its own count");
    let (status, _, _) = send(
        &app,
        post_chat(chat("backup", json!({})), Some("sk-openai-style")),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a non-Cairn bearer token is anonymous"
    );
    let (status, _, body) = send(
        &app,
        post_chat(chat("backup", json!({})), Some("cairn_0000000000000000")),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let body: Value = serde_json::from_slice(&body).expect("json");
    check_error(&body, "invalid_request_error", "invalid_api_key");
}

/// Tokens are counted when the answer is done (the upstream reports 15 per call), then the
/// tokens-per-minute limit refuses; streamed answers count too.
#[tokio::test]
async fn token_limits_count_answered_tokens() {
    let (app, _test) = with_limits(vec![cairn_gateway::LimitRule {
        tokens_per_minute: Some(20),
        ..rule(cairn_gateway::Scope::All)
    }])
    .await;
    let (status, _, _) = send(
        &app,
        post_chat(chat("backup", json!({"stream": true})), None),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "9 tokens streamed");
    let (status, _, _) = send(&app, post_chat(chat("backup", json!({})), None)).await;
    assert_eq!(status, StatusCode::OK, "the first 9 are under 20");
    // The charge of the last answer is written in the background.
    let app_ref = &app;
    let refused = eventually("refused once 24 tokens are counted", || async move {
        let (status, _, body) = send(app_ref, post_chat(chat("backup", json!({})), None)).await;
        (status == StatusCode::TOO_MANY_REQUESTS).then_some(body)
    })
    .await;
    let body: Value = serde_json::from_slice(&refused).expect("json");
    let message = check_error(&body, "rate_limit_error", "rate_limit_exceeded");
    assert!(message.contains("20 tokens per minute"), "{message}");
}

/// A weighted route sends a share to its canary; a shadowed route answers from its target and
/// stores the shadow's answer next to it.
#[tokio::test]
async fn canary_and_shadow_traffic() {
    let (app, upstream, _test) = app().await;
    for _ in 0..80 {
        let (status, _, _) = send(&app, post_chat(chat("canary", json!({})), None)).await;
        assert_eq!(status, StatusCode::OK);
    }
    let called = upstream.models_called();
    let canary = called.iter().filter(|m| *m == "tools").count();
    // 20 expected of 80 (weights 3:1); the bounds are over 4 standard deviations wide.
    assert!((5..=40).contains(&canary), "canary got {canary} of 80");
    assert_eq!(canary + called.iter().filter(|m| *m == "good").count(), 80);

    upstream.clear();
    let (status, _, body) = send(&app, post_chat(chat("shadowed", json!({})), None)).await;
    assert_eq!(status, StatusCode::OK);
    let body: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(body["choices"][0]["message"]["content"], "answer from good");
    let app_ref = &app;
    let stored = eventually("the stored shadow comparison", || async move {
        let (status, found) =
            json_request(app_ref, "GET", "/v1/routes/shadowed/shadow", None).await;
        assert_eq!(status, StatusCode::OK);
        found["data"]
            .as_array()
            .is_some_and(|d| !d.is_empty())
            .then(|| found["data"][0].clone())
    })
    .await;
    assert_eq!(stored["primary_target"], "backup", "{stored}");
    assert_eq!(stored["primary_output"], "answer from good");
    assert_eq!(stored["shadow_target"], "small-talk");
    assert_eq!(stored["shadow_output"], "answer from slow-50");
    assert!(stored["shadow_latency_ms"].as_u64() >= Some(50), "{stored}");
    assert_eq!(stored["request"][1]["content"], "Hello?");
    let mut models = upstream.models_called();
    models.sort();
    assert_eq!(models, ["good", "slow-50"], "one call each");
}

/// An answer that must match a JSON Schema is asked again with what was wrong, and the response
/// says how many calls it took; one that never matches is refused after the last attempt.
#[tokio::test]
async fn answers_are_repaired_to_their_json_schema_within_bounds() {
    let (app, log, _test) = app().await;
    let format = json!({"response_format": {"type": "json_schema", "json_schema": {"name": "answer", "strict": true,
        "schema": {"type": "object", "required": ["answer"], "properties": {"answer": {"type": "string"}}}}}});
    let request = Request::post("/v1/chat/completions")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(chat("json", format.clone())))
        .expect("request");
    let (status, headers, bytes) = send(&app, request).await;
    let body: Value = serde_json::from_slice(&bytes).expect("JSON");
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers["x-cairn-attempts"], "2");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        r#"{"answer": "fixed"}"#
    );
    assert_eq!(
        body["usage"]["prompt_tokens"], 20,
        "both attempts are counted: {body}"
    );
    let repair = log.requests()[1].body.clone();
    let told = repair["messages"]
        .as_array()
        .expect("messages")
        .last()
        .expect("last")["content"]
        .to_string();
    assert!(told.contains("not JSON"), "{told}");

    log.clear();
    let (status, body) = json_request(
        &app,
        "POST",
        "/v1/chat/completions",
        Some(&chat("backup", format)),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["error"]["code"], "schema_not_met");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("after 3 attempts")),
        "{body}"
    );
    assert_eq!(log.chat_calls(), 3);
}
