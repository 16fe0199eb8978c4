//! API keys over REST, for admins: `GET /v1/keys`, `POST /v1/keys` (the secret is in the answer,
//! once), `DELETE /v1/keys/{name}` (refused by this process at once, by other replicas within the
//! verifier's 30 s). The role check and the audit log are the router's.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use cairn_core::catalog::ApiKey;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::AppState;
use crate::error::ApiError;
use crate::extract::ApiJson;

/// A key as listed: never its hash or secret.
fn listed(key: &ApiKey) -> Value {
    json!({
        "name": key.name, "prefix": key.prefix, "roles": key.roles, "tools": key.tools,
        "collections": key.collections, "created_at": key.created_at.to_rfc3339(),
        "revoked_at": key.revoked_at.map(|t| t.to_rfc3339()),
    })
}

pub(crate) async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let keys = state.catalog.list_api_keys().await?;
    Ok(Json(
        json!({"object": "list", "data": keys.iter().map(listed).collect::<Vec<_>>()}),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateKey {
    name: String,
    #[serde(default = "read_only")]
    roles: Vec<String>,
    #[serde(default)]
    tools: Vec<String>,
    #[serde(default)]
    collections: Vec<String>,
}

fn read_only() -> Vec<String> {
    vec!["read".into()]
}

pub(crate) async fn create(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<CreateKey>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let generated = cairn_auth::keys::checked(
        &request.name,
        &request.roles,
        &request.tools,
        &request.collections,
        &cairn_mcp::TOOL_NAMES,
    )
    .map_err(|problem| ApiError::bad_request("invalid_key", problem))?;
    let key = state.catalog.create_api_key(generated.record).await?;
    let mut body = listed(&key);
    body["key"] = json!(generated.secret);
    Ok((StatusCode::CREATED, Json(body)))
}

pub(crate) async fn revoke(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    if state.catalog.revoke_api_key(&name).await? {
        state.keys.forget(&name);
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(
            "key_not_found",
            format!("no active key is named `{name}`; GET /v1/keys lists them"),
        ))
    }
}
