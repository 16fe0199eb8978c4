//! Downloading a document from an http(s) URL, safely: a URL given to a server must not become a
//! way into its private network (SSRF). It parses nothing it downloads.
//!
//! - Only `http` and `https`.
//! - Every address a host resolves to is checked, and the connection goes to those checked
//!   addresses only: the client's DNS resolver is the checking one, so a name that resolves to a
//!   public address when checked and to a private one when connecting (DNS rebinding) cannot slip
//!   through. IP literals, which no resolver sees, are checked before the request.
//! - Redirects are followed by hand (at most [`MAX_REDIRECTS`]), each hop checked the same way.
//! - No proxy from the environment is used (a proxy would resolve the names itself).
//! - The timeout covers the whole fetch, redirects and body included; the size limit is enforced
//!   on `Content-Length` and again while the body streams in.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{ACCEPT, CONTENT_TYPE, LOCATION};
use url::{Host, Url};

use crate::text::meta_charset;
use crate::{DEFAULT_MAX_BYTES, DocumentError, Format, human_size};

/// Redirects followed before giving up.
pub const MAX_REDIRECTS: usize = 5;

const ALLOW_HINT: &str = "list the host in [ingest] allowed_private_hosts, or set [ingest] allow_private_urls = true to allow it";

/// How URLs are fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchOptions {
    /// Allow hosts on loopback, private, link-local and other non-public addresses (default
    /// false: refused, to keep a server's private network out of reach).
    pub allow_private: bool,
    /// Hosts (names, or addresses as written in URLs) that may be on non-public addresses: the
    /// internal hosts an operator means to ingest from, and no others.
    pub allowed_private_hosts: Vec<String>,
    /// The whole fetch, redirects and body included (default 30 s).
    pub timeout: Duration,
    /// Larger bodies are refused (default [`DEFAULT_MAX_BYTES`]).
    pub max_bytes: u64,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            allow_private: false,
            allowed_private_hosts: Vec::new(),
            timeout: Duration::from_secs(30),
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

/// A downloaded resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The URL asked for.
    pub url: String,
    /// The URL the content came from, after redirects.
    pub final_url: String,
    /// The `Content-Type` header, as sent.
    pub content_type: Option<String>,
    /// The body. Text declared in another charset (by the header, or an HTML `<meta charset>`)
    /// has been converted to UTF-8.
    pub bytes: Vec<u8>,
}

impl Fetched {
    /// The format to read it as, from its content type and URL (see [`Format::detect`]).
    pub fn format(&self) -> Option<Format> {
        Format::detect(self.content_type.as_deref(), &self.final_url)
    }
}

/// What kind of non-public address `ip` is (`"a private address"`, `"a loopback address"`, …),
/// or `None` for a public unicast address. IPv4-mapped, IPv4-compatible and NAT64 IPv6 addresses
/// are judged by the IPv4 address they carry.
pub fn restricted_address_kind(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => restricted_v4(v4),
        IpAddr::V6(v6) => restricted_v6(v6),
    }
}

fn restricted_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    if ip.is_unspecified() || a == 0 {
        Some("an unspecified (\"this network\") address")
    } else if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_private() {
        Some("a private address")
    } else if a == 169 && b == 254 {
        Some("a link-local address (where cloud metadata services live)")
    } else if a == 100 && (64..128).contains(&b) {
        Some("a shared (CGNAT) address")
    } else if ip.is_broadcast() {
        Some("a broadcast address")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else if a >= 240 {
        Some("a reserved address")
    } else if (a == 192 && b == 0 && c == 0) || (a == 198 && (18..20).contains(&b)) {
        Some("a special-purpose address")
    } else if ip.is_documentation() {
        Some("a documentation address")
    } else {
        None
    }
}

fn restricted_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if ip.is_unspecified() {
        return Some("an unspecified address");
    }
    if ip.is_loopback() {
        return Some("a loopback address");
    }
    let segments = ip.segments();
    // ::ffff:a.b.c.d (mapped), ::a.b.c.d (compatible, deprecated), 64:ff9b::a.b.c.d (NAT64).
    if let Some(v4) = ip.to_ipv4() {
        return restricted_v4(v4);
    }
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [_, _, _, _, _, _, hi, lo] = segments;
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        return restricted_v4(Ipv4Addr::new(a, b, c, d));
    }
    let first = segments[0];
    if first & 0xfe00 == 0xfc00 {
        Some("a private (unique local) address")
    } else if first & 0xffc0 == 0xfe80 {
        Some("a link-local address")
    } else if first & 0xffc0 == 0xfec0 {
        Some("a site-local address")
    } else if first & 0xff00 == 0xff00 {
        Some("a multicast address")
    } else if first == 0x2001 && segments[1] == 0x0db8 {
        Some("a documentation address")
    } else {
        None
    }
}

/// Judges an address: `Err(kind)` refuses it.
type Policy = Arc<dyn Fn(IpAddr) -> Result<(), &'static str> + Send + Sync>;

fn standard_policy(allow_private: bool) -> Policy {
    Arc::new(move |ip| match restricted_address_kind(ip) {
        Some(kind) if !allow_private => Err(kind),
        _ => Ok(()),
    })
}

/// Downloads `url` (http or https), refusing non-public addresses unless
/// [`FetchOptions::allow_private`], following up to [`MAX_REDIRECTS`] redirects, within
/// [`FetchOptions::timeout`] and [`FetchOptions::max_bytes`]. Errors name the URL.
pub async fn fetch_url(url: &str, options: &FetchOptions) -> Result<Fetched, DocumentError> {
    fetch_with_policy(url, options, standard_policy(options.allow_private)).await
}

async fn fetch_with_policy(
    url: &str,
    options: &FetchOptions,
    policy: Policy,
) -> Result<Fetched, DocumentError> {
    let fail = |reason: String| DocumentError::new(url, reason);
    let start = Url::parse(url).map_err(|error| {
        fail(format!(
            "is not a valid URL ({error}); give an absolute http:// or https:// URL"
        ))
    })?;
    check_scheme(&start).map_err(fail)?;
    let allowed: Arc<Vec<String>> = Arc::new(
        options
            .allowed_private_hosts
            .iter()
            .map(|h| h.trim().trim_matches(['[', ']']).to_ascii_lowercase())
            .collect(),
    );
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(CheckingResolver {
            policy: policy.clone(),
            allowed: allowed.clone(),
        })
        .connect_timeout(options.timeout)
        .user_agent(concat!(
            "Cairn/",
            env!("CARGO_PKG_VERSION"),
            " (document ingest)"
        ))
        .build()
        .map_err(|error| {
            fail(format!(
                "cannot build an HTTP client ({})",
                describe(&error)
            ))
        })?;
    let fetch = follow(&client, start, options, &policy, &allowed);
    match tokio::time::timeout(options.timeout, fetch).await {
        Ok(result) => result.map_err(fail),
        Err(_) => Err(fail(format!(
            "timed out after {}; the server is slow or unreachable: try again later or raise [ingest] fetch_timeout_secs",
            seconds(options.timeout)
        ))),
    }
}

async fn follow(
    client: &reqwest::Client,
    start: Url,
    options: &FetchOptions,
    policy: &Policy,
    allowed: &[String],
) -> Result<Fetched, String> {
    let mut current = start.clone();
    let mut redirects = 0usize;
    loop {
        check_scheme(&current)?;
        check_literal_host(&current, policy, allowed)?;
        let mut response = client
            .get(current.clone())
            .header(
                ACCEPT,
                "text/html, text/markdown, text/plain, application/pdf, application/json;q=0.9, */*;q=0.5",
            )
            .send()
            .await
            .map_err(|error| send_error(&current, &error))?;

        let status = response.status();
        if matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308) {
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|l| l.to_str().ok())
                .ok_or_else(|| {
                    format!("{current} answered {status} without a usable Location header")
                })?;
            let next = current.join(location).map_err(|error| {
                format!("{current} redirects to an invalid URL `{location}` ({error})")
            })?;
            redirects += 1;
            if redirects > MAX_REDIRECTS {
                return Err(format!(
                    "too many redirects (more than {MAX_REDIRECTS}); the last one went to {next}"
                ));
            }
            current = next;
            continue;
        }
        if !status.is_success() {
            return Err(if current == start {
                format!("the server answered {status}")
            } else {
                format!("the server answered {status} at {current}")
            });
        }

        if let Some(length) = response.content_length()
            && length > options.max_bytes
        {
            return Err(too_large(&length.to_string(), options.max_bytes));
        }
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|error| format!("the download failed ({})", describe(&error)))?
        {
            let size = u64::try_from(bytes.len() + chunk.len()).unwrap_or(u64::MAX);
            if size > options.max_bytes {
                return Err(too_large(&format!("more than {size}"), options.max_bytes));
            }
            bytes.extend_from_slice(&chunk);
        }
        let bytes = to_utf8(bytes, content_type.as_deref(), &current);
        return Ok(Fetched {
            url: start.to_string(),
            final_url: current.to_string(),
            content_type,
            bytes,
        });
    }
}

fn check_scheme(url: &Url) -> Result<(), String> {
    match url.scheme() {
        "http" | "https" => Ok(()),
        other => Err(format!(
            "refused: the scheme `{other}:` is not supported; only http and https URLs can be fetched"
        )),
    }
}

/// Hosts written as IP addresses are checked here; names are checked by [`CheckingResolver`].
fn check_literal_host(url: &Url, policy: &Policy, allowed: &[String]) -> Result<(), String> {
    let ip = match url.host() {
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip),
        Some(Host::Domain(_)) => return Ok(()),
        None => return Err(format!("{url} has no host")),
    };
    if allowed.contains(&ip.to_string()) {
        return Ok(());
    }
    policy(ip).map_err(|kind| format!("refused: {ip} is {kind}; {ALLOW_HINT}"))
}

/// Resolves names and refuses them when any address is not allowed, so that the connection is
/// made only to checked addresses.
struct CheckingResolver {
    policy: Policy,
    /// Names whose addresses are not judged: the operator's internal hosts.
    allowed: Arc<Vec<String>>,
}

impl Resolve for CheckingResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let policy = if self.allowed.contains(&host.to_ascii_lowercase()) {
            Arc::new(|_| Ok(())) as Policy
        } else {
            self.policy.clone()
        };
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|error| {
                    Refused(format!(
                        "cannot resolve {host} ({error}); check the host name"
                    ))
                })?
                .collect();
            if addrs.is_empty() {
                return Err(Refused(format!(
                    "{host} resolves to no address; check the host name"
                ))
                .into());
            }
            for addr in &addrs {
                if let Err(kind) = policy(addr.ip()) {
                    return Err(Refused(format!(
                        "refused: {host} resolves to {}, {kind}; {ALLOW_HINT}",
                        addr.ip()
                    ))
                    .into());
                }
            }
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// A resolver's verdict, carried through reqwest's error to the message.
#[derive(Debug)]
struct Refused(String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

fn send_error(url: &Url, error: &reqwest::Error) -> String {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if let Some(refused) = current.downcast_ref::<Refused>() {
            return refused.0.clone();
        }
        source = current.source();
    }
    let target = match (url.host_str(), url.port_or_known_default()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        _ => url.to_string(),
    };
    if error.is_connect() {
        format!("could not connect to {target} ({})", describe(error))
    } else {
        format!("the request to {target} failed ({})", describe(error))
    }
}

/// An error and its causes, in one line, without repeating what an outer message already says.
fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        let message = e.to_string();
        if !parts.iter().any(|p| p.contains(&message)) {
            parts.push(message);
        }
        current = e.source();
    }
    parts.join(": ")
}

fn too_large(size: &str, limit: u64) -> String {
    format!(
        "the response is {size} bytes, over the limit of {} ({limit} bytes); raise [ingest] max_document_bytes to fetch it",
        human_size(limit)
    )
}

/// `30 s`, `1.5 s`, `200 ms`.
fn seconds(duration: Duration) -> String {
    if duration.subsec_millis() == 0 && duration.as_secs() > 0 {
        format!("{} s", duration.as_secs())
    } else if duration < Duration::from_secs(1) {
        format!("{} ms", duration.as_millis())
    } else {
        format!("{:.1} s", duration.as_secs_f64())
    }
}

/// Converts text declared in another charset to UTF-8; anything else is returned as it is (the
/// loader then reports invalid UTF-8 if it is not).
fn to_utf8(bytes: Vec<u8>, content_type: Option<&str>, url: &Url) -> Vec<u8> {
    if std::str::from_utf8(&bytes).is_ok() {
        return bytes;
    }
    let format = Format::detect(content_type, url.as_str());
    let is_text = format.is_some_and(|f| f != Format::Pdf);
    if !is_text {
        return bytes;
    }
    let label = content_type.and_then(charset_parameter).or_else(|| {
        (format == Some(Format::Html))
            .then(|| meta_charset(&bytes))
            .flatten()
    });
    match label.and_then(|l| encoding_rs::Encoding::for_label(l.as_bytes())) {
        Some(encoding) if encoding != encoding_rs::UTF_8 => {
            let (text, _, _) = encoding.decode(&bytes);
            text.into_owned().into_bytes()
        }
        _ => bytes,
    }
}

fn charset_parameter(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|parameter| {
        let (name, value) = parameter.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| value.trim().trim_matches(['"', '\'']).to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::http::header;
    use axum::response::Redirect;
    use axum::routing::get;

    #[test]
    fn durations_read_well() {
        assert_eq!(seconds(Duration::from_secs(30)), "30 s");
        assert_eq!(seconds(Duration::from_millis(200)), "200 ms");
        assert_eq!(seconds(Duration::from_millis(1500)), "1.5 s");
    }

    #[test]
    fn charsets_are_found() {
        assert_eq!(
            charset_parameter("text/html; charset=\"ISO-8859-1\"").as_deref(),
            Some("ISO-8859-1")
        );
        assert_eq!(charset_parameter("text/html").as_deref(), None);
        assert_eq!(
            meta_charset(b"<html><head><meta charset='windows-1252'>").as_deref(),
            Some("windows-1252")
        );
    }

    #[test]
    fn latin1_text_becomes_utf8() {
        let url = Url::parse("https://example.com/a.txt").expect("url");
        let bytes = to_utf8(
            b"caf\xE9".to_vec(),
            Some("text/plain; charset=iso-8859-1"),
            &url,
        );
        assert_eq!(String::from_utf8(bytes).expect("utf-8"), "café");
        let html = b"<meta charset=windows-1252><p>na\xEFve</p>".to_vec();
        let url = Url::parse("https://example.com/page.html").expect("url");
        let bytes = to_utf8(html, Some("text/html"), &url);
        assert!(String::from_utf8(bytes).expect("utf-8").contains("naïve"));
    }

    /// A server on 127.0.0.1 that redirects to a private address and to another path of its own.
    async fn server() -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let redirect = |to: String| Redirect::temporary(&to);
        let app = Router::new()
            .route(
                "/to-private",
                get(move || async move { redirect("http://10.0.0.5:8080/secret".into()) }),
            )
            .route(
                "/to-mapped",
                get(move || async move { redirect("http://[::ffff:192.168.1.1]/".into()) }),
            )
            .route(
                "/to-self",
                get(move || async move { redirect(format!("http://{addr}/ok")) }),
            )
            .route(
                "/ok",
                get(|| async { ([(header::CONTENT_TYPE, "text/plain")], "fine") }),
            );
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        addr
    }

    /// Allows the test server's own address, judges every other address as production does.
    fn test_policy() -> Policy {
        let standard = standard_policy(false);
        Arc::new(move |ip| {
            if ip == IpAddr::V4(Ipv4Addr::LOCALHOST) {
                Ok(())
            } else {
                standard(ip)
            }
        })
    }

    /// Listed internal hosts, by name or by address, are fetched; a redirect from one of them to
    /// an unlisted private address is still refused.
    #[tokio::test]
    async fn only_the_listed_internal_hosts_are_reachable() {
        let addr = server().await;
        let port = addr.port();
        let listed = |hosts: &[&str]| FetchOptions {
            allowed_private_hosts: hosts.iter().map(|h| (*h).to_owned()).collect(),
            ..FetchOptions::default()
        };
        let by_name = format!("http://localhost:{port}/ok");
        let refused = fetch_url(&by_name, &FetchOptions::default())
            .await
            .expect_err("loopback by name");
        assert!(
            refused.reason.contains("allowed_private_hosts"),
            "{refused}"
        );
        let fetched = fetch_url(&by_name, &listed(&["LocalHost"]))
            .await
            .expect("listed by name");
        assert_eq!(fetched.bytes, b"fine");
        let by_address = format!("http://127.0.0.1:{port}/ok");
        assert!(
            fetch_url(&by_address, &listed(&["localhost"]))
                .await
                .is_err()
        );
        assert!(
            fetch_url(&by_address, &listed(&["127.0.0.1"]))
                .await
                .is_ok()
        );
        let hop = fetch_url(
            &format!("http://localhost:{port}/to-private"),
            &listed(&["localhost"]),
        )
        .await
        .expect_err("an unlisted private hop");
        assert!(
            hop.reason.contains("10.0.0.5 is a private address"),
            "{hop}"
        );
    }

    #[tokio::test]
    async fn a_redirect_from_an_allowed_host_to_a_private_one_is_refused() {
        let addr = server().await;
        let options = FetchOptions::default();
        let fetched = fetch_with_policy(&format!("http://{addr}/to-self"), &options, test_policy())
            .await
            .expect("allowed hop");
        assert_eq!(fetched.bytes, b"fine");
        assert_eq!(fetched.final_url, format!("http://{addr}/ok"));

        let error = fetch_with_policy(
            &format!("http://{addr}/to-private"),
            &options,
            test_policy(),
        )
        .await
        .expect_err("private hop");
        assert!(
            error
                .reason
                .contains("refused: 10.0.0.5 is a private address"),
            "{error}"
        );
        assert!(error.reason.contains("allowed_private_hosts"), "{error}");

        let error = fetch_with_policy(&format!("http://{addr}/to-mapped"), &options, test_policy())
            .await
            .expect_err("mapped private hop");
        assert!(
            error
                .reason
                .contains("::ffff:192.168.1.1 is a private address"),
            "{error}"
        );
    }
}
