//! What the OpenAI-compatible API adds around the pipeline: who is calling (an optional Cairn API
//! key), the 429 of a refused call, and the shadow comparisons a route has stored.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::http::StatusCode;
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

/// How long a verified key is trusted before the catalog is asked again (so a revoked key stops
/// working within this time on every replica).
const KEY_TTL: Duration = Duration::from_secs(30);

/// Verified API keys by hash, so that a call with a key does not wait for the catalog each time.
#[derive(Debug, Default)]
pub struct KeyCache {
    verified: Mutex<HashMap<String, (String, Instant)>>,
}

impl KeyCache {
    /// The caller's key name, from `Authorization: Bearer cairn_…`. Other bearer tokens (OpenAI
    /// clients always send one) are not Cairn's and mean an anonymous caller.
    pub(crate) async fn caller(
        &self,
        catalog: &dyn Catalog,
        headers: &HeaderMap,
    ) -> Result<Option<String>, ApiError> {
        let Some(secret) = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|token| token.starts_with(cairn_mcp::keys::KEY_PREFIX))
        else {
            return Ok(None);
        };
        let hash = cairn_mcp::keys::hash(secret);
        if let Ok(verified) = self.verified.lock()
            && let Some((name, at)) = verified.get(&hash)
            && at.elapsed() < KEY_TTL
        {
            return Ok(Some(name.clone()));
        }
        let Some(key) = catalog.find_active_api_key(&hash).await? else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_request_error",
                "invalid_api_key",
                "the API key is not known or has been revoked; create one with `cairn key create`",
            ));
        };
        if let Ok(mut verified) = self.verified.lock() {
            if verified.len() > 10_000 {
                verified.retain(|_, (_, at)| at.elapsed() < KEY_TTL);
            }
            verified.insert(hash, (key.name.clone(), Instant::now()));
        }
        Ok(Some(key.name))
    }

    /// The caller as the answer pipeline sees it: the key's principal, or an anonymous one.
    pub(crate) async fn principal(
        &self,
        catalog: &dyn Catalog,
        headers: &HeaderMap,
    ) -> Result<cairn_core::Principal, ApiError> {
        Ok(match self.caller(catalog, headers).await? {
            Some(name) => cairn_core::Principal::api_key(name),
            None => cairn_core::Principal::anonymous(),
        })
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
