//! `POST /v1/embeddings`: the configured embedding model, in OpenAI's shape (float arrays, or
//! base64 little-endian float32, which the official clients ask for by default), from every input
//! form OpenAI takes, token ids included (LangChain's default).

use axum::Json;
use axum::extract::State;
use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::AppState;
use crate::error::ApiError;
use crate::extract::ApiJson;

/// The most inputs in one request, as OpenAI allows.
const MAX_INPUTS: usize = 2048;

#[derive(Debug, Deserialize)]
pub(crate) struct EmbeddingsRequest {
    model: String,
    input: Input,
    #[serde(default)]
    encoding_format: Option<String>,
    #[serde(default)]
    dimensions: Option<usize>,
}

/// Every input form OpenAI accepts: a text, texts, one text as token ids, or texts as token ids
/// (OpenAI's `cl100k_base` ids, read back as text: the embedding model has its own tokenizer).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Input {
    One(String),
    Many(Vec<String>),
    Tokens(Vec<u32>),
    ManyTokens(Vec<Vec<u32>>),
    /// Anything else.
    Other(serde::de::IgnoredAny),
}

/// The texts behind token-id inputs, or which one cannot be read.
fn token_texts(inputs: Vec<Vec<u32>>) -> Result<Vec<String>, ApiError> {
    inputs
        .iter()
        .enumerate()
        .map(|(index, tokens)| {
            cairn_openai::cl100k_text(tokens).ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_input",
                    format!(
                        "input[{index}] is not text in OpenAI's cl100k_base token ids; send the text itself"
                    ),
                )
            })
        })
        .collect()
}

pub(crate) async fn embeddings(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<EmbeddingsRequest>,
) -> Result<Json<Value>, ApiError> {
    let rag = state.rag()?;
    let model = rag.embedder.model_id().to_owned();
    if request.model != model {
        return Err(ApiError::not_found(
            "model_not_found",
            format!(
                "no embedding model is named `{}`; this server embeds with `{model}` ([embedding] in the config)",
                request.model
            ),
        ));
    }
    let texts = match request.input {
        Input::One(text) => vec![text],
        Input::Many(texts) => texts,
        Input::Tokens(tokens) => token_texts(vec![tokens])?,
        Input::ManyTokens(inputs) => token_texts(inputs)?,
        Input::Other(_) => {
            return Err(ApiError::bad_request(
                "invalid_input",
                "input must be a string, an array of strings, or token ids (an array of integers, or arrays of them)",
            ));
        }
    };
    if texts.is_empty() || texts.len() > MAX_INPUTS {
        return Err(ApiError::bad_request(
            "invalid_input",
            format!("input has {} texts; send 1 to {MAX_INPUTS}", texts.len()),
        ));
    }
    if let Some(position) = texts.iter().position(|t| t.is_empty()) {
        return Err(ApiError::bad_request(
            "invalid_input",
            format!("input[{position}] is empty; every input needs text"),
        ));
    }
    let dimension = rag.embedder.dimension();
    if request.dimensions.is_some_and(|d| d != dimension) {
        return Err(ApiError::bad_request(
            "invalid_dimensions",
            format!(
                "`{model}` returns {dimension} dimensions and cannot shorten them; omit `dimensions`"
            ),
        ));
    }
    let base64 = match request.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(ApiError::bad_request(
                "invalid_encoding_format",
                format!("encoding_format `{other}` is not supported; use float or base64"),
            ));
        }
    };
    let tokens: usize = texts.iter().map(|t| rag.count_tokens(t)).sum();
    let vectors = rag.embedder.embed_documents(&texts).await?;
    let data: Vec<Value> = vectors
        .into_iter()
        .enumerate()
        .map(|(index, vector)| {
            let embedding = if base64 {
                let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
                Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(vector)
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    Ok(Json(json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    })))
}
