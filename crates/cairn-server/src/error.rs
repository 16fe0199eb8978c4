//! The one error shape every endpoint answers with, in the form OpenAI clients already parse:
//! `{"error": {"message", "type", "code"}}`. This is the only place that maps failures to HTTP statuses.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cairn_core::CatalogError;
use serde::Serialize;

/// An error as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    /// OpenAI's error class: `invalid_request_error`, `not_found_error`, `server_error`, …
    pub kind: &'static str,
    /// A stable, specific code clients can branch on.
    pub code: &'static str,
    pub message: String,
    /// Seconds, sent as `Retry-After` (rate limits).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        kind: &'static str,
        code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        ApiError {
            status,
            kind,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            code,
            message,
        )
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found_error", code, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "internal_error",
            message,
        )
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    code: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(code = self.code, message = %self.message, "request failed");
        }
        let body = Body {
            error: Inner {
                message: &self.message,
                kind: self.kind,
                code: self.code,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

impl From<CatalogError> for ApiError {
    fn from(error: CatalogError) -> Self {
        // Exhaustive on purpose: a new variant must decide its status here.
        match error {
            CatalogError::NotFound { .. } => ApiError::not_found("not_found", error.to_string()),
            CatalogError::Conflict(message) => ApiError::new(
                StatusCode::CONFLICT,
                "invalid_request_error",
                "conflict",
                message,
            ),
            CatalogError::Invalid(message) => ApiError::bad_request("invalid_value", message),
            CatalogError::Unavailable(message) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                "catalog_unavailable",
                format!("the catalog database is unavailable, try again shortly ({message})"),
            ),
            CatalogError::Backend(message) => {
                ApiError::internal(format!("catalog error: {message}"))
            }
        }
    }
}

impl From<cairn_prompts::PromptError> for ApiError {
    fn from(error: cairn_prompts::PromptError) -> Self {
        use cairn_prompts::PromptError;
        let message = error.to_string();
        // Exhaustive on purpose, as above.
        match error {
            PromptError::Format { .. } => ApiError::bad_request("invalid_prompt", message),
            PromptError::Syntax { .. } => ApiError::bad_request("template_syntax_error", message),
            PromptError::UndeclaredVariable { .. } => {
                ApiError::bad_request("undeclared_variable", message)
            }
            PromptError::InvalidVariables { .. } => {
                ApiError::bad_request("invalid_variables", message)
            }
            PromptError::Render { .. } => ApiError::bad_request("render_error", message),
            PromptError::OutputTooLarge { .. } | PromptError::OutOfFuel { .. } => {
                ApiError::bad_request("render_limit_exceeded", message)
            }
            PromptError::NotFound(_) => ApiError::not_found("prompt_not_found", message),
            PromptError::Gated(_) => ApiError::new(
                StatusCode::CONFLICT,
                "invalid_request_error",
                "label_gated",
                message,
            ),
            PromptError::Catalog(catalog) => catalog.into(),
        }
    }
}

impl From<cairn_core::ModelError> for ApiError {
    fn from(error: cairn_core::ModelError) -> Self {
        use cairn_core::ModelError;
        // Exhaustive on purpose, as above. Upstream trouble is a 5xx for the client: Cairn is the gateway.
        match error {
            ModelError::InvalidRequest(message) => {
                ApiError::bad_request("invalid_request", message)
            }
            ModelError::ContextLengthExceeded(message) => ApiError::bad_request(
                "context_length_exceeded",
                format!(
                    "the conversation is longer than the model's context window: {message}; shorten it or lower max_tokens"
                ),
            ),
            ModelError::NotFound(message) => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "server_error",
                "upstream_model_not_found",
                format!(
                    "the model server does not know the configured model: {message}; check `model` in [[models]]"
                ),
            ),
            ModelError::RateLimited { retry_after } => {
                let mut error = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limit_error",
                    "upstream_rate_limited",
                    "the model provider is rate limiting requests; retry after a moment",
                );
                error.retry_after = Some(retry_after.map_or(1, |d| d.as_secs().max(1)));
                error
            }
            ModelError::Transient(message) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                "upstream_unavailable",
                format!("the model is unavailable right now: {message}"),
            ),
            ModelError::Permanent(message) => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "server_error",
                "upstream_error",
                format!("the model server failed: {message}"),
            ),
        }
    }
}

impl From<cairn_core::index::IndexError> for ApiError {
    fn from(error: cairn_core::index::IndexError) -> Self {
        use cairn_core::index::IndexError;
        let message = error.to_string();
        // Exhaustive on purpose, as above.
        match error {
            IndexError::UnknownCollection(_) => {
                ApiError::not_found("collection_not_indexed", message)
            }
            IndexError::ModelMismatch { .. } => ApiError::new(
                StatusCode::CONFLICT,
                "invalid_request_error",
                "embedding_model_mismatch",
                message,
            ),
            IndexError::DimensionMismatch { .. } => {
                ApiError::bad_request("dimension_mismatch", message)
            }
            IndexError::Unavailable(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                "index_unavailable",
                format!("the vector index is unavailable, try again shortly: {message}"),
            ),
            IndexError::Backend(_) => ApiError::internal(message),
        }
    }
}

impl From<cairn_rag::RagError> for ApiError {
    fn from(error: cairn_rag::RagError) -> Self {
        use cairn_rag::RagError;
        // Exhaustive on purpose, as above.
        match error {
            RagError::UnknownCollection(_) => {
                ApiError::not_found("collection_not_found", error.to_string())
            }
            RagError::Catalog(e) => e.into(),
            RagError::Index(e) => e.into(),
            RagError::Model(e) => e.into(),
            RagError::Document(e) => ApiError::bad_request("invalid_document", e.to_string()),
            RagError::Invalid(message) => ApiError::bad_request("invalid_request", message),
        }
    }
}

impl From<cairn_app::AnswerError> for ApiError {
    fn from(error: cairn_app::AnswerError) -> Self {
        use cairn_app::AnswerError;
        // Exhaustive on purpose, as above: every front door's errors are mapped here, once.
        match error {
            AnswerError::UnknownTarget(message) => ApiError::not_found("model_not_found", message),
            AnswerError::UnknownGuard(message) => ApiError::not_found("guard_not_found", message),
            AnswerError::Invalid { code, message } => ApiError::bad_request(code, message),
            AnswerError::Limited(refused) => crate::gateway::limited(refused),
            error @ AnswerError::Blocked { .. } => {
                ApiError::bad_request("blocked_by_guardrail", error.to_string())
            }
            AnswerError::RetrievalUnavailable(reason) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                "retrieval_unavailable",
                format!("ingest and search are unavailable: {reason}"),
            ),
            AnswerError::Prompt(e) => e.into(),
            AnswerError::Rag(e) => e.into(),
            AnswerError::Catalog(e) => e.into(),
            AnswerError::Model(e) => e.into(),
            error @ AnswerError::DeadlineExceeded => ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "server_error",
                "deadline_exceeded",
                error.to_string(),
            ),
            error @ AnswerError::SchemaNotMet { .. } => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "server_error",
                "schema_not_met",
                error.to_string(),
            ),
            AnswerError::Internal(message) => ApiError::internal(message),
        }
    }
}
