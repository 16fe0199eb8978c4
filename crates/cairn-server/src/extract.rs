//! Request extractors whose rejections use the API's error shape.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// `axum::Json`, but a malformed, mistyped or oversized body gets a JSON error that says what to fix.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::JsonDataError(e) => ApiError::bad_request(
            "invalid_body",
            format!(
                "request body does not match the expected shape: {}",
                e.body_text()
            ),
        ),
        JsonRejection::JsonSyntaxError(e) => ApiError::bad_request(
            "invalid_json",
            format!("request body is not valid JSON: {}", e.body_text()),
        ),
        JsonRejection::MissingJsonContentType(_) => ApiError::bad_request(
            "invalid_content_type",
            "send the body as JSON with the header `Content-Type: application/json`",
        ),
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            body_too_large("server.max_body_bytes")
        }
        other => ApiError::bad_request("invalid_body", other.body_text()),
    }
}

/// 413, naming the setting that raises the limit.
pub(crate) fn body_too_large(setting: &str) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "invalid_request_error",
        "body_too_large",
        format!("request body is larger than the server accepts; send less, or raise {setting}"),
    )
}

/// The pipeline's view of an HTTP request: its caller, its `x-request-id` (set by the middleware
/// before any handler runs) and the caller's `traceparent`.
pub(crate) fn request_context(
    headers: &axum::http::HeaderMap,
    principal: cairn_core::Principal,
) -> cairn_core::RequestContext {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let mut context = cairn_core::RequestContext::new(
        principal,
        header("x-request-id").unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
    );
    context.traceparent = header("traceparent");
    context
}
