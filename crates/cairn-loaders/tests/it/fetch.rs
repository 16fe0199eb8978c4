//! Fetching from a local server on 127.0.0.1: success, redirects, timeout, size limits, and the
//! refusal of private addresses. No test sends traffic anywhere but 127.0.0.1: refused addresses
//! are refused before any connection.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;
use cairn_loaders::{
    FetchOptions, Format, LoadOptions, fetch_url, load_bytes, restricted_address_kind,
};

async fn server() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = Router::new()
        .route("/doc.md", get(|| async { ([(header::CONTENT_TYPE, "text/markdown; charset=utf-8")], "# Hello\n\nWorld\n") }))
        .route(
            "/page",
            get(|| async { ([(header::CONTENT_TYPE, "text/html")], "<html><head><title>T</title></head><body><main><h1>Main</h1><p>Body</p></main></body></html>") }),
        )
        .route(
            "/latin1",
            get(|| async { ([(header::CONTENT_TYPE, "text/plain; charset=ISO-8859-1")], Bytes::from_static(b"caf\xE9 cr\xE8me")) }),
        )
        .route("/redirect", get(|| async { Redirect::temporary("/doc.md") }))
        .route(
            "/hops/{n}",
            get(|Path(n): Path<u32>| async move {
                if n == 0 { Redirect::to("/doc.md") } else { Redirect::to(&format!("/hops/{}", n - 1)) }
            }),
        )
        .route("/slow", get(std::future::pending::<&'static str>))
        .route("/big", get(|| async { vec![b'a'; 4096] }))
        .route(
            "/big-stream",
            get(|| async {
                let chunks = (0..8).map(|_| Ok::<_, Infallible>(Bytes::from(vec![b'b'; 1024])));
                Body::from_stream(futures_util::stream::iter(chunks))
            }),
        )
        .route("/missing", get(|| async { (StatusCode::NOT_FOUND, "no").into_response() }));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

fn allow_private() -> FetchOptions {
    FetchOptions {
        allow_private: true,
        ..FetchOptions::default()
    }
}

#[tokio::test]
async fn fetches_a_document_and_loads_it() {
    let addr = server().await;
    let url = format!("http://{addr}/doc.md");
    let fetched = fetch_url(&url, &allow_private()).await.expect("fetches");
    assert_eq!(fetched.bytes, b"# Hello\n\nWorld\n");
    assert_eq!(
        fetched.content_type.as_deref(),
        Some("text/markdown; charset=utf-8")
    );
    assert_eq!(fetched.url, url);
    assert_eq!(fetched.final_url, url);
    assert_eq!(fetched.format(), Some(Format::Markdown));

    let page = fetch_url(&format!("http://{addr}/page"), &allow_private())
        .await
        .expect("fetches");
    assert_eq!(page.format(), Some(Format::Html));
    let documents = load_bytes(
        &page.final_url,
        &page.bytes,
        Format::Html,
        &LoadOptions::default(),
    )
    .expect("loads");
    assert_eq!(documents[0].text, "# Main\n\nBody");
    assert_eq!(documents[0].url.as_deref(), Some(page.final_url.as_str()));
}

#[tokio::test]
async fn declared_charsets_are_converted_to_utf8() {
    let addr = server().await;
    let fetched = fetch_url(&format!("http://{addr}/latin1"), &allow_private())
        .await
        .expect("fetches");
    assert_eq!(
        String::from_utf8(fetched.bytes).expect("utf-8"),
        "café crème"
    );
}

#[tokio::test]
async fn follows_redirects_up_to_the_limit() {
    let addr = server().await;
    let fetched = fetch_url(&format!("http://{addr}/redirect"), &allow_private())
        .await
        .expect("follows");
    assert_eq!(fetched.final_url, format!("http://{addr}/doc.md"));
    assert_eq!(fetched.url, format!("http://{addr}/redirect"));

    let five = fetch_url(&format!("http://{addr}/hops/4"), &allow_private())
        .await
        .expect("five redirects");
    assert_eq!(five.final_url, format!("http://{addr}/doc.md"));

    let error = fetch_url(&format!("http://{addr}/hops/5"), &allow_private())
        .await
        .expect_err("six redirects");
    assert!(
        error.reason.contains("too many redirects (more than 5)"),
        "{error}"
    );
}

#[tokio::test]
async fn times_out() {
    let addr = server().await;
    let options = FetchOptions {
        timeout: Duration::from_millis(300),
        ..allow_private()
    };
    let url = format!("http://{addr}/slow");
    let error = fetch_url(&url, &options).await.expect_err("times out");
    assert_eq!(error.source, url);
    assert!(error.reason.contains("timed out after 300 ms"), "{error}");
}

#[tokio::test]
async fn refuses_bodies_over_the_limit() {
    let addr = server().await;
    let options = FetchOptions {
        max_bytes: 2048,
        ..allow_private()
    };
    let error = fetch_url(&format!("http://{addr}/big"), &options)
        .await
        .expect_err("content-length");
    assert!(
        error
            .reason
            .contains("is 4096 bytes, over the limit of 2.0 KiB (2048 bytes)"),
        "{error}"
    );
    assert!(
        error.reason.contains("[ingest] max_document_bytes"),
        "{error}"
    );
    let error = fetch_url(&format!("http://{addr}/big-stream"), &options)
        .await
        .expect_err("streamed");
    assert!(
        error.reason.contains("over the limit of 2.0 KiB"),
        "{error}"
    );
}

#[tokio::test]
async fn http_errors_are_reported() {
    let addr = server().await;
    let error = fetch_url(&format!("http://{addr}/missing"), &allow_private())
        .await
        .expect_err("404");
    assert!(error.reason.contains("404 Not Found"), "{error}");
}

#[tokio::test]
async fn private_addresses_are_refused_by_default() {
    let addr = server().await;
    let options = FetchOptions::default();
    let url = format!("http://{addr}/doc.md");
    let error = fetch_url(&url, &options).await.expect_err("loopback");
    assert_eq!(error.source, url);
    assert!(
        error
            .reason
            .contains("refused: 127.0.0.1 is a loopback address"),
        "{error}"
    );
    assert!(
        error
            .reason
            .contains("set [ingest] allow_private_urls = true to allow it"),
        "{error}"
    );

    for (url, expected) in [
        ("http://10.0.0.5/", "10.0.0.5 is a private address"),
        (
            "http://169.254.169.254/latest/meta-data/",
            "169.254.169.254 is a link-local address",
        ),
        ("http://[::1]:8080/", "::1 is a loopback address"),
        (
            "http://[::ffff:192.168.0.1]/",
            "::ffff:192.168.0.1 is a private address",
        ),
        ("http://0x7f000001/", "127.0.0.1 is a loopback address"),
        ("http://100.64.1.1/", "shared (CGNAT)"),
    ] {
        let error = fetch_url(url, &options).await.expect_err("private");
        assert!(error.reason.contains(expected), "{url}: {error}");
    }
}

#[tokio::test]
async fn names_resolving_to_private_addresses_are_refused() {
    let addr = server().await;
    let error = fetch_url(
        &format!("http://localhost:{}/doc.md", addr.port()),
        &FetchOptions::default(),
    )
    .await
    .expect_err("localhost");
    assert!(
        error.reason.contains("refused: localhost resolves to"),
        "{error}"
    );
    assert!(error.reason.contains("a loopback address"), "{error}");
}

#[tokio::test]
async fn only_http_and_https() {
    for url in [
        "ftp://example.com/file.txt",
        "file:///etc/passwd",
        "gopher://example.com/",
    ] {
        let error = fetch_url(url, &FetchOptions::default())
            .await
            .expect_err("scheme");
        assert!(
            error.reason.contains("only http and https"),
            "{url}: {error}"
        );
    }
    let error = fetch_url("not a url", &FetchOptions::default())
        .await
        .expect_err("invalid");
    assert!(error.reason.contains("is not a valid URL"), "{error}");
}

#[test]
fn address_classification() {
    let restricted = [
        "10.0.0.5",
        "172.16.0.1",
        "172.31.255.255",
        "192.168.1.1",
        "127.0.0.1",
        "127.8.9.10",
        "169.254.169.254",
        "100.64.0.1",
        "100.127.255.255",
        "0.0.0.0",
        "255.255.255.255",
        "224.0.0.1",
        "::1",
        "::",
        "fc00::1",
        "fd12:3456::1",
        "fe80::1",
        "ff02::1",
        "::ffff:10.0.0.5",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "64:ff9b::a00:5",
    ];
    for ip in restricted {
        let ip: IpAddr = ip.parse().expect("ip");
        assert!(
            restricted_address_kind(ip).is_some(),
            "{ip} must be refused"
        );
    }
    for ip in [
        "8.8.8.8",
        "1.1.1.1",
        "172.32.0.1",
        "100.128.0.1",
        "2606:4700:4700::1111",
        "::ffff:8.8.8.8",
    ] {
        let ip: IpAddr = ip.parse().expect("ip");
        assert_eq!(restricted_address_kind(ip), None, "{ip} is public");
    }
    let kind = restricted_address_kind("169.254.169.254".parse().expect("ip"));
    assert!(kind.is_some_and(|k| k.contains("metadata")));
}
