//! The OpenAI-compatible API: `POST /v1/chat/completions` (JSON and SSE streaming, tools,
//! response formats, usage in the last chunk on request), `GET /v1/models` and
//! `GET /v1/models/{id}` (routes, apps, agents and the embedding model, each with its kind) and
//! `GET /v1/lineage/{id}`. Handlers translate the wire format
//! (`openai_wire.rs`) into one call of the answer pipeline and its answer back; nothing else.

use std::convert::Infallible;
use std::time::Instant;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use cairn_app::{Answer, AnswerRequest, CachePolicy, Target};
use cairn_core::model::ChatChunk;
use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::access::Caller;
use crate::app::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, request_context};
use crate::openai_wire::{
    CompletionRequest, completion_json, finish_reason, now, to_core, usage_json,
};

pub(crate) async fn chat_completions(
    State(state): State<AppState>,
    Caller(caller): Caller,
    headers: HeaderMap,
    ApiJson(request): ApiJson<CompletionRequest>,
) -> Result<Response, ApiError> {
    let received = Instant::now();
    let (chat, stream, include_usage) = to_core(request)?;
    let model_name = chat.model.clone();
    let context = request_context(&headers, caller.principal());
    let request = AnswerRequest {
        cache: if bypasses_cache(&headers) {
            CachePolicy::Bypass
        } else {
            CachePolicy::Use
        },
        ..AnswerRequest::new(Target::from_model_name(&model_name), chat)
    };
    let answer = state.pipeline.answer(&context, request).await?;
    if stream {
        streamed(answer, model_name, include_usage).await
    } else {
        completed(answer, model_name, received).await
    }
}

/// What Cairn adds to an answer's body besides the model's output: the citations and a `cairn`
/// object (lineage id, app, prompt version).
fn extension(answer: &Answer) -> serde_json::Map<String, Value> {
    let mut extension = serde_json::Map::new();
    if answer.app().is_some() {
        extension.insert("citations".into(), json!(answer.citations()));
    }
    extension.insert(
        "cairn".into(),
        json!({"lineage_id": answer.lineage_id(), "app": answer.app(),
               "prompt": answer.prompt().map(|(name, version)| json!({"name": name, "version": version}))}),
    );
    extension
}

async fn completed(
    answer: Answer,
    model_name: String,
    received: Instant,
) -> Result<Response, ApiError> {
    let id = format!("chatcmpl-{}", uuid::Uuid::new_v4().simple());
    let mut extension = extension(&answer);
    let lineage_id = answer.lineage_id();
    let uses_cache = answer.uses_cache();
    let steps = answer.agent_steps();
    let cited = answer.agent_citations();
    let completed = answer.complete().await?;
    let cost = completed.response.cost_usd;
    if let Some(cairn) = extension.get_mut("cairn") {
        cairn["cost_usd"] = json!(cost);
        if let Some(steps) = steps {
            cairn["steps"] = json!(steps.steps());
        }
    }
    // An agent's citations are the passages its searches found, known once it has run.
    if let Some(cited) = cited {
        extension.insert("citations".into(), json!(cited.snapshot()));
    }
    let mut body = completion_json(&id, &model_name, completed.response);
    if let Some(object) = body.as_object_mut() {
        object.extend(extension);
    }
    let mut response = (lineage_header(lineage_id), Json(body)).into_response();
    // What Cairn added to the model call: everything since the request was parsed, retrieval and
    // prompt rendering included, minus the time spent in the route.
    let overhead = received.elapsed().saturating_sub(completed.upstream);
    let headers = response.headers_mut();
    if uses_cache {
        headers.insert(
            HeaderName::from_static("x-cairn-cache"),
            HeaderValue::from_static(if completed.cached { "hit" } else { "miss" }),
        );
    }
    // Model calls the answer took (more than one when it was asked again to meet its schema).
    headers.insert(
        HeaderName::from_static("x-cairn-attempts"),
        HeaderValue::from(completed.attempts),
    );
    if let Ok(value) = HeaderValue::from_str(&format!("{:.3}", overhead.as_secs_f64() * 1000.0)) {
        headers.insert(HeaderName::from_static("x-cairn-overhead-ms"), value);
    }
    if let Some(cost) = cost
        && let Ok(value) = HeaderValue::from_str(&format!("{cost:.8}"))
    {
        headers.insert(HeaderName::from_static("x-cairn-cost-usd"), value);
    }
    Ok(response)
}

/// Errors before the first chunk get a status code; after it, an error event ends the stream.
async fn streamed(
    answer: Answer,
    model_name: String,
    include_usage: bool,
) -> Result<Response, ApiError> {
    let id = format!("chatcmpl-{}", uuid::Uuid::new_v4().simple());
    let extension = extension(&answer);
    let lineage_id = answer.lineage_id();
    let upstream = answer.stream().await?;
    let created = now();
    let chunk = move |delta: Value, finish: Option<&str>| {
        json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model_name,
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let mut first = chunk(json!({"role": "assistant", "content": ""}), None);
    if let Some(object) = first.as_object_mut() {
        object.extend(extension);
    }
    let opening = futures_util::stream::once(async move { vec![first.to_string()] });
    let mut tool_index = 0usize;
    let body = upstream.map(move |item| match item {
        Ok(ChatChunk::Delta(text)) => vec![chunk(json!({"content": text}), None).to_string()],
        Ok(ChatChunk::ToolCall(call)) => {
            let delta = json!({"tool_calls": [{"index": tool_index, "id": call.id, "type": "function",
                                               "function": {"name": call.name, "arguments": call.arguments}}]});
            tool_index += 1;
            vec![chunk(delta, None).to_string()]
        }
        Ok(ChatChunk::Step(step)) => {
            // An agent's step, in an extension field standard clients ignore.
            let mut value = chunk(json!({}), None);
            value["cairn_step"] = json!(step);
            vec![value.to_string()]
        }
        Ok(ChatChunk::Finish { reason, usage, .. }) => {
            let mut events = vec![chunk(json!({}), Some(finish_reason(reason))).to_string()];
            if include_usage {
                let mut value = chunk(Value::Null, None);
                value["choices"] = json!([]);
                value["usage"] = usage_json(usage);
                events.push(value.to_string());
            }
            events.push("[DONE]".to_owned());
            events
        }
        Err(error) => {
            let error = ApiError::from(error);
            tracing::warn!(code = error.code, "stream ended with an error: {}", error.message);
            vec![json!({"error": {"message": error.message, "type": error.kind, "code": error.code}}).to_string()]
        }
    });
    let events = opening
        .chain(body)
        .flat_map(futures_util::stream::iter)
        .map(|data| Ok::<_, Infallible>(Event::default().data(data)));
    Ok((
        lineage_header(lineage_id),
        Sse::new(events).keep_alive(KeepAlive::default()),
    )
        .into_response())
}

fn lineage_header(id: uuid::Uuid) -> [(HeaderName, String); 1] {
    [(
        HeaderName::from_static("x-cairn-lineage-id"),
        id.to_string(),
    )]
}

/// `x-cairn-cache: bypass` or `Cache-Control: no-cache` / `no-store`: answer afresh.
fn bypasses_cache(headers: &HeaderMap) -> bool {
    let value = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_ascii_lowercase)
            .unwrap_or_default()
    };
    value("x-cairn-cache") == "bypass"
        || value("cache-control")
            .split(',')
            .any(|d| matches!(d.trim(), "no-cache" | "no-store"))
}

/// No lineage record (yet): records are written in the background just after the answer.
pub(crate) fn lineage_not_found(id: uuid::Uuid) -> ApiError {
    ApiError::not_found(
        "lineage_not_found",
        format!(
            "no answer has lineage id {id} (records are written just after the answer; retry in a moment)"
        ),
    )
}

/// `GET /v1/lineage/{id}`: how an answer was produced (app, prompt version, route, retrieved
/// chunks, tokens, latency), with its feedback.
pub(crate) async fn get_lineage(
    State(state): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<uuid::Uuid>,
) -> Result<Json<Value>, ApiError> {
    let record = state
        .catalog
        .get_lineage(id)
        .await?
        .ok_or_else(|| lineage_not_found(id))?;
    let feedback = state.catalog.list_feedback(id).await?;
    let mut body = serde_json::to_value(&record)
        .map_err(|e| ApiError::internal(format!("cannot encode the lineage record: {e}")))?;
    body["feedback"] = serde_json::to_value(feedback)
        .map_err(|e| ApiError::internal(format!("cannot encode feedback: {e}")))?;
    // Online evaluation's scores of this answer, where it was judged.
    let scores = state.catalog.list_lineage_scores(id).await?;
    body["scores"] = serde_json::to_value(scores)
        .map_err(|e| ApiError::internal(format!("cannot encode scores: {e}")))?;
    // The audit trail of the prompt version: the label move that made it live.
    if let (Some(name), Some(version)) = (&record.prompt_name, record.prompt_version) {
        let history = state.catalog.prompt_label_history(name).await?;
        body["label_move"] = json!(made_live(&history, version, record.created_at));
    }
    Ok(Json(body))
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct LineageQuery {
    app: Option<String>,
    since: Option<chrono::DateTime<chrono::Utc>>,
    /// Only answers given in web UI conversations.
    #[serde(default)]
    conversations: bool,
    limit: Option<u32>,
}

/// `GET /v1/lineage?app=&since=&conversations=&limit=`: answers' lineage records, newest first
/// (admin: they are everyone's answers).
pub(crate) async fn list_lineage(
    State(state): State<AppState>,
    axum::extract::Query(query): axum::extract::Query<LineageQuery>,
) -> Result<Json<Value>, ApiError> {
    let records = state
        .catalog
        .list_lineage(&cairn_core::catalog::LineageFilter {
            app: query.app.filter(|a| !a.is_empty()),
            since: query.since,
            in_conversations: query.conversations,
            limit: query.limit.unwrap_or(100).clamp(1, 1000),
        })
        .await?;
    Ok(Json(json!({"object": "list", "data": records})))
}

/// The last label move before `at` that put `version` under a label: what made the version an
/// answer used live. `None` when no label pointed at it (a pinned version, in an eval).
fn made_live(
    history: &[cairn_core::catalog::LabelMove],
    version: i64,
    at: chrono::DateTime<chrono::Utc>,
) -> Option<&cairn_core::catalog::LabelMove> {
    history
        .iter()
        .filter(|m| m.to_version == version && m.moved_at <= at)
        .max_by_key(|m| m.moved_at)
}

/// Every name a client may put in `"model"`, OpenAI's model objects with what each is in
/// `cairn.kind`: `route` (a model or route), `app`, `agent`, or `embedding` (for
/// `/v1/embeddings` only), so clients that pick from the list find apps and agents as chat models.
fn model_list(state: &AppState) -> Vec<Value> {
    let pipeline = &state.pipeline;
    let routes = pipeline.models().names().into_iter().map(|n| (n, "route"));
    let apps = pipeline
        .apps()
        .iter()
        .map(|a| (format!("app:{}", a.name), "app"));
    let agents = pipeline
        .agents()
        .iter()
        .map(|a| (format!("agent:{}", a.name), "agent"));
    let embedding = state
        .rag()
        .ok()
        .map(|rag| (rag.embedder.model_id().to_owned(), "embedding"));
    routes
        .chain(apps)
        .chain(agents)
        .chain(embedding)
        .map(|(id, kind)| {
            json!({"id": id, "object": "model", "created": 0, "owned_by": "cairn", "cairn": {"kind": kind}})
        })
        .collect()
}

pub(crate) async fn list_models(State(state): State<AppState>) -> Json<Value> {
    Json(json!({"object": "list", "data": model_list(&state)}))
}

/// `GET /v1/models/{id}`: one of [`list_models`]' entries (ids such as `app:handbook` included).
pub(crate) async fn get_model(
    State(state): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Json<Value>, ApiError> {
    model_list(&state)
        .into_iter()
        .find(|m| m["id"] == id.as_str())
        .map(Json)
        .ok_or_else(|| {
            ApiError::not_found(
                "model_not_found",
                format!("no model, route, app or agent is named `{id}`; GET /v1/models lists them"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_move_that_made_a_version_live_is_the_last_one_to_it_before_the_answer() {
        let at = |minute: i64| chrono::DateTime::UNIX_EPOCH + chrono::Duration::minutes(minute);
        let moved = |to: i64, minute: i64| cairn_core::catalog::LabelMove {
            name: "rag_answer".into(),
            label: "production".into(),
            from_version: None,
            to_version: to,
            actor: "ops".into(),
            reason: format!("to v{to}"),
            moved_at: at(minute),
            eval_run: None,
        };
        let history = [moved(1, 0), moved(2, 10), moved(1, 20), moved(1, 40)];
        assert_eq!(
            made_live(&history, 1, at(30)).map(|m| m.moved_at),
            Some(at(20))
        );
        assert_eq!(
            made_live(&history, 2, at(15)).map(|m| m.moved_at),
            Some(at(10))
        );
        assert!(made_live(&history, 2, at(5)).is_none(), "not live yet");
        assert!(made_live(&history, 3, at(50)).is_none(), "never labelled");
    }
}
