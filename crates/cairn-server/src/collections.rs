//! Collections, their documents and search: `/v1/collections…`.

use std::sync::Arc;

use axum::Json;
use axum::extract::multipart::MultipartError;
use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use cairn_core::catalog::{Collection, Document, NewCollection};
use cairn_core::index::Filter;
use cairn_rag::{
    CitedContext, IngestReport, NoProgress, Passage, SearchMode, SearchRequest, Source, Upload,
    assemble,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::access::Caller;
use crate::app::AppState;
use crate::error::ApiError;
use crate::extract::ApiJson;
use cairn_app::Rag;
use cairn_auth::Grant;

/// A collection as the API shows it.
#[derive(Debug, Serialize)]
pub struct CollectionDto {
    name: String,
    description: String,
    embedding_model: Option<String>,
    embedding_dimension: Option<u32>,
    metadata: serde_json::Value,
    /// RFC 3339.
    created_at: String,
}

impl From<Collection> for CollectionDto {
    fn from(collection: Collection) -> Self {
        CollectionDto {
            name: collection.name,
            description: collection.description,
            embedding_model: collection.embedding_model,
            embedding_dimension: collection.embedding_dimension,
            metadata: collection.metadata,
            created_at: collection.created_at.to_rfc3339(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateCollection {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    metadata: serde_json::Value,
}

pub async fn list_collections(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<serde_json::Value>, ApiError> {
    let collections: Vec<CollectionDto> = state
        .catalog
        .list_collections()
        .await?
        .into_iter()
        .filter(|c| caller.may_read(&c.name))
        .map(Into::into)
        .collect();
    Ok(Json(json!({"object": "list", "data": collections})))
}

/// The collection, if it exists and the caller may reach it; one outside its reach gets the same
/// answer as one that does not exist.
async fn collection(state: &AppState, caller: &Grant, name: &str) -> Result<Collection, ApiError> {
    reachable(caller, name)?;
    state
        .catalog
        .get_collection(name)
        .await?
        .ok_or_else(|| missing(name))
}

fn reachable(caller: &Grant, name: &str) -> Result<(), ApiError> {
    if caller.may_read(name) {
        Ok(())
    } else {
        Err(missing(name))
    }
}

fn missing(name: &str) -> ApiError {
    ApiError::not_found(
        "collection_not_found",
        format!(
            "collection `{name}` does not exist; create it with POST /v1/collections or ingest into it"
        ),
    )
}

pub async fn get_collection(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(name): Path<String>,
) -> Result<Json<CollectionDto>, ApiError> {
    Ok(Json(collection(&state, &caller, &name).await?.into()))
}

pub async fn create_collection(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiJson(request): ApiJson<CreateCollection>,
) -> Result<(StatusCode, Json<CollectionDto>), ApiError> {
    if !caller.may_read(&request.name) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "permission_error",
            "collection_not_allowed",
            format!(
                "`{}` may only work with the collections its key names; `{}` is not one of them",
                caller.name, request.name
            ),
        ));
    }
    let new = NewCollection {
        name: request.name,
        description: request.description,
        embedding_model: None,
        embedding_dimension: None,
        metadata: request.metadata,
    };
    let collection = state.catalog.create_collection(new).await?;
    Ok((StatusCode::CREATED, Json(collection.into())))
}

/// Deletes the collection, its documents and its vectors.
pub async fn delete_collection(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    collection(&state, &caller, &name).await?;
    if let Ok(rag) = state.rag() {
        rag.index.drop_collection(&name).await?;
    }
    state.catalog.delete_collection(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A document as the API shows it.
#[derive(Debug, Serialize)]
struct DocumentDto {
    id: Uuid,
    source: String,
    title: String,
    version: i64,
    content_hash: String,
    metadata: serde_json::Value,
    updated_at: String,
}

impl From<Document> for DocumentDto {
    fn from(d: Document) -> Self {
        DocumentDto {
            id: d.id,
            source: d.source,
            title: d.title,
            version: d.version,
            content_hash: d.content_hash,
            metadata: d.metadata,
            updated_at: d.updated_at.to_rfc3339(),
        }
    }
}

pub async fn list_documents(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let collection = collection(&state, &caller, &name).await?;
    let documents: Vec<DocumentDto> = state
        .catalog
        .list_documents(collection.id)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(Json(json!({"object": "list", "data": documents})))
}

/// Ingests the files of a `multipart/form-data` upload (any field name; each part needs a file
/// name, whose extension picks the format). Answers with the ingest summary; documents that could
/// not be read are listed under `failed` with the reason.
pub async fn upload_documents(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(name): Path<String>,
    mut multipart: Multipart,
) -> Result<(StatusCode, Json<IngestReport>), ApiError> {
    cairn_core::catalog::validate_name("collection", &name)?;
    reachable(&caller, &name)?;
    // Each upload holds its files in memory while they are read: a bounded number at a time.
    let Ok(_slot) = state.uploads.clone().try_acquire_owned() else {
        let mut busy = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            "uploads_busy",
            format!(
                "{} uploads are already being ingested; retry shortly (or raise ingest.max_concurrent_uploads)",
                state.max_concurrent_uploads
            ),
        );
        busy.retry_after = Some(1);
        return Err(busy);
    };
    let rag = state.rag()?;
    let mut files: Vec<Upload> = Vec::new();
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| multipart_error(&state, e))?
    {
        let Some(file_name) = field.file_name().map(upload_name).transpose()? else {
            continue;
        };
        if files.iter().any(|f| f.name == file_name) {
            return Err(ApiError::bad_request(
                "duplicate_file",
                format!("the upload names `{file_name}` twice; send each file once"),
            ));
        }
        let bytes = field
            .bytes()
            .await
            .map_err(|e| multipart_error(&state, e))?;
        // Taken over, not copied, when the buffer is not shared.
        files.push(Upload {
            name: file_name,
            bytes: Arc::new(Vec::from(bytes)),
        });
    }
    if files.is_empty() {
        return Err(ApiError::bad_request(
            "no_file",
            "the upload has no file; send multipart/form-data with a file part, e.g. curl -F file=@guide.md",
        ));
    }
    // One ingest for every file: one reconcile of the collection, one sync.
    let total = rag
        .ingestor
        .ingest(&name, Source::Uploads(files), &NoProgress)
        .await?;
    if total.added + total.updated + total.removed > 0 {
        state
            .continuous
            .changed(cairn_runtime::continuous::Change::Collection(&name));
    }
    Ok((StatusCode::CREATED, Json(total)))
}

/// An uploaded file's name as the document's source: a bare file name. A path (`../x`, `/etc/x`,
/// `a\\b`) or control characters would make the stored source look like a place on this machine.
fn upload_name(name: &str) -> Result<String, ApiError> {
    let bad = name.is_empty()
        || name.len() > 255
        || name == "."
        || name == ".."
        || name.contains(['/', '\\'])
        || name.chars().any(char::is_control);
    if bad {
        return Err(ApiError::bad_request(
            "invalid_file_name",
            format!(
                "`{}` is not a file name; send each file with its bare name (e.g. guide.md), without a path",
                name.escape_debug()
            ),
        ));
    }
    Ok(name.to_owned())
}

fn multipart_error(state: &AppState, error: MultipartError) -> ApiError {
    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            "upload_too_large",
            format!(
                "the upload is larger than {} bytes; split it, or raise ingest.max_upload_bytes",
                state.max_upload_bytes
            ),
        )
    } else {
        ApiError::bad_request(
            "invalid_upload",
            format!(
                "the upload is not valid multipart/form-data: {}",
                error.body_text()
            ),
        )
    }
}

pub async fn delete_document(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((name, id)): Path<(String, Uuid)>,
) -> Result<StatusCode, ApiError> {
    let rag = state.rag()?;
    reachable(&caller, &name)?;
    if rag.ingestor.delete_document(&name, id).await? {
        state
            .continuous
            .changed(cairn_runtime::continuous::Change::Collection(&name));
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(
            "document_not_found",
            format!("collection `{name}` has no document {id}"),
        ))
    }
}

/// A search request: the collection comes from the path.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchBody {
    query: String,
    #[serde(default = "default_top_k")]
    top_k: usize,
    #[serde(default)]
    filter: Option<Filter>,
    #[serde(default)]
    mode: SearchMode,
    #[serde(default)]
    mmr_lambda: Option<f32>,
    /// Reorder the candidates with the configured cross-encoder (rerank.model).
    #[serde(default)]
    rerank: bool,
    /// Also assemble the passages into a cited context of at most this many tokens.
    #[serde(default)]
    context_tokens: Option<usize>,
}

fn default_top_k() -> usize {
    5
}

#[derive(Debug, Serialize)]
pub struct SearchResponse {
    object: &'static str,
    data: Vec<Passage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    context: Option<CitedContext>,
}

pub async fn search(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<SearchBody>,
) -> Result<Json<SearchResponse>, ApiError> {
    reachable(&caller, &name)?;
    if !(1..=100).contains(&body.top_k) {
        return Err(ApiError::bad_request(
            "invalid_top_k",
            format!("top_k is {}; use 1 to 100", body.top_k),
        ));
    }
    if body.mmr_lambda.is_some_and(|l| !(0.0..=1.0).contains(&l)) {
        return Err(ApiError::bad_request(
            "invalid_mmr_lambda",
            "mmr_lambda is a weight between 0 (diversity) and 1 (relevance)",
        ));
    }
    let rag = state.rag()?;
    let request = SearchRequest {
        collection: name,
        query: body.query,
        top_k: body.top_k,
        filter: body.filter,
        mode: body.mode,
        mmr_lambda: body.mmr_lambda,
        rerank: body.rerank,
    };
    let passages = rag.retriever.search(&request).await?;
    let context = body
        .context_tokens
        .map(|budget| assemble(&passages, budget, |t| rag.count_tokens(t)));
    Ok(Json(SearchResponse {
        object: "list",
        data: passages,
        context,
    }))
}

impl AppState {
    /// The RAG pipeline, or a 503 that says why it is not available.
    pub fn rag(&self) -> Result<&Arc<Rag>, ApiError> {
        self.rag.as_ref().as_ref().map_err(|e| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                "retrieval_unavailable",
                format!("ingest and search are unavailable: {e}"),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploaded_files_are_named_not_pathed() {
        assert_eq!(upload_name("guide v2.md").expect("a name"), "guide v2.md");
        for bad in [
            "../../etc/passwd.md",
            "/etc/passwd.md",
            "a\\b.md",
            "..",
            "",
            "x\n.md",
        ] {
            assert!(upload_name(bad).is_err(), "{bad:?}");
        }
    }
}
