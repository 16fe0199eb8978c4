//! The prompt registry's REST API: list, inspect, publish, label and render prompts.
//!
//! Thin handlers over `cairn_prompts::PromptRegistry`; DTOs are this module's own.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use cairn_core::catalog::{LabelMove, PromptVersion};
use cairn_prompts::{PromptFile, Selector};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::app::AppState;
use crate::error::ApiError;
use crate::extract::ApiJson;

#[derive(Debug, Serialize)]
struct VersionSummary {
    version: i64,
    content_hash: String,
    author: String,
    message: String,
    created_at: String,
}

impl From<&PromptVersion> for VersionSummary {
    fn from(version: &PromptVersion) -> Self {
        VersionSummary {
            version: version.version,
            content_hash: version.content_hash.clone(),
            author: version.author.clone(),
            message: version.message.clone(),
            created_at: version.created_at.to_rfc3339(),
        }
    }
}

fn version_json(version: &PromptVersion) -> Value {
    json!({
        "name": version.name,
        "version": version.version,
        "template": version.template,
        "spec": version.spec,
        "content_hash": version.content_hash,
        "author": version.author,
        "message": version.message,
        "created_at": version.created_at.to_rfc3339(),
    })
}

fn label_move_json(moved: &LabelMove) -> Value {
    json!({
        "name": moved.name,
        "label": moved.label,
        "from_version": moved.from_version,
        "to_version": moved.to_version,
        "actor": moved.actor,
        "reason": moved.reason,
        "moved_at": moved.moved_at.to_rfc3339(),
        "eval_run": moved.eval_run,
    })
}

pub(crate) async fn list_prompts(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let mut data = Vec::new();
    for summary in state.catalog.list_prompts().await? {
        let labels: serde_json::Map<String, Value> = state
            .catalog
            .list_prompt_labels(&summary.name)
            .await?
            .into_iter()
            .map(|label| (label.label, json!(label.version)))
            .collect();
        data.push(json!({
            "name": summary.name,
            "latest_version": summary.latest_version,
            "updated_at": summary.updated_at.to_rfc3339(),
            "labels": labels,
        }));
    }
    Ok(Json(json!({"object": "list", "data": data})))
}

pub(crate) async fn get_prompt(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let versions = state.catalog.list_prompt_versions(&name).await?;
    if versions.is_empty() {
        return Err(ApiError::not_found(
            "prompt_not_found",
            format!("prompt `{name}` does not exist"),
        ));
    }
    let labels: Vec<Value> = state
        .catalog
        .list_prompt_labels(&name)
        .await?
        .into_iter()
        .map(|l| json!({"label": l.label, "version": l.version, "updated_at": l.updated_at.to_rfc3339(), "updated_by": l.updated_by}))
        .collect();
    let moves: Vec<Value> = state
        .catalog
        .prompt_label_history(&name)
        .await?
        .iter()
        .map(label_move_json)
        .collect();
    let versions: Vec<VersionSummary> = versions.iter().map(VersionSummary::from).collect();
    Ok(Json(
        json!({"name": name, "versions": versions, "labels": labels, "label_moves": moves}),
    ))
}

pub(crate) async fn get_version(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, i64)>,
) -> Result<Json<Value>, ApiError> {
    let version = state
        .prompts
        .resolve(&name, &Selector::Version(version))
        .await?;
    Ok(Json(version_json(&version)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PublishRequest {
    /// The prompt file's text: front matter and body.
    source: String,
    #[serde(default = "api_actor")]
    author: String,
    #[serde(default)]
    message: String,
}

fn api_actor() -> String {
    "api".to_owned()
}

pub(crate) async fn publish_version(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(request): ApiJson<PublishRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let file = PromptFile::parse(
        &request.source,
        &format!("request body for prompt `{name}`"),
    )?;
    if file.spec.name != name {
        return Err(ApiError::bad_request(
            "name_mismatch",
            format!(
                "the source declares prompt `{}` but was sent to /v1/prompts/{name}/versions",
                file.spec.name
            ),
        ));
    }
    let outcome = state
        .prompts
        .publish(&file, &request.author, &request.message)
        .await?;
    let status = if outcome.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut body = version_json(&outcome.version);
    body["created"] = json!(outcome.created);
    Ok((status, Json(body)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LabelRequest {
    version: i64,
    #[serde(default)]
    reason: String,
    #[serde(default = "api_actor")]
    actor: String,
    /// The passing eval run that vouches for the version (required when the label is eval-gated).
    #[serde(default)]
    eval_run: Option<uuid::Uuid>,
}

pub(crate) async fn set_label(
    State(state): State<AppState>,
    Path((name, label)): Path<(String, String)>,
    ApiJson(request): ApiJson<LabelRequest>,
) -> Result<Json<Value>, ApiError> {
    let prompts = &state.prompts;
    let (version, actor, reason) = (request.version, &request.actor, &request.reason);
    let moved = match request.eval_run {
        Some(run) => {
            prompts
                .set_label_vouched(&name, &label, version, actor, reason, run)
                .await?
        }
        None => {
            prompts
                .set_label(&name, &label, version, actor, reason)
                .await?
        }
    };
    state
        .continuous
        .changed(cairn_runtime::continuous::Change::Prompt(&moved.name));
    Ok(Json(label_move_json(&moved)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RenderRequest {
    version: Option<i64>,
    label: Option<String>,
    #[serde(default)]
    variables: Value,
}

pub(crate) async fn render(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(request): ApiJson<RenderRequest>,
) -> Result<Json<Value>, ApiError> {
    let selector = match (request.version, request.label) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "invalid_selector",
                "give `version` or `label`, not both",
            ));
        }
        (Some(version), None) => Selector::Version(version),
        (None, Some(label)) => Selector::Label(label),
        (None, None) => Selector::Latest,
    };
    let rendered = state
        .prompts
        .render(&name, &selector, &request.variables)
        .await?;
    Ok(Json(json!({
        "prompt": {"name": rendered.name, "version": rendered.version},
        "messages": rendered.messages.iter().map(|m| json!({"role": m.role.as_str(), "content": m.content})).collect::<Vec<_>>(),
        "model": rendered.model,
        "route": rendered.route,
    })))
}
