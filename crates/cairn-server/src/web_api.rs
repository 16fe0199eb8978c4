//! The web chat UI and the API behind it: the embedded assets at `/` and `/assets/…`, the signed-in
//! user, apps, conversations (persisted in the catalog), streamed cited answers that are stored as
//! they finish (or as far as they got when stopped), feedback on answers, and document text for the
//! citation panel.

use std::convert::Infallible;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use cairn_app::{Answer, AnswerError, AnswerRequest, AnswerStream, CachePolicy, Target};
use cairn_core::catalog::{Conversation, Message, NewFeedback, NewMessage};
use cairn_core::model::{ChatChunk, ChatMessage, ChatRequest, Role, Usage};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::app::AppState;
use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::extract::{ApiJson, request_context};

/// Longest question the UI may send, in characters.
const MAX_QUESTION_CHARS: usize = 8_000;
/// Longest feedback comment, in characters.
const MAX_COMMENT_CHARS: usize = 2_000;
/// Conversation titles made from the first question are cut to this many characters.
const TITLE_CHARS: usize = 60;

/// The embedded front-end: (path under /assets/, content type, bytes).
const ASSETS: [(&str, &str, &[u8]); 7] = [
    (
        "evals.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../web/evals.js"),
    ),
    (
        "evals.css",
        "text/css; charset=utf-8",
        include_bytes!("../../../web/evals.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../web/app.js"),
    ),
    (
        "steps.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../web/steps.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("../../../web/style.css"),
    ),
    (
        "vendor/marked.esm.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../web/vendor/marked.esm.js"),
    ),
    (
        "vendor/purify.es.mjs",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../web/vendor/purify.es.mjs"),
    ),
];

/// Scripts, styles, images and connections from this origin only: model output that slipped past
/// the sanitizer still could not run a script or load anything from elsewhere.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; connect-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

fn hardened(content_type: &'static str) -> [(HeaderName, HeaderValue); 4] {
    [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ]
}

pub(crate) async fn index() -> Response {
    (
        hardened("text/html; charset=utf-8"),
        include_str!("../../../web/index.html"),
    )
        .into_response()
}

/// The evals page: stored runs, one run's cases, two runs side by side.
pub(crate) async fn evals_page() -> Response {
    (
        hardened("text/html; charset=utf-8"),
        include_str!("../../../web/evals.html"),
    )
        .into_response()
}

pub(crate) async fn asset(Path(path): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == path) {
        Some((_, content_type, bytes)) => (hardened(content_type), *bytes).into_response(),
        None => {
            ApiError::not_found("unknown_asset", format!("no asset /assets/{path}")).into_response()
        }
    }
}

pub(crate) async fn list_apps(State(state): State<AppState>, _user: CurrentUser) -> Json<Value> {
    let apps: Vec<Value> = state
        .pipeline
        .apps()
        .iter()
        .map(
            |a| json!({"name": a.name, "kind": "app", "description": a.description, "collections": a.collections}),
        )
        // Agents are chosen like apps, by `agent:NAME`.
        .chain(state.pipeline.agents().iter().map(|a| {
            json!({"name": format!("agent:{}", a.name), "kind": "agent", "description": a.description,
                   "collections": a.collections, "tools": a.tools})
        }))
        .collect();
    Json(json!({"object": "list", "data": apps}))
}

fn conversation_json(c: &Conversation) -> Value {
    json!({"id": c.id, "title": c.title, "created_at": c.created_at.to_rfc3339(),
           "updated_at": c.updated_at.to_rfc3339()})
}

/// The user's conversation, or a 404 (also for someone else's: it is not theirs to see).
async fn owned_conversation(
    state: &AppState,
    user: &CurrentUser,
    id: Uuid,
) -> Result<Conversation, ApiError> {
    match state.catalog.get_conversation(id).await? {
        Some(c) if c.owner == user.id => Ok(c),
        _ => Err(ApiError::not_found(
            "conversation_not_found",
            format!("conversation {id} does not exist; it may have been deleted"),
        )),
    }
}

pub(crate) async fn list_conversations(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Json<Value>, ApiError> {
    let conversations = state.catalog.list_conversations(&user.id).await?;
    let data: Vec<Value> = conversations.iter().map(conversation_json).collect();
    Ok(Json(json!({"object": "list", "data": data})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewConversationBody {
    #[serde(default)]
    title: String,
}

fn clean_title(title: &str) -> Result<String, ApiError> {
    let title = title.trim();
    if title.chars().count() > 200 {
        return Err(ApiError::bad_request(
            "invalid_title",
            "the title is longer than 200 characters; shorten it",
        ));
    }
    Ok(title.to_owned())
}

pub(crate) async fn create_conversation(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<NewConversationBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let title = clean_title(&body.title)?;
    let conversation = state.catalog.create_conversation(&user.id, &title).await?;
    Ok((StatusCode::CREATED, Json(conversation_json(&conversation))))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RenameBody {
    title: String,
}

pub(crate) async fn rename_conversation(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
    ApiJson(body): ApiJson<RenameBody>,
) -> Result<Json<Value>, ApiError> {
    owned_conversation(&state, &user, id).await?;
    let title = clean_title(&body.title)?;
    if title.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_title",
            "the title is empty; give the conversation a name",
        ));
    }
    let conversation = state.catalog.rename_conversation(id, &title).await?;
    Ok(Json(conversation_json(&conversation)))
}

pub(crate) async fn delete_conversation(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    owned_conversation(&state, &user, id).await?;
    state.catalog.delete_conversation(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The citations of a stored answer, rebuilt from its lineage record and the cited chunks.
async fn stored_citations(state: &AppState, lineage_id: Uuid) -> Vec<cairn_rag::Citation> {
    let Ok(Some(record)) = state.catalog.get_lineage(lineage_id).await else {
        return Vec::new();
    };
    let retrieved: Vec<(usize, Uuid, f32)> = record
        .retrieval
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| {
            Some((
                usize::try_from(r["index"].as_u64()?).ok()?,
                r["chunk_id"].as_str()?.parse().ok()?,
                r["score"].as_f64().unwrap_or_default() as f32,
            ))
        })
        .collect();
    let hits: Vec<(Uuid, f32)> = retrieved
        .iter()
        .map(|(_, id, score)| (*id, *score))
        .collect();
    let Ok(passages) = cairn_rag::load_passages(state.catalog.as_ref(), &hits).await else {
        return Vec::new();
    };
    let index_of: std::collections::HashMap<Uuid, usize> = retrieved
        .iter()
        .map(|(index, id, _)| (*id, *index))
        .collect();
    passages
        .iter()
        .filter_map(|passage| {
            let index = *index_of.get(&passage.chunk_id)?;
            Some(cairn_rag::Citation::of(index, passage))
        })
        .collect()
}

async fn message_json(state: &AppState, m: &Message) -> Value {
    let mut value = json!({"id": m.id, "role": m.role, "content": m.content,
                           "created_at": m.created_at.to_rfc3339(), "lineage_id": m.lineage_id});
    if m.role == "assistant" {
        value["citations"] = match m.lineage_id {
            Some(id) => json!(stored_citations(state, id).await),
            None => Value::Array(Vec::new()),
        };
    }
    value
}

pub(crate) async fn get_conversation(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
) -> Result<Json<Value>, ApiError> {
    let conversation = owned_conversation(&state, &user, id).await?;
    let mut messages = Vec::new();
    for message in state.catalog.list_messages(id).await? {
        messages.push(message_json(&state, &message).await);
    }
    let mut body = conversation_json(&conversation);
    body["messages"] = Value::Array(messages);
    Ok(Json(body))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AskBody {
    app: String,
    #[serde(default)]
    content: Option<String>,
    /// Answer the last question again.
    #[serde(default)]
    regenerate: bool,
    /// Resume an agent's run at the calls it stopped at, with the user's decisions (the last
    /// question is asked again, with those calls and decisions after it).
    #[serde(default)]
    approvals: Option<Approvals>,
}

/// The tool calls an agent's run stopped at, and the user's decision on each (call id → yes).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Approvals {
    calls: Vec<PendingCall>,
    decisions: std::collections::BTreeMap<String, bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PendingCall {
    id: String,
    name: String,
    arguments: String,
}

impl Approvals {
    /// The model's calls and a `tool` message per decision, as the agent's resume reads them.
    fn messages(self) -> Vec<ChatMessage> {
        let calls = self
            .calls
            .into_iter()
            .map(|c| cairn_core::model::ToolCall {
                id: c.id,
                name: c.name,
                arguments: c.arguments,
            })
            .collect();
        let mut messages = vec![ChatMessage {
            tool_calls: calls,
            ..ChatMessage::new(Role::Assistant, "")
        }];
        messages.extend(
            self.decisions
                .into_iter()
                .map(|(id, approved)| ChatMessage {
                    tool_call_id: Some(id),
                    ..ChatMessage::new(Role::Tool, json!({"approved": approved}).to_string())
                }),
        );
        messages
    }
}

fn event(name: &str, data: Value) -> Event {
    Event::default().event(name).data(data.to_string())
}

/// Asks the conversation's next question (or the last one again) of an app, streaming the answer
/// as `start`, `delta`…, `done` or `error` events. The answer is stored when it ends; if the client
/// goes away first (the Stop button), what was generated so far is stored.
pub(crate) async fn ask(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: axum::http::HeaderMap,
    Path(id): Path<Uuid>,
    ApiJson(body): ApiJson<AskBody>,
) -> Result<Response, ApiError> {
    let conversation = owned_conversation(&state, &user, id).await?;
    // A resumed run answers the last question again: nothing new to store.
    let again = body.regenerate || body.approvals.is_some();
    let question = if again {
        let last = state
            .catalog
            .list_messages(id)
            .await?
            .into_iter()
            .rev()
            .find(|m| m.role == "user")
            .ok_or_else(|| {
                ApiError::bad_request(
                    "nothing_to_regenerate",
                    "this conversation has no question to answer again; ask one first",
                )
            })?;
        last.content
    } else {
        let content = body.content.unwrap_or_default().trim().to_owned();
        if content.is_empty() {
            return Err(ApiError::bad_request(
                "empty_question",
                "the question is empty; type one",
            ));
        }
        if content.chars().count() > MAX_QUESTION_CHARS {
            return Err(ApiError::bad_request(
                "question_too_long",
                format!(
                    "the question is longer than {MAX_QUESTION_CHARS} characters; shorten it or ingest the text as a document"
                ),
            ));
        }
        content
    };
    let request = AnswerRequest {
        conversation_id: Some(id),
        // Regenerate asks for a new answer, not the one already given.
        cache: if body.regenerate {
            CachePolicy::Bypass
        } else {
            CachePolicy::Use
        },
        ..AnswerRequest::new(
            // The picker's names: an app's bare name, or `agent:NAME`.
            match Target::from_model_name(&body.app) {
                Target::Model(app) => Target::App(app),
                target => target,
            },
            ChatRequest {
                messages: std::iter::once(ChatMessage::new(Role::User, question.clone()))
                    .chain(
                        body.approvals
                            .map(Approvals::messages)
                            .into_iter()
                            .flatten(),
                    )
                    .collect(),
                ..ChatRequest::default()
            },
        )
    };
    let context = request_context(&headers, user.grant.principal());
    // Preparing the answer checks limits and the app and retrieves before anything is stored.
    let answer = state.pipeline.answer(&context, request).await?;
    // With redaction on, the conversation keeps placeholders, never what a guard redacted.
    let question = answer.redactions().conceal(&question);
    let user_message_id = if again {
        None
    } else {
        let stored = state
            .catalog
            .append_message(NewMessage {
                conversation_id: id,
                role: "user".into(),
                content: question.clone(),
                lineage_id: None,
            })
            .await?;
        if conversation.title.trim().is_empty() {
            let title: String = question.chars().take(TITLE_CHARS).collect();
            let title = if question.chars().count() > TITLE_CHARS {
                format!("{}…", title.trim_end())
            } else {
                title
            };
            state.catalog.rename_conversation(id, &title).await?;
        }
        Some(stored.id)
    };
    let (sender, receiver) = tokio::sync::mpsc::channel::<Event>(64);
    tokio::spawn(stream_answer(state, answer, id, user_message_id, sender));
    let events = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver
            .recv()
            .await
            .map(|event| (Ok::<_, Infallible>(event), receiver))
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// How a streamed answer ended, for the `done` event.
struct Finished {
    usage: Usage,
    cost_usd: Option<f64>,
    finish_reason: &'static str,
    /// An agent's calls awaiting the user's approval (`finish_reason` is then `tool_calls`).
    tool_calls: Vec<cairn_core::model::ToolCall>,
}

/// Streams an answer to the UI as events, then stores what was generated: all of it, or as far as
/// it got when the client went away (the pipeline records lineage either way).
async fn stream_answer(
    state: AppState,
    answer: Answer,
    conversation_id: Uuid,
    user_message_id: Option<Uuid>,
    sender: tokio::sync::mpsc::Sender<Event>,
) {
    let lineage_id = answer.lineage_id();
    let redactions = answer.redactions();
    let cited = answer.agent_citations();
    let _ = sender
        .send(event(
            "start",
            json!({"user_message_id": user_message_id, "lineage_id": lineage_id,
                   "citations": answer.citations()}),
        ))
        .await;
    let stream = match answer.stream().await {
        Ok(stream) => stream,
        Err(error) => {
            let error = ApiError::from(error);
            let _ = sender
                .send(event(
                    "error",
                    json!({"message": error.message, "code": error.code}),
                ))
                .await;
            return;
        }
    };
    // `relay` consumes the stream: the answer is done with, its lineage written, before the
    // message that refers to it is stored.
    let (text, outcome) = relay(stream, &sender).await;
    let stored = store_answer(
        &state,
        conversation_id,
        lineage_id,
        redactions.conceal(&text),
    )
    .await;
    let last = match outcome {
        Some(Ok(Finished {
            usage,
            cost_usd,
            finish_reason,
            tool_calls,
        })) => event(
            "done",
            json!({"message_id": stored, "lineage_id": lineage_id, "finish_reason": finish_reason, "cost_usd": cost_usd,
                   "usage": {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens},
                   "tool_calls": tool_calls,
                   // An agent's sources are known once it has run.
                   "citations": cited.map(|c| c.snapshot())}),
        ),
        None => return,
        Some(Err(error)) => {
            let error = ApiError::from(error);
            event(
                "error",
                json!({"message": error.message, "code": error.code, "message_id": stored}),
            )
        }
    };
    let _ = sender.send(last).await;
}

/// Sends the stream's text to the UI as `delta` events until it finishes, fails or the client
/// goes away; returns the text sent and how the stream ended (`None`: the client went away or
/// the stream ended without a finish).
async fn relay(
    mut stream: AnswerStream,
    sender: &tokio::sync::mpsc::Sender<Event>,
) -> (String, Option<Result<Finished, AnswerError>>) {
    let mut text = String::new();
    let mut tool_calls = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(ChatChunk::Delta(delta)) => {
                text.push_str(&delta);
                if sender
                    .send(event("delta", json!({"text": delta})))
                    .await
                    .is_err()
                {
                    break; // The client went away: stop generating, keep what there is.
                }
            }
            Ok(ChatChunk::ToolCall(call)) => tool_calls.push(call),
            Ok(ChatChunk::Step(step)) => {
                // An agent's progress: the UI shows each step as it happens.
                if sender.send(event("step", json!(step))).await.is_err() {
                    break;
                }
            }
            Ok(ChatChunk::Finish {
                reason,
                usage,
                cost_usd,
            }) => {
                let finish_reason = match reason {
                    cairn_core::model::FinishReason::Length => "length",
                    cairn_core::model::FinishReason::ToolCalls => "tool_calls",
                    _ => "stop",
                };
                let finished = Finished {
                    usage,
                    cost_usd,
                    finish_reason,
                    tool_calls,
                };
                return (text, Some(Ok(finished)));
            }
            Err(error) => return (text, Some(Err(error))),
        }
    }
    (text, None)
}

/// Stores the answer's text in the conversation, unless it is blank; returns the message's id.
/// A failure is logged, not sent: the UI has already shown the text.
async fn store_answer(
    state: &AppState,
    conversation_id: Uuid,
    lineage_id: Uuid,
    text: String,
) -> Option<Uuid> {
    if text.trim().is_empty() {
        return None;
    }
    let stored = state
        .catalog
        .append_message(NewMessage {
            conversation_id,
            role: "assistant".into(),
            content: text,
            lineage_id: Some(lineage_id),
        })
        .await;
    match stored {
        Ok(message) => Some(message.id),
        Err(e) => {
            tracing::warn!(error = %e, "could not store an answer");
            None
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FeedbackBody {
    rating: i16,
    #[serde(default)]
    comment: Option<String>,
}

pub(crate) async fn give_feedback(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
    ApiJson(body): ApiJson<FeedbackBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let comment = body
        .comment
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty());
    if comment
        .as_ref()
        .is_some_and(|c| c.chars().count() > MAX_COMMENT_CHARS)
    {
        return Err(ApiError::bad_request(
            "comment_too_long",
            format!("the comment is longer than {MAX_COMMENT_CHARS} characters; shorten it"),
        ));
    }
    if state.catalog.get_lineage(id).await?.is_none() {
        return Err(crate::openai_api::lineage_not_found(id));
    }
    let feedback = state
        .catalog
        .record_feedback(NewFeedback {
            lineage_id: id,
            rating: body.rating,
            comment,
            user: user.id,
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(
            json!({"id": feedback.id, "rating": feedback.rating, "comment": feedback.comment,
                    "created_at": feedback.created_at.to_rfc3339()}),
        ),
    ))
}

#[derive(Debug, Deserialize)]
pub(crate) struct TextRange {
    start: Option<i64>,
    end: Option<i64>,
}

/// A character range of a document's text, for the citation panel.
pub(crate) async fn document_text(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
    Query(range): Query<TextRange>,
) -> Result<Json<Value>, ApiError> {
    let missing = || {
        ApiError::not_found(
            "document_not_found",
            format!("document {id} does not exist; it may have been removed by a later ingest"),
        )
    };
    let document = state.catalog.get_document(id).await?.ok_or_else(missing)?;
    // A document in a collection the caller may not read does not exist for it.
    let readable = state
        .catalog
        .list_collections()
        .await?
        .into_iter()
        .find(|c| c.id == document.collection_id)
        .is_some_and(|c| user.grant.may_read(&c.name));
    if !readable {
        return Err(missing());
    }
    let chunks = state.catalog.list_chunks(id).await?;
    let text = cairn_rag::document_text(&chunks);
    let clamp = |v: Option<i64>| v.map(|v| u64::try_from(v.max(0)).unwrap_or(0));
    let (slice, start, end) = cairn_rag::text_range(&text, clamp(range.start), clamp(range.end));
    Ok(Json(json!({
        "id": document.id, "title": document.title, "source": document.source,
        "url": document.url(),
        "text": slice, "start": start, "end": end, "total_chars": text.chars().count(),
    })))
}
