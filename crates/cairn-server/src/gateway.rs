//! What the OpenAI-compatible API adds around the pipeline: the 429 of a refused call, and the
//! shadow comparisons a route has stored.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
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
