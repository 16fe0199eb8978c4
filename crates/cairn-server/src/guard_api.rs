//! `POST /v1/guard/check`: runs named guardrails over a text for another service, as the answer
//! pipeline would at the given stage, and says what they decided.

use axum::Json;
use axum::extract::State;
use cairn_app::TextCheck;
use cairn_core::guard::GuardStage;
use serde::Deserialize;

use crate::app::AppState;
use crate::error::ApiError;
use crate::extract::ApiJson;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CheckRequest {
    /// The `[[guards]]` names to run, in order.
    guards: Vec<String>,
    /// The stage to check as; default `input`.
    #[serde(default = "input")]
    stage: GuardStage,
    text: String,
}

fn input() -> GuardStage {
    GuardStage::Input
}

pub(crate) async fn check(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<CheckRequest>,
) -> Result<Json<TextCheck>, ApiError> {
    let checked = state
        .pipeline
        .guards()
        .check_text(&request.guards, request.stage, request.text)
        .await?;
    Ok(Json(checked))
}
