//! Classification of OpenAI API failures into `ModelError`, by what the gateway should do.

use async_openai::error::{ApiErrorResponse, OpenAIError, WrappedError};
use cairn_core::ModelError;

pub(crate) fn classify(error: OpenAIError) -> ModelError {
    match error {
        OpenAIError::ApiError(response) => classify_response(&response),
        OpenAIError::Reqwest(e) if e.is_timeout() => {
            ModelError::Transient(format!("the model server timed out: {e}"))
        }
        OpenAIError::Reqwest(e) if e.is_connect() => {
            ModelError::Transient(format!("cannot connect to the model server: {e}"))
        }
        OpenAIError::Reqwest(e) => {
            ModelError::Transient(format!("HTTP error talking to the model server: {e}"))
        }
        OpenAIError::StreamError(e) => {
            ModelError::Transient(format!("the stream from the model server broke: {e}"))
        }
        // An error body that is not OpenAI's shape (status lost), or an error event inside a stream.
        OpenAIError::JSONDeserialize(_, body) => {
            match serde_json::from_str::<WrappedError>(&body) {
                Ok(wrapped) => match wrapped.error.code.as_deref() {
                    Some("context_length_exceeded") => {
                        ModelError::ContextLengthExceeded(wrapped.error.message)
                    }
                    _ => ModelError::Transient(format!(
                        "the model server reported an error: {}",
                        wrapped.error.message
                    )),
                },
                Err(_) => ModelError::Permanent(format!(
                    "unexpected response from the model server: {}",
                    truncate(&body)
                )),
            }
        }
        OpenAIError::InvalidArgument(message) => ModelError::InvalidRequest(message),
        other => ModelError::Permanent(other.to_string()),
    }
}

fn classify_response(response: &ApiErrorResponse) -> ModelError {
    let status = response.status_code.as_u16();
    let error = &response.api_error;
    let message = if error.message.is_empty() {
        format!("HTTP {status}")
    } else {
        truncate(&error.message)
    };
    match (status, error.code.as_deref()) {
        (_, Some("context_length_exceeded")) => ModelError::ContextLengthExceeded(message),
        (429, Some("insufficient_quota")) => {
            ModelError::Permanent(format!("the provider account is out of quota: {message}"))
        }
        (429, _) => ModelError::RateLimited { retry_after: None },
        (401 | 403, _) => ModelError::Permanent(format!(
            "the model server refused the credentials (HTTP {status}): {message}; check the API key or token"
        )),
        (404, _) => ModelError::NotFound(message),
        (408, _) | (500..=599, _) => ModelError::Transient(format!("HTTP {status}: {message}")),
        _ => ModelError::InvalidRequest(message),
    }
}

fn truncate(text: &str) -> String {
    const LIMIT: usize = 500;
    match text.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}
