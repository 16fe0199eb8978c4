//! Qdrant client errors as [`IndexError`]s that say what to fix.

use cairn_core::index::IndexError;
use qdrant_client::QdrantError;
use tonic::Code;

/// Whether the server said the collection does not exist.
pub fn is_not_found(err: &QdrantError) -> bool {
    matches!(err, QdrantError::ResponseError { status } if status.code() == Code::NotFound)
}

/// Whether the server refused to create a collection that exists (another replica won the race).
pub fn is_already_exists(err: &QdrantError) -> bool {
    match err {
        QdrantError::ResponseError { status } => {
            status.code() == Code::AlreadyExists
                || status.message().to_lowercase().contains("already exists")
        }
        _ => false,
    }
}

/// Maps a client error; `collection` is the Cairn collection the call was about, if any, so that
/// "not found" becomes [`IndexError::UnknownCollection`].
pub fn map_error(err: QdrantError, url: &str, collection: Option<&str>) -> IndexError {
    let unreachable = |detail: &str| {
        IndexError::Unavailable(format!(
            "cannot reach Qdrant at {url}: {detail}; check `[index] url` (the gRPC port, 6334 by default, not the REST port 6333) and that Qdrant is running"
        ))
    };
    match err {
        QdrantError::ResponseError { status } => {
            let message = status.message();
            match status.code() {
                Code::NotFound => match collection {
                    Some(name) => IndexError::UnknownCollection(name.to_owned()),
                    None => IndexError::Backend(format!("Qdrant at {url}: {message}")),
                },
                Code::Unavailable | Code::Cancelled => unreachable(message),
                Code::Internal | Code::Unknown if is_transport(message) => unreachable(message),
                Code::DeadlineExceeded => IndexError::Unavailable(format!(
                    "Qdrant at {url} did not answer in time: {message}; check its load, or raise the index timeout"
                )),
                Code::Unauthenticated | Code::PermissionDenied => IndexError::Unavailable(format!(
                    "Qdrant at {url} refused the request: {message}; check `[index] api_key`"
                )),
                Code::ResourceExhausted => IndexError::Unavailable(format!(
                    "Qdrant at {url} is overloaded or rate limited: {message}; retry later"
                )),
                Code::InvalidArgument | Code::FailedPrecondition => {
                    IndexError::Backend(format!("Qdrant at {url} rejected the request: {message}"))
                }
                code => {
                    IndexError::Backend(format!("Qdrant at {url} failed ({code:?}): {message}"))
                }
            }
        }
        QdrantError::ResourceExhaustedError {
            status,
            retry_after_seconds,
        } => IndexError::Unavailable(format!(
            "Qdrant at {url} is rate limited: {}; retry after {retry_after_seconds} s",
            status.message()
        )),
        QdrantError::InvalidUri(err) => IndexError::Unavailable(format!(
            "`{url}` is not a valid Qdrant URL ({err}); set `[index] url` to e.g. http://localhost:6334"
        )),
        QdrantError::Io(err) => unreachable(&err.to_string()),
        other => IndexError::Backend(format!("Qdrant client error for {url}: {other}")),
    }
}

/// Whether a status message comes from the client's transport rather than from the server (the
/// client reports failed connections as `Internal`, and broken HTTP/2 exchanges, such as gRPC sent
/// to the REST port, as `Unknown` or `Internal`).
fn is_transport(message: &str) -> bool {
    let message = message.to_lowercase();
    [
        "failed to connect",
        "transport error",
        "connection refused",
        "dns error",
        "h2 protocol error",
        "connection reset",
        "broken pipe",
        "tcp connect error",
    ]
    .iter()
    .any(|needle| message.contains(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_failures_name_the_url_and_the_setting() {
        let err = QdrantError::ResponseError {
            status: tonic::Status::internal(
                "Failed to connect to http://127.0.0.1:1/: tonic::transport::Error(Transport, ConnectError)",
            ),
        };
        let message = map_error(err, "http://127.0.0.1:1", None).to_string();
        assert!(message.starts_with("index unavailable"), "{message}");
        assert!(message.contains("http://127.0.0.1:1") && message.contains("[index] url"));
    }

    #[test]
    fn not_found_is_an_unknown_collection() {
        let err = QdrantError::ResponseError {
            status: tonic::Status::not_found("Collection `cairn_kb` doesn't exist!"),
        };
        assert!(is_not_found(&err));
        assert_eq!(
            map_error(err, "u", Some("kb")),
            IndexError::UnknownCollection("kb".into())
        );
    }

    #[test]
    fn duplicate_creation_is_recognised() {
        let old = QdrantError::ResponseError {
            status: tonic::Status::invalid_argument("Wrong input: Collection `x` already exists!"),
        };
        let new = QdrantError::ResponseError {
            status: tonic::Status::already_exists("x"),
        };
        assert!(is_already_exists(&old) && is_already_exists(&new));
    }
}
