//! CORS: pages of the origins `[server] cors_origins` lists may call the API from a browser with a
//! key (preflights answered before authentication, Cairn's headers readable); other origins get no
//! CORS headers and may not change anything; with none listed, nothing changes.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use cairn_auth::Role;
use cairn_runtime::config::{AccessPolicy, AuthMode};
use serde_json::Value;

use crate::{local_access, send, test_app_with};

const ALLOWED: &str = "https://chat.example.com";

fn preflight(origin: &str) -> Request<Body> {
    Request::builder()
        .method("OPTIONS")
        .uri("/v1/chat/completions")
        .header(header::HOST, "127.0.0.1:8080")
        .header(header::ORIGIN, origin)
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .header(
            header::ACCESS_CONTROL_REQUEST_HEADERS,
            "authorization,content-type",
        )
        .body(Body::empty())
        .expect("request")
}

fn chat(origin: &str, key: &str) -> Request<Body> {
    Request::builder()
        .method("POST")
        .uri("/v1/chat/completions")
        .header(header::HOST, "127.0.0.1:8080")
        .header(header::ORIGIN, origin)
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            r#"{"model": "nowhere", "messages": [{"role": "user", "content": "hi"}]}"#,
        ))
        .expect("request")
}

#[tokio::test]
async fn listed_origins_may_call_with_a_key_and_others_may_not() {
    let policy = AccessPolicy {
        mode: AuthMode::Required,
        cors_origins: vec![ALLOWED.to_owned()],
        ..local_access()
    };
    let test = test_app_with(1 << 20, policy).await;
    let generated =
        cairn_mcp::keys::generate("browser", Vec::new(), vec!["*".into()], &[Role::Read]);
    cairn_core::catalog::ApiKeyRepo::create_api_key(&test.catalog, generated.record)
        .await
        .expect("key");
    let key = generated.secret;

    let (status, headers, _) = send(&test.app, preflight(ALLOWED)).await;
    assert_eq!(status, StatusCode::OK, "a preflight needs no credentials");
    assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], ALLOWED);
    let allowed_headers = headers[header::ACCESS_CONTROL_ALLOW_HEADERS]
        .to_str()
        .expect("text")
        .to_ascii_lowercase();
    assert!(
        allowed_headers.contains("authorization"),
        "{allowed_headers}"
    );

    // The call itself passes the origin check (and fails for the model it names, not for CORS),
    // and the browser may read Cairn's headers.
    let (status, headers, body) = send(&test.app, chat(ALLOWED, &key)).await;
    let body: Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], ALLOWED);
    assert!(
        headers[header::ACCESS_CONTROL_EXPOSE_HEADERS]
            .to_str()
            .expect("text")
            .contains("x-cairn-lineage-id")
    );

    // Another origin: no CORS headers, and no change with a key either.
    let (_, headers, _) = send(&test.app, preflight("https://evil.example")).await;
    assert!(headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
    let (status, _, body) = send(&test.app, chat("https://evil.example", &key)).await;
    let body: Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "cross_site_refused");
}

#[tokio::test]
async fn without_listed_origins_there_is_no_cors() {
    let test = test_app_with(1 << 20, local_access()).await;
    let (_, headers, _) = send(&test.app, preflight(ALLOWED)).await;
    assert!(headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
}
