//! The HTTP surface, called in-process through `router(state)` without a socket.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use cairn_server::{AppState, router};
use cairn_sqlite::SqliteCatalog;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tempfile::TempDir;
use tower::ServiceExt;

mod access;
mod cors;
mod evals;
mod guards;
mod openai_api;

struct TestApp {
    app: Router,
    state: AppState,
    catalog: SqliteCatalog,
    _dir: TempDir,
}

async fn test_app(max_body_bytes: usize) -> TestApp {
    test_app_with(max_body_bytes, local_access()).await
}

/// The embedded default's policy: no sign-in, loopback only.
fn local_access() -> cairn_runtime::config::AccessPolicy {
    cairn_runtime::config::AccessPolicy {
        mode: cairn_runtime::config::AuthMode::Local,
        allowed_hosts: Vec::new(),
        user_roles: vec![cairn_auth::Role::Read],
        roles_claim: String::new(),
        protect_metrics: false,
        cors_origins: Vec::new(),
    }
}

async fn test_app_with(
    max_body_bytes: usize,
    access: cairn_runtime::config::AccessPolicy,
) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let catalog = SqliteCatalog::open(&dir.path().join("catalog.db"))
        .await
        .expect("open");
    catalog.migrate().await.expect("migrate");
    let shared: std::sync::Arc<dyn cairn_core::Catalog> = std::sync::Arc::new(catalog.clone());
    let prompts = cairn_prompts::PromptRegistry::new(
        shared.clone(),
        cairn_prompts::RenderLimits::default(),
        std::time::Duration::from_secs(60),
    );
    let rag = std::sync::Arc::new(Err(cairn_runtime::rag::RagSetupError::Index {
        backend: "none",
        reason: "this test app has no index".into(),
    }));
    let pipeline = cairn_app::Pipeline::new(cairn_app::PipelineParts {
        catalog: shared.clone(),
        prompts: prompts.clone(),
        models: std::sync::Arc::new(cairn_runtime::models::ModelDirectory::default()),
        rag: rag.clone(),
        apps: std::sync::Arc::new(Vec::new()),
        cache: None,
        limiter: None,
        guards: cairn_app::GuardPolicy::default(),
        online: None,
        agents: std::sync::Arc::new(Vec::new()),
        agent_runner: None,
    });
    let continuous =
        cairn_runtime::continuous::Watcher::new(Vec::new(), pipeline.clone(), shared.clone());
    let state = AppState {
        catalog: shared,
        prompts,
        pipeline,
        metrics: cairn_server::metrics::handle(),
        max_body_bytes,
        rag,
        max_upload_bytes: max_body_bytes,
        uploads: std::sync::Arc::new(tokio::sync::Semaphore::new(2)),
        max_concurrent_uploads: 2,
        mcp: std::sync::Arc::new(cairn_runtime::config::McpSection::default()),
        auth: None,
        keys: std::sync::Arc::default(),
        access: std::sync::Arc::new(access),
        continuous,
    };
    TestApp {
        app: router(state.clone()),
        state,
        catalog,
        _dir: dir,
    }
}

async fn send(
    app: &Router,
    request: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let response = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec();
    (status, headers, body)
}

async fn json_request(
    app: &Router,
    method: &str,
    uri: &str,
    body: Option<&str>,
) -> (StatusCode, Value) {
    let mut builder = Request::builder().method(method).uri(uri);
    if body.is_some() {
        builder = builder.header(header::CONTENT_TYPE, "application/json");
    }
    let request = builder
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_owned())))
        .expect("request");
    let (status, _, bytes) = send(app, request).await;
    (
        status,
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes))),
    )
}

/// Checks the OpenAI-style error body and returns its message.
/// Polls `probe` until it returns `Some`: for what Cairn writes in the background just after it
/// answers (lineage records, charges against limits, shadow comparisons). The deadline only catches
/// a hang; a loaded machine waits longer instead of failing.
async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let limit = std::time::Duration::from_secs(30);
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not there after {limit:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

fn check_error(body: &Value, kind: &str, code: &str) -> String {
    let error = &body["error"];
    assert_eq!(
        (error["type"].as_str(), error["code"].as_str()),
        (Some(kind), Some(code)),
        "{body}"
    );
    error["message"].as_str().expect("message").to_owned()
}

#[tokio::test]
async fn health_and_readiness() {
    let test = test_app(1024).await;
    assert_eq!(
        json_request(&test.app, "GET", "/healthz", None).await,
        (StatusCode::OK, json!({"status": "ok"}))
    );
    let (status, body) = json_request(&test.app, "GET", "/readyz", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["checks"]["catalog"]["backend"], "sqlite");

    test.catalog.close().await;
    let (status, body) = json_request(&test.app, "GET", "/readyz", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["checks"]["catalog"]["status"], "error");
    // Liveness does not depend on the catalog: restarting the process would not help.
    assert_eq!(
        json_request(&test.app, "GET", "/healthz", None).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn collections_round_trip_with_clear_errors() {
    let test = test_app(1024).await;
    let (status, body) = json_request(
        &test.app,
        "POST",
        "/v1/collections",
        Some(r#"{"name": "handbook", "description": "HR"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["name"], "handbook");

    let (status, body) = json_request(
        &test.app,
        "POST",
        "/v1/collections",
        Some(r#"{"name": "handbook"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(check_error(&body, "invalid_request_error", "conflict").contains("already exists"));

    let (status, body) = json_request(
        &test.app,
        "POST",
        "/v1/collections",
        Some(r#"{"name": "Hand Book"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        check_error(&body, "invalid_request_error", "invalid_value")
            .contains("use 1 to 64 characters")
    );

    let (status, body) = json_request(&test.app, "GET", "/v1/collections", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"].as_array().map(Vec::len), Some(1));
    let (status, body) = json_request(&test.app, "GET", "/v1/collections/handbook", None).await;
    assert_eq!(
        (status, body["description"].as_str()),
        (StatusCode::OK, Some("HR"))
    );
    let (status, body) = json_request(&test.app, "GET", "/v1/collections/nope", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(check_error(&body, "not_found_error", "collection_not_found").contains("`nope`"));
}

#[tokio::test]
async fn malformed_bodies_get_the_error_shape() {
    let test = test_app(1024).await;
    let cases = [
        (r#"{"name": "kb""#, "invalid_json", "not valid JSON"),
        (
            r#"{"description": "no name"}"#,
            "invalid_body",
            "missing field `name`",
        ),
        (r#"{"name": 42}"#, "invalid_body", "invalid type"),
        (
            r#"{"name": "kb", "colour": "red"}"#,
            "invalid_body",
            "unknown field `colour`",
        ),
    ];
    for (body, code, fragment) in cases {
        let (status, response) =
            json_request(&test.app, "POST", "/v1/collections", Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let message = check_error(&response, "invalid_request_error", code);
        assert!(message.contains(fragment), "{body}: {message}");
    }
    let request = Request::post("/v1/collections")
        .body(Body::from(r#"{"name": "kb"}"#))
        .expect("request");
    let (status, _, bytes) = send(&test.app, request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let body: Value = serde_json::from_slice(&bytes).expect("json");
    assert!(
        check_error(&body, "invalid_request_error", "invalid_content_type")
            .contains("Content-Type: application/json")
    );
    assert!(
        test.catalog_is_empty().await,
        "nothing is stored by a refused request"
    );
}

impl TestApp {
    async fn catalog_is_empty(&self) -> bool {
        use cairn_core::catalog::CollectionRepo;
        self.catalog
            .list_collections()
            .await
            .expect("list")
            .is_empty()
    }
}

#[tokio::test]
async fn oversized_bodies_are_refused_declared_or_streamed() {
    let test = test_app(64).await;
    let big = format!(r#"{{"name": "kb", "description": "{}"}}"#, "x".repeat(200));
    let (status, body) = json_request(&test.app, "POST", "/v1/collections", Some(&big)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        check_error(&body, "invalid_request_error", "body_too_large")
            .contains("server.max_body_bytes")
    );

    // No Content-Length: the limit applies while the body is read.
    let chunks: Vec<Result<String, std::io::Error>> =
        vec![Ok(big[..100].to_owned()), Ok(big[100..].to_owned())];
    let request = Request::post("/v1/collections")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stream_of(chunks)))
        .expect("request");
    let (status, _, bytes) = send(&test.app, request).await;
    assert_eq!(
        status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        String::from_utf8_lossy(&bytes)
    );
    assert!(test.catalog_is_empty().await);
}

/// A stream over a vector, without pulling a stream utility crate into the tests.
fn stream_of<T: Send + 'static>(
    items: Vec<T>,
) -> impl futures_core::Stream<Item = T> + Send + 'static {
    struct Iter<T>(std::vec::IntoIter<T>);
    impl<T> futures_core::Stream for Iter<T> {
        type Item = T;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<T>> {
            std::task::Poll::Ready(self.0.next())
        }
    }
    impl<T> Unpin for Iter<T> {}
    Iter(items.into_iter())
}

#[tokio::test]
async fn unknown_routes_and_methods_get_the_error_shape() {
    let test = test_app(1024).await;
    let (status, body) = json_request(&test.app, "GET", "/v2/nothing", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        check_error(&body, "not_found_error", "unknown_route"),
        "no route for GET /v2/nothing"
    );
    let (status, body) = json_request(&test.app, "DELETE", "/healthz", None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    check_error(&body, "invalid_request_error", "method_not_allowed");
}

#[tokio::test]
async fn request_ids_are_made_or_propagated() {
    let test = test_app(1024).await;
    let (_, headers, _) = send(
        &test.app,
        Request::get("/healthz")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    let made = headers
        .get("x-request-id")
        .expect("a request id is made")
        .to_str()
        .expect("ascii");
    assert_eq!(made.len(), 36, "a UUID: {made}");
    let request = Request::get("/healthz")
        .header("x-request-id", "trace-abc-123")
        .body(Body::empty())
        .expect("request");
    let (_, headers, _) = send(&test.app, request).await;
    assert_eq!(
        headers.get("x-request-id").map(|v| v.as_bytes()),
        Some(&b"trace-abc-123"[..])
    );
}

#[tokio::test]
async fn metrics_count_requests_by_route_template() {
    let test = test_app(1024).await;
    json_request(&test.app, "GET", "/v1/collections/some-name", None).await;
    let (status, headers, body) = send(
        &test.app,
        Request::get("/metrics")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .expect("ascii")
            .starts_with("text/plain; version=0.0.4")
    );
    let text = String::from_utf8(body).expect("utf-8");
    assert!(
        text.contains("# TYPE cairn_http_requests_total counter"),
        "{text}"
    );
    assert!(
        text.contains(
            r#"cairn_http_requests_total{method="GET",route="/v1/collections/{name}",status="404"}"#
        ),
        "the route template, not the raw path, labels the series:\n{text}"
    );
    assert!(
        text.contains("cairn_http_request_duration_seconds_bucket"),
        "{text}"
    );
}

#[tokio::test]
async fn the_index_page_is_served() {
    let test = test_app(1024).await;
    let (status, headers, body) = send(
        &test.app,
        Request::get("/").body(Body::empty()).expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .expect("ascii")
            .starts_with("text/html")
    );
    assert!(String::from_utf8_lossy(&body).contains("<title>Cairn</title>"));
}

const PROMPT: &str = "+++\nname = \"support\"\n[variables]\ntype = \"object\"\nrequired = [\"question\"]\nproperties.question = { type = \"string\" }\n+++\n[system]\nBe helpful.\n[user]\n{{ question }}\n";

fn publish_body(source: &str) -> String {
    json!({"source": source, "author": "ada", "message": "via API"}).to_string()
}

#[tokio::test]
async fn prompts_publish_label_render_over_http() {
    let test = test_app(64 * 1024).await;
    let (status, body) = json_request(
        &test.app,
        "POST",
        "/v1/prompts/support/versions",
        Some(&publish_body(PROMPT)),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        (body["version"].as_i64(), body["created"].as_bool()),
        (Some(1), Some(true))
    );
    let (status, body) = json_request(
        &test.app,
        "POST",
        "/v1/prompts/support/versions",
        Some(&publish_body(PROMPT)),
    )
    .await;
    assert_eq!(
        (status, body["created"].as_bool()),
        (StatusCode::OK, Some(false)),
        "unchanged is a no-op"
    );
    let v2 = PROMPT.replace("Be helpful.", "Be very helpful.");
    let (status, _) = json_request(
        &test.app,
        "POST",
        "/v1/prompts/support/versions",
        Some(&publish_body(&v2)),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);

    let (status, body) = json_request(
        &test.app,
        "PUT",
        "/v1/prompts/support/labels/production",
        Some(r#"{"version": 1, "reason": "launch"}"#),
    )
    .await;
    assert_eq!(
        (status, body["to_version"].as_i64()),
        (StatusCode::OK, Some(1)),
        "{body}"
    );

    let (status, body) = json_request(
        &test.app,
        "POST",
        "/v1/prompts/support/render",
        Some(r#"{"label": "production", "variables": {"question": "Where is my order?"}}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["prompt"], json!({"name": "support", "version": 1}));
    assert_eq!(
        body["messages"][0],
        json!({"role": "system", "content": "Be helpful."})
    );
    assert_eq!(
        body["messages"][1],
        json!({"role": "user", "content": "Where is my order?"})
    );

    let (status, body) = json_request(&test.app, "GET", "/v1/prompts/support", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["versions"].as_array().map(Vec::len), Some(2));
    assert_eq!(body["labels"][0]["label"], "production");
    assert_eq!(body["label_moves"][0]["reason"], "launch");
    let (status, body) =
        json_request(&test.app, "GET", "/v1/prompts/support/versions/2", None).await;
    assert_eq!(
        (
            status,
            body["template"]
                .as_str()
                .map(|t| t.contains("very helpful"))
        ),
        (StatusCode::OK, Some(true))
    );
    let (_, body) = json_request(&test.app, "GET", "/v1/prompts", None).await;
    assert_eq!(
        body["data"][0],
        json!({"name": "support", "latest_version": 2, "updated_at": body["data"][0]["updated_at"], "labels": {"production": 1}})
    );
}

#[tokio::test]
async fn prompt_errors_say_what_to_fix() {
    let test = test_app(64 * 1024).await;
    let broken = PROMPT.replace("{{ question }}", "{{ question }");
    let (status, body) = json_request(
        &test.app,
        "POST",
        "/v1/prompts/support/versions",
        Some(&publish_body(&broken)),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let message = check_error(&body, "invalid_request_error", "template_syntax_error");
    assert!(message.contains("line 11"), "{message}");

    let typo = PROMPT.replace("{{ question }}", "{{ questoin }}");
    let (status, body) = json_request(
        &test.app,
        "POST",
        "/v1/prompts/support/versions",
        Some(&publish_body(&typo)),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let message = check_error(&body, "invalid_request_error", "undeclared_variable");
    assert!(
        message.contains("`questoin`") && message.contains("declared variables: question"),
        "{message}"
    );

    let (status, body) = json_request(
        &test.app,
        "POST",
        "/v1/prompts/other/versions",
        Some(&publish_body(PROMPT)),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    check_error(&body, "invalid_request_error", "name_mismatch");

    json_request(
        &test.app,
        "POST",
        "/v1/prompts/support/versions",
        Some(&publish_body(PROMPT)),
    )
    .await;
    let (status, body) = json_request(
        &test.app,
        "POST",
        "/v1/prompts/support/render",
        Some(r#"{"variables": {"question": 5}}"#),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let message = check_error(&body, "invalid_request_error", "invalid_variables");
    assert!(
        message.contains("`question`: 5 is not of type \"string\""),
        "{message}"
    );

    let (status, body) = json_request(
        &test.app,
        "PUT",
        "/v1/prompts/support/labels/production",
        Some(r#"{"version": 9}"#),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(check_error(&body, "not_found_error", "prompt_not_found").contains("versions: 1 to 1"));
    let (status, body) =
        json_request(&test.app, "POST", "/v1/prompts/nope/render", Some(r#"{}"#)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    check_error(&body, "not_found_error", "prompt_not_found");
}
