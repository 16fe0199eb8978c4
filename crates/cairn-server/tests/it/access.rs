//! The authentication layer: every route but the public ones needs a caller where authentication
//! is required; roles are enforced per route; a key's collections bound what it sees; on the
//! loopback default, other hosts (DNS rebinding) and other sites' pages (cross-site posts) are
//! refused.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use cairn_auth::Role;
use cairn_runtime::config::{AccessPolicy, AuthMode};
use serde_json::Value;

use crate::{TestApp, check_error, local_access, send, test_app_with};

/// Every route the server has, with a method it answers; the ids in paths are well-formed.
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/v1/collections"),
    ("POST", "/v1/collections"),
    ("GET", "/v1/collections/handbook"),
    ("DELETE", "/v1/collections/handbook"),
    ("GET", "/v1/collections/handbook/documents"),
    ("POST", "/v1/collections/handbook/documents"),
    (
        "DELETE",
        "/v1/collections/handbook/documents/00000000-0000-0000-0000-000000000000",
    ),
    ("POST", "/v1/collections/handbook/search"),
    ("GET", "/v1/routes/default/shadow"),
    ("GET", "/v1/audit"),
    ("GET", "/v1/lineage"),
    ("GET", "/v1/keys"),
    ("POST", "/v1/keys"),
    ("DELETE", "/v1/keys/ci"),
    ("GET", "/v1/prompts"),
    ("GET", "/v1/prompts/rag_answer"),
    ("POST", "/v1/prompts/rag_answer/versions"),
    ("GET", "/v1/prompts/rag_answer/versions/1"),
    ("PUT", "/v1/prompts/rag_answer/labels/production"),
    ("POST", "/v1/prompts/rag_answer/render"),
    ("GET", "/v1/evals/runs"),
    ("GET", "/v1/evals/runs/00000000-0000-0000-0000-000000000000"),
    ("GET", "/v1/evals/compare?before=a&after=b"),
    ("POST", "/v1/chat/completions"),
    ("POST", "/v1/embeddings"),
    ("POST", "/v1/guard/check"),
    ("GET", "/v1/lineage/00000000-0000-0000-0000-000000000000"),
    (
        "POST",
        "/v1/lineage/00000000-0000-0000-0000-000000000000/feedback",
    ),
    ("GET", "/v1/models"),
    ("GET", "/v1/models/default"),
    ("GET", "/v1/me"),
    ("GET", "/v1/apps"),
    ("GET", "/v1/conversations"),
    ("POST", "/v1/conversations"),
    (
        "GET",
        "/v1/conversations/00000000-0000-0000-0000-000000000000",
    ),
    (
        "PATCH",
        "/v1/conversations/00000000-0000-0000-0000-000000000000",
    ),
    (
        "DELETE",
        "/v1/conversations/00000000-0000-0000-0000-000000000000",
    ),
    (
        "POST",
        "/v1/conversations/00000000-0000-0000-0000-000000000000/messages",
    ),
    (
        "GET",
        "/v1/documents/00000000-0000-0000-0000-000000000000/text",
    ),
    ("GET", "/v1/no-such-route"),
];

const PUBLIC: &[&str] = &[
    "/healthz",
    "/readyz",
    "/",
    "/evals",
    "/assets/app.js",
    "/metrics",
    "/.well-known/oauth-protected-resource/mcp",
];

fn required() -> AccessPolicy {
    AccessPolicy {
        mode: AuthMode::Required,
        ..local_access()
    }
}

fn request(method: &str, path: &str, key: Option<&str>, body: &str) -> Request<Body> {
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(key) = key {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {key}"));
    }
    builder.body(Body::from(body.to_owned())).expect("request")
}

async fn call(test: &TestApp, request: Request<Body>) -> (StatusCode, Value) {
    let (status, _, body) = send(&test.app, request).await;
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

async fn key(test: &TestApp, name: &str, collections: &[&str], roles: &[Role]) -> String {
    let generated = cairn_mcp::keys::generate(
        name,
        Vec::new(),
        collections.iter().map(|c| (*c).to_owned()).collect(),
        roles,
    );
    cairn_core::catalog::ApiKeyRepo::create_api_key(&test.catalog, generated.record)
        .await
        .expect("key");
    generated.secret
}

#[tokio::test]
async fn where_authentication_is_required_every_route_but_the_public_ones_refuses_strangers() {
    let test = test_app_with(1 << 20, required()).await;
    for (method, path) in ROUTES {
        for credential in [None, Some("sk-openai-style"), Some("cairn_0000")] {
            let (status, body) = call(&test, request(method, path, credential, "{}")).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with {credential:?}: {body}"
            );
            if credential.is_none() {
                assert_eq!(body["error"]["type"], "authentication_error", "{body}");
            }
        }
    }
    for path in PUBLIC {
        let (status, _, _) = send(&test.app, request("GET", path, None, "")).await;
        assert_ne!(status, StatusCode::UNAUTHORIZED, "{path} is public");
    }
    let (status, body) = call(&test, request("GET", "/v1/collections", None, "")).await;
    let message = check_error(&body, "authentication_error", "authentication_required");
    assert!(message.contains("cairn key create"), "{message} ({status})");
}

#[tokio::test]
async fn each_route_needs_its_role_and_admin_holds_them_all() {
    let test = test_app_with(1 << 20, required()).await;
    let reader = key(&test, "reader", &["*"], &[Role::Read]).await;
    let writer = key(&test, "writer", &["*"], &[Role::Read, Role::Write]).await;
    let admin = key(&test, "admin", &["*"], &[Role::Admin]).await;
    let create = r#"{"name": "handbook"}"#;

    let (status, body) = call(
        &test,
        request("POST", "/v1/collections", Some(&reader), create),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let message = check_error(&body, "permission_error", "missing_role");
    assert!(
        message.contains("`reader` lacks the write role") && message.contains("--roles write"),
        "{message}"
    );
    let (status, body) = call(
        &test,
        request("POST", "/v1/collections", Some(&writer), create),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _) = call(&test, request("GET", "/v1/collections", Some(&reader), "")).await;
    assert_eq!(status, StatusCode::OK);

    for (method, path) in [
        ("PUT", "/v1/prompts/rag_answer/labels/production"),
        ("POST", "/v1/prompts/rag_answer/versions"),
        ("GET", "/v1/routes/default/shadow"),
    ] {
        let (status, body) = call(&test, request(method, path, Some(&writer), "{}")).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {body}");
        let (status, body) = call(&test, request(method, path, Some(&admin), "{}")).await;
        assert_ne!(status, StatusCode::FORBIDDEN, "{method} {path}: {body}");
        assert_ne!(status, StatusCode::UNAUTHORIZED, "{method} {path}: {body}");
    }
    let (status, body) = call(&test, request("GET", "/v1/me", Some(&admin), "")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["user"], "key:admin");
    assert_eq!(body["roles"], serde_json::json!(["admin"]));
}

#[tokio::test]
async fn a_collection_outside_a_keys_reach_looks_like_one_that_does_not_exist() {
    let test = test_app_with(1 << 20, required()).await;
    let admin = key(&test, "admin", &["*"], &[Role::Admin]).await;
    for name in ["handbook", "hr"] {
        let body = format!(r#"{{"name": "{name}"}}"#);
        let (status, _) = call(
            &test,
            request("POST", "/v1/collections", Some(&admin), &body),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let limited = key(&test, "limited", &["handbook"], &[Role::Read, Role::Write]).await;
    let (_, listed) = call(&test, request("GET", "/v1/collections", Some(&limited), "")).await;
    let names: Vec<&str> = listed["data"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["handbook"]);
    let mut answers = Vec::new();
    for name in ["hr", "nope"] {
        for (method, path, body) in [
            ("GET", format!("/v1/collections/{name}"), ""),
            ("DELETE", format!("/v1/collections/{name}"), ""),
            ("GET", format!("/v1/collections/{name}/documents"), ""),
        ] {
            let (status, body) = call(&test, request(method, &path, Some(&limited), body)).await;
            answers.push((method, status, body.to_string().replace(name, "NAME")));
        }
    }
    assert_eq!(
        answers[..3],
        answers[3..],
        "hidden and missing answer alike"
    );
    assert!(
        answers
            .iter()
            .all(|(_, status, _)| *status == StatusCode::NOT_FOUND)
    );
    let (status, _) = call(
        &test,
        request("GET", "/v1/collections/hr", Some(&admin), ""),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "the collection is still there");
}

#[tokio::test]
async fn the_loopback_default_refuses_other_hosts_and_other_sites_pages() {
    let test = test_app_with(1 << 20, local_access()).await;
    // DNS rebinding: a page at evil.example whose name now resolves to 127.0.0.1.
    let rebound = Request::get("/v1/collections")
        .header(header::HOST, "evil.example:8080")
        .body(Body::empty())
        .expect("request");
    let (status, body) = call(&test, rebound).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let message = check_error(&body, "permission_error", "host_not_allowed");
    assert!(message.contains("server.allowed_hosts"), "{message}");

    // A cross-site form post: multipart/form-data is a CORS simple request, sent without asking.
    let boundary = "x-boundary";
    let form = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"evil.md\"\r\n\r\n# planted\r\n--{boundary}--\r\n"
    );
    let upload = |origin: &str| {
        Request::post("/v1/collections/planted/documents")
            .header(header::HOST, "127.0.0.1:8080")
            .header(header::ORIGIN, origin)
            .header(
                header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(Body::from(form.clone()))
            .expect("request")
    };
    let (status, body) = call(&test, upload("https://evil.example")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    check_error(&body, "permission_error", "cross_site_refused");
    let delete = Request::delete("/v1/collections/planted")
        .header(header::HOST, "127.0.0.1:8080")
        .header("sec-fetch-site", "cross-site")
        .body(Body::empty())
        .expect("request");
    assert_eq!(call(&test, delete).await.0, StatusCode::FORBIDDEN);
    // The same upload from Cairn's own page passes the layer (this test app has no index: 503).
    let (status, body) = call(&test, upload("http://127.0.0.1:8080")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    // Listed hosts are answered; probes answer any host (kubelet and Prometheus use pod IPs).
    let listed = test_app_with(
        1 << 20,
        AccessPolicy {
            allowed_hosts: vec!["cairn.example.com".into()],
            ..local_access()
        },
    )
    .await;
    let named = Request::get("/v1/collections")
        .header(header::HOST, "cairn.example.com")
        .body(Body::empty())
        .expect("request");
    assert_eq!(call(&listed, named).await.0, StatusCode::OK);
    let probe = Request::get("/healthz")
        .header(header::HOST, "10.0.0.7:8080")
        .body(Body::empty())
        .expect("request");
    assert_eq!(call(&test, probe).await.0, StatusCode::OK);
}

#[tokio::test]
async fn without_authentication_everyone_may_do_everything_and_metrics_can_be_protected() {
    let open = test_app_with(
        1 << 20,
        AccessPolicy {
            mode: AuthMode::None,
            ..local_access()
        },
    )
    .await;
    let (status, body) = call(
        &open,
        request("POST", "/v1/collections", None, r#"{"name": "kb"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, me) = call(&open, request("GET", "/v1/me", None, "")).await;
    assert_eq!(me["user"], "anonymous");

    let test = test_app_with(
        1 << 20,
        AccessPolicy {
            protect_metrics: true,
            ..required()
        },
    )
    .await;
    let reader = key(&test, "reader", &["*"], &[Role::Read]).await;
    let admin = key(&test, "admin", &[], &[Role::Admin]).await;
    assert_eq!(
        call(&test, request("GET", "/metrics", None, "")).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(&test, request("GET", "/metrics", Some(&reader), ""))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let (status, _, _) = send(&test.app, request("GET", "/metrics", Some(&admin), "")).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn changes_and_refusals_are_audited_and_only_admins_read_the_log() {
    let test = test_app_with(1 << 20, required()).await;
    let reader = key(&test, "reader", &["*"], &[Role::Read]).await;
    let admin = key(&test, "admin", &["*"], &[Role::Admin]).await;
    let create = r#"{"name": "handbook"}"#;
    call(
        &test,
        request("POST", "/v1/collections", Some(&admin), create),
    )
    .await;
    call(
        &test,
        request("POST", "/v1/collections", Some(&reader), create),
    )
    .await;
    call(
        &test,
        request("DELETE", "/v1/collections/handbook", None, ""),
    )
    .await;
    // Reading is not audited (answers have lineage).
    call(&test, request("GET", "/v1/collections", Some(&reader), "")).await;

    let (status, body) = call(&test, request("GET", "/v1/audit", Some(&reader), "")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = call(&test, request("GET", "/v1/audit", Some(&admin), "")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let events: Vec<(String, String, String, String)> = body["data"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| {
            let text = |k: &str| e[k].as_str().unwrap_or_default().to_owned();
            (
                text("actor"),
                text("action"),
                text("target"),
                text("outcome"),
            )
        })
        .collect();
    let expected = [
        ("key:reader", "GET /v1/audit", "/v1/audit", "refused"),
        (
            "anonymous",
            "DELETE /v1/collections/{name}",
            "/v1/collections/handbook",
            "refused",
        ),
        (
            "key:reader",
            "POST /v1/collections",
            "/v1/collections",
            "refused",
        ),
        ("key:admin", "POST /v1/collections", "/v1/collections", "ok"),
    ];
    let expected: Vec<(String, String, String, String)> = expected
        .iter()
        .map(|(a, b, c, d)| ((*a).into(), (*b).into(), (*c).into(), (*d).into()))
        .collect();
    assert_eq!(events, expected);
    assert_eq!(body["data"][3]["detail"]["status"], 201);
    assert!(
        body["data"][2]["detail"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("lacks the write role")),
        "{body}"
    );
    let (_, only) = call(
        &test,
        request(
            "GET",
            "/v1/audit?outcome=refused&actor=key:reader",
            Some(&admin),
            "",
        ),
    )
    .await;
    assert_eq!(only["data"].as_array().map(Vec::len), Some(2), "{only}");
    let (status, _) = call(
        &test,
        request("GET", "/v1/audit?outcome=maybe", Some(&admin), ""),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_sign_in_providers_tokens_name_users_with_their_roles_across_a_key_rotation() {
    use cairn_testkit::oidc::{CLIENT_ID, FakeOidc};
    let provider = FakeOidc::start().await;
    let settings = cairn_server::auth::OidcSettings {
        issuer: provider.issuer().to_owned(),
        client_id: CLIENT_ID.into(),
        client_secret: None,
        redirect_url: String::new(),
        scopes: vec!["openid".into()],
        audiences: vec![CLIENT_ID.into()],
        session_ttl: std::time::Duration::from_secs(3600),
        session_secret: None,
    };
    let access = AccessPolicy {
        roles_claim: "roles".into(),
        ..required()
    };
    let oidc = cairn_server::auth::Oidc::discover(settings, &access)
        .await
        .expect("discover the provider");
    let mut test = test_app_with(1 << 20, access).await;
    test.state.auth = Some(std::sync::Arc::new(oidc));
    test.app = cairn_server::router(test.state.clone());
    let minutes = chrono::Duration::minutes;

    let alice = provider.access_token("alice", CLIENT_ID, &["write", "root"], minutes(5));
    let (status, me) = call(&test, request("GET", "/v1/me", Some(&alice), "")).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(
        (&me["user"], &me["name"], &me["roles"]),
        (
            &Value::from("sub-alice"),
            &Value::from("alice"),
            &serde_json::json!(["read", "write"])
        ),
        "auth.user_roles plus the token's roles that are roles"
    );
    let (status, body) = call(
        &test,
        request("POST", "/v1/collections", Some(&alice), r#"{"name": "kb"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let expired = provider.access_token("alice", CLIENT_ID, &[], minutes(-10));
    let elsewhere = provider.access_token("alice", "another-app", &[], minutes(5));
    let mut tampered = alice.clone();
    tampered.insert(alice.find('.').expect("a JWT") + 3, 'x');
    for token in [&expired, &elsewhere, &tampered] {
        let (status, body) = call(&test, request("GET", "/v1/me", Some(token), "")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        check_error(&body, "authentication_error", "invalid_token");
    }

    // The provider rotates its key: a token signed with the new one fetches the key set again.
    provider.rotate_key();
    let rotated = provider.access_token("bob", CLIENT_ID, &[], minutes(5));
    let (status, me) = call(&test, request("GET", "/v1/me", Some(&rotated), "")).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["user"], "sub-bob");
    let (status, _) = call(&test, request("GET", "/v1/me", Some(&alice), "")).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the retired key no longer verifies"
    );

    // `/mcp` takes the same tokens, and its metadata names the provider.
    let initialize = Request::post("/mcp")
        .header(header::HOST, "127.0.0.1:8080")
        .header(header::AUTHORIZATION, format!("Bearer {rotated}"))
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "application/json, text/event-stream")
        .body(Body::from(
            serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {},
                "clientInfo": {"name": "test", "version": "1"}}})
            .to_string(),
        ))
        .expect("request");
    let (status, _, body) = send(&test.app, initialize).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let (_, metadata) = call(
        &test,
        request("GET", "/.well-known/oauth-protected-resource/mcp", None, ""),
    )
    .await;
    assert_eq!(
        metadata["authorization_servers"],
        serde_json::json!([provider.issuer()])
    );
}

#[tokio::test]
async fn a_flood_of_refusals_is_counted_rather_than_written_one_by_one() {
    let test = test_app_with(1 << 20, required()).await;
    let admin = key(&test, "admin", &["*"], &[Role::Admin]).await;
    for _ in 0..100 {
        call(&test, request("GET", "/v1/collections", None, "")).await;
    }
    // A later second: the next refusal is written with the count of those left out.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    call(&test, request("GET", "/v1/prompts", None, "")).await;
    let (_, body) = call(
        &test,
        request(
            "GET",
            "/v1/audit?outcome=refused&limit=1000",
            Some(&admin),
            "",
        ),
    )
    .await;
    let events = body["data"].as_array().expect("events");
    assert!(events.len() < 60, "{} refusals written", events.len());
    assert_eq!(events[0]["target"], "/v1/prompts", "{}", events[0]);
    let left_out = events[0]["detail"]["refusals_not_recorded_before"]
        .as_u64()
        .expect("the count of refusals left out");
    assert_eq!(
        left_out + events.len() as u64,
        101,
        "every refusal is written or counted"
    );
}

/// Uploads hold their files in memory while they are read: past the configured number at once,
/// the next one is told to retry.
#[tokio::test]
async fn uploads_past_the_concurrency_cap_are_told_to_retry() {
    let test = test_app_with(1 << 20, local_access()).await;
    let held: Vec<_> = (0..2)
        .map(|_| {
            test.state
                .uploads
                .clone()
                .try_acquire_owned()
                .expect("a slot")
        })
        .collect();
    let upload = || {
        Request::post("/v1/collections/kb/documents")
            .header(
                header::CONTENT_TYPE,
                "multipart/form-data; boundary=b",
            )
            .body(Body::from(
                "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.md\"\r\n\r\n# A\r\n--b--\r\n",
            ))
            .expect("request")
    };
    let (status, headers, body) = send(&test.app, upload()).await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        String::from_utf8_lossy(&body)
    );
    assert_eq!(headers[header::RETRY_AFTER], "1");
    let body: Value = serde_json::from_slice(&body).expect("json");
    assert!(
        check_error(&body, "rate_limit_error", "uploads_busy").contains("max_concurrent_uploads")
    );
    drop(held);
    // A free slot: the upload goes on (to the index this test app lacks: 503).
    let (status, _, _) = send(&test.app, upload()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
}

/// Admins manage keys over REST: a key made there works with its roles, is listed without its
/// secret, and stops working on this server as soon as it is revoked.
#[tokio::test]
async fn admins_make_list_and_revoke_keys_over_the_api() {
    let test = test_app_with(1 << 20, required()).await;
    let admin = key(&test, "admin", &["*"], &[Role::Admin]).await;
    let reader = key(&test, "reader", &["*"], &[Role::Read]).await;
    let (status, _) = call(&test, request("GET", "/v1/keys", Some(&reader), "")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, made) = call(
        &test,
        request(
            "POST",
            "/v1/keys",
            Some(&admin),
            r#"{"name": "ingest-bot", "roles": ["read", "write"], "collections": ["kb"]}"#,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let secret = made["key"].as_str().expect("the secret, once").to_owned();
    let (status, body) = call(
        &test,
        request(
            "POST",
            "/v1/collections",
            Some(&secret),
            r#"{"name": "kb"}"#,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let (_, listed) = call(&test, request("GET", "/v1/keys", Some(&admin), "")).await;
    let text = listed.to_string();
    assert!(
        text.contains("ingest-bot") && !text.contains(&secret),
        "{text}"
    );
    assert!(!text.contains("key_hash"), "{text}");
    let (status, body) = call(
        &test,
        request(
            "POST",
            "/v1/keys",
            Some(&admin),
            r#"{"name": "x", "roles": ["root"]}"#,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(check_error(&body, "invalid_request_error", "invalid_key").contains("not a role"));

    let (status, _, _) = send(
        &test.app,
        request("DELETE", "/v1/keys/ingest-bot", Some(&admin), ""),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = call(&test, request("GET", "/v1/collections", Some(&secret), "")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "revoked here at once");
    let (status, _) = call(
        &test,
        request("DELETE", "/v1/keys/ingest-bot", Some(&admin), ""),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Admins list answers' lineage records (everyone's answers), filtered by app; readers may not.
#[tokio::test]
async fn admins_list_answers_lineage_by_app() {
    let test = test_app_with(1 << 20, required()).await;
    let admin = key(&test, "admin", &["*"], &[Role::Admin]).await;
    let reader = key(&test, "reader", &["*"], &[Role::Read]).await;
    for app in ["docs", "chat"] {
        cairn_core::catalog::LineageRepo::record_lineage(
            &test.catalog,
            cairn_core::catalog::LineageRecord {
                id: uuid::Uuid::now_v7(),
                conversation_id: None,
                app: Some(app.into()),
                prompt_name: None,
                prompt_version: None,
                model: "m".into(),
                route: None,
                retrieval: serde_json::json!([]),
                guard_verdicts: serde_json::json!([]),
                steps: serde_json::json!([]),
                usage: cairn_core::model::Usage::default(),
                cost_usd: 0.0,
                latency_ms: 1,
                status: "ok".into(),
                error: None,
                created_at: chrono::Utc::now(),
            },
        )
        .await
        .expect("lineage");
    }
    let (status, _) = call(&test, request("GET", "/v1/lineage", Some(&reader), "")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, all) = call(&test, request("GET", "/v1/lineage", Some(&admin), "")).await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert_eq!(all["data"].as_array().map(Vec::len), Some(2));
    let (_, docs) = call(
        &test,
        request("GET", "/v1/lineage?app=docs", Some(&admin), ""),
    )
    .await;
    let apps: Vec<&str> = docs["data"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|r| r["app"].as_str())
        .collect();
    assert_eq!(apps, ["docs"]);
}
