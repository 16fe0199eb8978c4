//! How long a provider asks to be left alone after a 429 (or 503): `retry-after-ms` (Azure),
//! `Retry-After` in seconds or as an HTTP date, or the reset of an exhausted OpenAI limit
//! (`x-ratelimit-reset-requests`, `x-ratelimit-reset-tokens`, as `1s`, `6m0s`, `20ms`).
//!
//! async-openai turns an error response into an error without its headers, so a tower layer
//! around the HTTP call reads them first and leaves the wait in a task-local that [`scoped`] sets
//! up around each call; the caller puts it into `ModelError::RateLimited`.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use async_openai::error::OpenAIError;
use async_openai::middleware::{HttpRequestFactory, ReqwestService};
use cairn_core::ModelError;
use reqwest::Response;
use reqwest::header::HeaderMap;

/// Waits asked for longer than this are taken as this: the gateway's deadline bounds them anyway.
const LONGEST: Duration = Duration::from_secs(600);

tokio::task_local! {
    static ASKED: Cell<Option<Duration>>;
}

/// Runs one provider call, noting any wait its error response asked for; a rate-limit error
/// without one gets it.
pub(crate) async fn scoped<T>(
    call: impl Future<Output = Result<T, ModelError>>,
) -> Result<T, ModelError> {
    ASKED
        .scope(Cell::new(None), async {
            let result = call.await;
            match result {
                Err(ModelError::RateLimited { retry_after: None }) => {
                    Err(ModelError::RateLimited {
                        retry_after: ASKED.with(Cell::get),
                    })
                }
                other => other,
            }
        })
        .await
}

/// The wait the headers ask for, if any.
pub(crate) fn parse(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let asked = if let Some(ms) = text("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        Some(Duration::from_secs_f64(ms.max(0.0) / 1000.0))
    } else if let Some(value) = text("retry-after") {
        match value.parse::<u64>() {
            Ok(seconds) => Some(Duration::from_secs(seconds)),
            Err(_) => httpdate::parse_http_date(value)
                .ok()
                .map(|at| at.duration_since(now).unwrap_or_default()),
        }
    } else {
        ["x-ratelimit-reset-requests", "x-ratelimit-reset-tokens"]
            .iter()
            .filter_map(|name| text(name).and_then(go_duration))
            .max()
    };
    asked.map(|wait| wait.min(LONGEST))
}

/// `1s`, `6m0s`, `1h2m3.5s`, `20ms` (Go's duration format, as OpenAI sends it).
fn go_duration(text: &str) -> Option<Duration> {
    let mut total = 0.0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .filter(|end| *end > 0)?;
        let value: f64 = rest[..number_end].parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            _ => return None,
        };
        total += value * scale;
        rest = &rest[unit_end..];
    }
    Some(Duration::from_secs_f64(total))
}

/// The HTTP call, reading the wait an error response asks for.
#[derive(Debug, Clone)]
pub(crate) struct ReadRetryAfter(pub(crate) ReqwestService);

impl tower::Service<HttpRequestFactory> for ReadRetryAfter {
    type Response = Response;
    type Error = OpenAIError;
    type Future = Pin<Box<dyn Future<Output = Result<Response, OpenAIError>> + Send + 'static>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: HttpRequestFactory) -> Self::Future {
        let call = self.0.call(request);
        Box::pin(async move {
            let response = call.await?;
            let status = response.status().as_u16();
            if matches!(status, 429 | 503)
                && let Some(wait) = parse(response.headers(), SystemTime::now())
            {
                // Outside a `scoped` call there is nowhere to leave it: that is fine.
                let _ = ASKED.try_with(|asked| asked.set(Some(wait)));
            }
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use reqwest::header::{HeaderName, HeaderValue};

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    HeaderName::from_static(k),
                    HeaderValue::from_str(v).expect("value"),
                )
            })
            .collect()
    }

    #[test]
    fn every_form_of_the_wait_is_read() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let wait = |pairs: &[(&'static str, &str)]| parse(&headers(pairs), now);
        assert_eq!(wait(&[("retry-after", "7")]), Some(Duration::from_secs(7)));
        assert_eq!(
            wait(&[("retry-after-ms", "1500"), ("retry-after", "9")]),
            Some(Duration::from_millis(1500)),
            "Azure's milliseconds win"
        );
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(
            wait(&[("retry-after", &later)]),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            wait(&[
                ("x-ratelimit-reset-requests", "1m2.5s"),
                ("x-ratelimit-reset-tokens", "20ms")
            ]),
            Some(Duration::from_millis(62_500)),
            "the later reset"
        );
        assert_eq!(wait(&[("retry-after", "86400")]), Some(LONGEST), "bounded");
        assert_eq!(wait(&[("retry-after", "soon")]), None);
        assert_eq!(wait(&[]), None);
    }
}
