//! Stored eval runs over REST: list runs (of one suite or all), one run with its cases, and two
//! runs compared case by case. Thin handlers over `cairn_eval::store`; running suites is the CLI's
//! and CI's job (`cairn eval run`), not a request's.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::app::AppState;
use crate::error::ApiError;

/// The most runs one list returns.
const MAX_LIMIT: u32 = 500;

/// `GET /v1/evals/runs?suite=NAME&limit=N`: newest first.
pub(crate) async fn list_runs(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let limit = match query.get("limit") {
        None => 50,
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_limit",
                    format!("`limit={text}` is not a number from 1 to {MAX_LIMIT}"),
                )
            })?,
    };
    let suite = query.get("suite").map(String::as_str);
    let runs = state.catalog.list_eval_runs(suite, limit).await?;
    Ok(Json(json!({"object": "list", "data": runs})))
}

/// `GET /v1/evals/runs/{id}`: the run (summary, gates, aggregates) and every case's result.
pub(crate) async fn get_run(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = run_id("id", &id)?;
    let run = state
        .catalog
        .get_eval_run(id)
        .await?
        .ok_or_else(|| missing(id))?;
    let results = state.catalog.list_eval_results(id).await?;
    Ok(Json(json!({"run": run, "results": results})))
}

/// `GET /v1/evals/compare?before=ID&after=ID`: per metric of the later run, both means, the
/// paired difference with its 95% interval, and the cases that got better or worse.
pub(crate) async fn compare(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let param = |name: &str| {
        query
            .get(name)
            .ok_or_else(|| {
                ApiError::bad_request(
                    "missing_run_id",
                    format!("`{name}` is required: /v1/evals/compare?before=RUN_ID&after=RUN_ID"),
                )
            })
            .and_then(|text| run_id(name, text))
    };
    let (before, after) = (param("before")?, param("after")?);
    let compared = cairn_eval::store::compare(state.catalog.as_ref(), before, after)
        .await?
        .map_err(missing)?;
    Ok(Json(serde_json::to_value(compared).map_err(|e| {
        ApiError::internal(format!("cannot encode the comparison: {e}"))
    })?))
}

fn run_id(name: &str, text: &str) -> Result<Uuid, ApiError> {
    text.parse().map_err(|_| {
        ApiError::bad_request(
            "invalid_run_id",
            format!(
                "`{name}` = `{text}` is not an eval run id (a UUID, as `cairn eval list` shows)"
            ),
        )
    })
}

fn missing(id: Uuid) -> ApiError {
    ApiError::not_found(
        "eval_run_not_found",
        format!("no eval run `{id}`; GET /v1/evals/runs lists the stored runs"),
    )
}
