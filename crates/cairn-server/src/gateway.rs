//! What the OpenAI-compatible API adds around the pipeline: who is calling (an optional Cairn API
//! key), the 429 of a refused call, and the shadow comparisons a route has stored.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::http::StatusCode;
use cairn_auth::{AuthError, KeyVerifier};
use cairn_core::Catalog;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::AppState;
use crate::error::ApiError;

#[derive(Debug, Deserialize)]
pub(crate) struct ShadowQuery {
    #[serde(default = "default_limit")]
    limit: u32,
}

fn default_limit() -> u32 {
    50
}

/// `GET /v1/routes/{name}/shadow?limit=N`: a route's shadow comparisons, newest first.
pub(crate) async fn list_shadow_results(
    State(state): State<AppState>,
    Path(route): Path<String>,
    Query(query): Query<ShadowQuery>,
) -> Result<Json<Value>, ApiError> {
    let results = state
        .catalog
        .list_shadow_results(&route, query.limit.clamp(1, 500))
        .await?;
    Ok(Json(json!({"object": "list", "data": results})))
}

/// The caller of an OpenAI-compatible request: the Cairn API key in `Authorization: Bearer cairn_…`
/// (verified by the process's one [`KeyVerifier`]), else anonymous: other bearer tokens (OpenAI
/// clients always send one) are not Cairn's.
pub(crate) async fn principal(
    keys: &KeyVerifier,
    catalog: &dyn Catalog,
    headers: &HeaderMap,
) -> Result<cairn_core::Principal, ApiError> {
    let Some(secret) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|token| token.starts_with(cairn_auth::keys::KEY_PREFIX))
    else {
        return Ok(cairn_core::Principal::anonymous());
    };
    match keys.verify(catalog, secret).await {
        Ok(key) => Ok(cairn_core::Principal::api_key(key.name)),
        Err(error @ AuthError::UnknownKey) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "invalid_api_key",
            error.to_string(),
        )),
        Err(AuthError::Catalog(error)) => Err(error.into()),
    }
}

/// The 429 for a refused call, with `Retry-After`.
pub(crate) fn limited(refused: cairn_gateway::Limited) -> ApiError {
    let mut error = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limit_error",
        "rate_limit_exceeded",
        refused.message,
    );
    error.retry_after = Some(refused.retry_after.as_secs().max(1));
    error
}
