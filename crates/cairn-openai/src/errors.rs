//! Classification of OpenAI API failures into `ModelError`, by what the gateway should do, with
//! the provider's text made safe to pass on: the error messages end up in responses to clients,
//! in lineage and in logs, and a provider may echo the credential it was sent, or put line breaks
//! and terminal escapes in its text (a forged log line). [`Scrub`] removes both.

use async_openai::error::{ApiErrorResponse, OpenAIError, WrappedError};
use cairn_core::ModelError;
use secrecy::{ExposeSecret, SecretString};

/// What replaces a credential in a provider's text.
const REDACTED: &str = "[redacted]";

/// Makes a provider's text safe to show and store: the endpoint's own credential, and anything
/// shaped like a key or token, become `[redacted]`; control characters become spaces; the result
/// is at most 500 characters.
#[derive(Clone)]
pub(crate) struct Scrub {
    secret: SecretString,
}

impl std::fmt::Debug for Scrub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Scrub")
    }
}

impl Scrub {
    pub(crate) fn new(secret: &SecretString) -> Scrub {
        Scrub {
            secret: secret.clone(),
        }
    }

    pub(crate) fn text(&self, text: &str) -> String {
        let secret = self.secret.expose_secret();
        let mut text = text.to_owned();
        if secret.len() >= 8 {
            text = text.replace(secret, REDACTED);
        }
        let flat: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let words: Vec<&str> = flat
            .split(' ')
            .map(|word| {
                if looks_like_a_credential(word) {
                    REDACTED
                } else {
                    word
                }
            })
            .collect();
        truncate(&words.join(" "))
    }
}

/// Keys and tokens by their shape: known prefixes (`sk-`, `cairn_`, a JWT's `eyJ`), or a long run
/// of letters and digits mixed. Words of prose never look like this.
fn looks_like_a_credential(word: &str) -> bool {
    let word = word.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    let tokenish = word
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~' | '+' | '/' | '='));
    if !tokenish || word.len() < 16 {
        return false;
    }
    let prefixed = ["sk-", "cairn_", "eyJ", "ghp_", "xox", "AKIA"]
        .iter()
        .any(|prefix| word.starts_with(prefix));
    let mixed = word.len() >= 32
        && word.chars().any(|c| c.is_ascii_digit())
        && word.chars().any(|c| c.is_ascii_alphabetic());
    prefixed || mixed
}

pub(crate) fn classify(error: OpenAIError, scrub: &Scrub) -> ModelError {
    match classify_raw(error) {
        ModelError::Transient(m) => ModelError::Transient(scrub.text(&m)),
        ModelError::Permanent(m) => ModelError::Permanent(scrub.text(&m)),
        ModelError::InvalidRequest(m) => ModelError::InvalidRequest(scrub.text(&m)),
        ModelError::NotFound(m) => ModelError::NotFound(scrub.text(&m)),
        ModelError::ContextLengthExceeded(m) => ModelError::ContextLengthExceeded(scrub.text(&m)),
        other => other,
    }
}

fn classify_raw(error: OpenAIError) -> ModelError {
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
    let text = text.trim();
    match text.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoed_credentials_and_forged_log_lines_do_not_get_through() {
        let scrub = Scrub::new(&SecretString::from("plain-configured-secret"));
        let text = scrub.text(
            "Incorrect API key provided: Bearer plain-configured-secret (also sk-proj-abcdefghijklmnop1234)\n\u{1b}[31m2026-01-01 ERROR forged",
        );
        assert!(!text.contains("plain-configured-secret"), "{text}");
        assert!(!text.contains("sk-proj"), "{text}");
        assert!(!text.chars().any(char::is_control), "{text:?}");
        assert!(text.contains("Incorrect API key provided"), "{text}");
        assert_eq!(
            scrub.text("maximum context length is 8192 tokens"),
            "maximum context length is 8192 tokens",
            "prose is untouched"
        );
        let long = scrub.text(&"word ".repeat(200));
        assert!(long.chars().count() <= 501, "{}", long.len());
    }
}
