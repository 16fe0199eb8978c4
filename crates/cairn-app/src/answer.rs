//! The second half of the pipeline: an [`Answer`] prepared by [`crate::Pipeline::answer`] is
//! completed or streamed through its route (answer cache, the route's own retries and fallback),
//! output guards, the charge against rate limits and budgets, and its lineage record.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use cairn_core::guard::{GuardScope, GuardStage};
use cairn_core::model::{
    ChatChunk, ChatMessage, ChatModel, ChatRequest, ChatResponse, ChatStream, FinishReason, Role,
    ToolCall, Usage,
};
use cairn_gateway::{Admission, ResponseCache};
use cairn_rag::Citation;
use futures_util::{Stream, StreamExt};
use tracing::Instrument;
use uuid::Uuid;

use crate::error::AnswerError;
use crate::guards::{Checked, GuardRun, Guards, merge_streamed};
use crate::lineage::{Lineage, Outcome};
use crate::schema;

/// A prepared answer: admitted, checked, retrieved and rendered; not yet sent to the model.
#[derive(Debug)]
pub struct Answer {
    model: Arc<dyn ChatModel>,
    request: ChatRequest,
    lineage: Lineage,
    admission: Admission,
    cache: Option<Arc<ResponseCache>>,
    deadline: Option<Instant>,
    /// The request's guards and what they gave out (placeholders to restore).
    guards: Guards,
    scope: GuardScope,
    // Copies of what lineage records, for the front doors to show.
    id: Uuid,
    route: String,
    app: Option<String>,
    prompt: Option<(String, Option<i64>)>,
    citations: Vec<Citation>,
    /// Online evaluation, for an app's answer when it is configured.
    online: Option<crate::online::OnlineOffer>,
    /// An agent run's steps, as they happen.
    steps: Option<cairn_core::agent::StepLog>,
    /// The passages an agent run's `search` gave it, numbered as the answer cites them.
    cited: Option<crate::agent_tools::Cited>,
}

/// A completed answer.
#[derive(Debug, Clone)]
pub struct Completed {
    pub response: ChatResponse,
    /// Whether the answer cache gave it (then `cost_usd` is 0: it cost nothing now).
    pub cached: bool,
    /// The time spent in the route (model calls, retries, fallbacks); zero for a cached answer.
    pub upstream: Duration,
    /// Model calls it took: more than one when an answer had to be asked again to meet its
    /// `response_format` schema.
    pub attempts: u32,
}

impl Answer {
    pub(crate) fn new(
        model: Arc<dyn ChatModel>,
        request: ChatRequest,
        mut lineage: Lineage,
        admission: Admission,
        cache: Option<Arc<ResponseCache>>,
        deadline: Option<Instant>,
        checks: GuardRun,
    ) -> Answer {
        let draft = lineage.draft_mut().map(|d| {
            (
                d.id,
                d.route.clone(),
                d.app.clone(),
                d.prompt.clone(),
                d.steps.clone(),
            )
        });
        let (id, route, app, prompt, steps) = draft.unwrap_or_default();
        Answer {
            model,
            request,
            lineage,
            admission,
            cache,
            deadline,
            guards: checks.guards,
            scope: checks.scope,
            id,
            route,
            app,
            prompt,
            citations: Vec::new(),
            online: None,
            steps,
            cited: None,
        }
    }

    pub(crate) fn with_cited(mut self, cited: Option<crate::agent_tools::Cited>) -> Answer {
        self.cited = cited;
        self
    }

    /// For an agent's answer, the passages its run found so far (complete after the answer),
    /// numbered as the answer cites them: its citations, known only once it has run.
    pub fn agent_citations(&self) -> Option<crate::agent_tools::Cited> {
        self.cited.clone()
    }

    /// An agent run's steps (filled in as the run goes), for an agent's answer.
    pub fn agent_steps(&self) -> Option<cairn_core::agent::StepLog> {
        self.steps.clone()
    }

    /// Offers the answer to online evaluation once it is complete (fresh answers only).
    pub(crate) fn with_online(mut self, offer: Option<crate::online::OnlineOffer>) -> Answer {
        self.online = offer;
        self
    }

    /// The checked answer (placeholders not yet restored) to online evaluation, if it is on.
    fn offer_online(&self, text: &str) {
        if let Some(offer) = &self.online {
            offer.offer(self.id, text, &self.citations);
        }
    }

    /// The passages the prompt cites, which the front door shows before the answer.
    pub(crate) fn with_citations(mut self, citations: Vec<Citation>) -> Answer {
        self.citations = citations;
        self
    }

    /// The id of the answer's lineage record (`GET /v1/lineage/{id}`).
    pub fn lineage_id(&self) -> Uuid {
        self.id
    }

    /// The route or model that answers.
    pub fn route(&self) -> &str {
        &self.route
    }

    pub fn app(&self) -> Option<&str> {
        self.app.as_deref()
    }

    /// The registered prompt and version that produced the model's messages.
    pub fn prompt(&self) -> Option<(&str, Option<i64>)> {
        self.prompt
            .as_ref()
            .map(|(name, version)| (name.as_str(), *version))
    }

    /// The passages the answer may cite, numbered as the prompt numbers them.
    pub fn citations(&self) -> &[Citation] {
        &self.citations
    }

    /// The values the guards redacted in this request and their placeholders, to conceal them
    /// (`GuardScope::conceal`) in what a front door stores of the question or of an answer it
    /// showed restored.
    pub fn redactions(&self) -> GuardScope {
        self.scope.clone()
    }

    /// Whether the answer cache would be consulted.
    pub fn uses_cache(&self) -> bool {
        self.cache.is_some()
    }

    /// Runs the model without streaming (or takes the cached answer), checks the output, charges
    /// the call and records lineage.
    pub async fn complete(mut self) -> Result<Completed, AnswerError> {
        if let Some(response) = self.cached() {
            let response = self.check_output(response).await?;
            self.lineage
                .write(Outcome::ok(response.usage, response.cost_usd, "cached"));
            return Ok(Completed {
                response: self.restored(response),
                cached: true,
                upstream: Duration::ZERO,
                attempts: 1,
            });
        }
        let upstream_started = Instant::now();
        let request = self.request.clone();
        let mut response = self.call(&request).await?;
        let mut attempts = 1;
        // An answer that must be JSON is checked against its schema and asked again, bounded.
        // (A call for tools has no text to check.)
        while let Some(problem) = response
            .message
            .tool_calls
            .is_empty()
            .then(|| schema::problem(request.response_format.as_ref(), &response.message.content))
            .flatten()
        {
            if attempts >= schema::MAX_ATTEMPTS {
                let error = AnswerError::SchemaNotMet { attempts, problem };
                self.lineage
                    .write(Outcome::failed("schema_not_met", error.to_string()));
                return Err(error);
            }
            let repair = schema::repair(&request, &response, &problem);
            let repaired = self.call(&repair).await?;
            response = add_up(response, repaired);
            attempts += 1;
        }
        if request.response_format.is_some() && response.message.tool_calls.is_empty() {
            response.message.content =
                cairn_core::model::unfenced_json(&response.message.content).to_owned();
        }
        let upstream = upstream_started.elapsed();
        self.admission_charge(&response.usage, response.cost_usd);
        let response = self.check_output(response).await?;
        if response.message.tool_calls.is_empty() {
            self.offer_online(&response.message.content);
        }
        // Cached as checked: with redaction on, the cache never holds what a guard removed.
        if let Some(cache) = &self.cache {
            cache.put(&self.route, &self.request, &response);
        }
        self.lineage
            .write(Outcome::ok(response.usage, response.cost_usd, "ok"));
        Ok(Completed {
            response: self.restored(response),
            cached: false,
            upstream,
            attempts,
        })
    }

    /// One call of the route, within the deadline; a failure is recorded in lineage.
    async fn call(&mut self, request: &ChatRequest) -> Result<ChatResponse, AnswerError> {
        let model = self.model.clone();
        let result = self
            .within_deadline(async move { model.complete(request).await })
            .await?;
        result.map_err(|error| {
            self.lineage
                .write(Outcome::failed(error.class(), error.to_string()));
            error.into()
        })
    }

    /// Streams the answer (a cached one as one delta). Errors before the first chunk are returned
    /// here; later ones end the stream. Lineage is written when the stream finishes, fails, or is
    /// dropped unfinished (`cancelled`).
    pub async fn stream(mut self) -> Result<AnswerStream, AnswerError> {
        if let Some(response) = self.cached() {
            return Ok(AnswerStream::new(self, replay(response), true));
        }
        let model = self.model.clone();
        let request = self.request.clone();
        let result = self
            .within_deadline(async move { model.stream(&request).await })
            .await?;
        match result {
            Ok(upstream) => Ok(AnswerStream::new(self, upstream, false)),
            Err(error) => {
                self.lineage
                    .write(Outcome::failed(error.class(), error.to_string()));
                Err(error.into())
            }
        }
    }

    /// The cached answer to this request, if the cache is on and has one; it costs nothing now.
    fn cached(&self) -> Option<ChatResponse> {
        let mut response = self.cache.as_ref()?.get(&self.route, &self.request)?;
        response.cost_usd = response.cost_usd.map(|_| 0.0);
        Some(response)
    }

    /// The route's call, within the request's deadline when it has one; a missed deadline is
    /// recorded in lineage.
    async fn within_deadline<T>(
        &mut self,
        call: impl std::future::Future<Output = T>,
    ) -> Result<T, AnswerError> {
        let call = call.instrument(tracing::info_span!("cairn.route", route = %self.route));
        let Some(deadline) = self.deadline else {
            return Ok(call.await);
        };
        match tokio::time::timeout_at(deadline.into(), call).await {
            Ok(result) => Ok(result),
            Err(_) => {
                self.lineage.write(Outcome::failed(
                    "timeout",
                    AnswerError::DeadlineExceeded.to_string(),
                ));
                Err(AnswerError::DeadlineExceeded)
            }
        }
    }

    fn admission_charge(&mut self, usage: &Usage, cost_usd: Option<f64>) {
        let admission = std::mem::replace(&mut self.admission, Admission::unlimited());
        admission.charge(
            u64::from(usage.input_tokens) + u64::from(usage.output_tokens),
            cost_usd.unwrap_or(0.0),
        );
    }

    /// What the caller sees: the caller's own values put back where a guard that restores
    /// redacted them. Lineage and the cache keep the redacted text.
    fn restored(&self, mut response: ChatResponse) -> ChatResponse {
        if self.scope.restores() {
            response.message.content = self.scope.restore(&response.message.content);
        }
        response
    }

    /// Output guards over a whole answer's text.
    async fn check_output(
        &mut self,
        mut response: ChatResponse,
    ) -> Result<ChatResponse, AnswerError> {
        let text = std::mem::take(&mut response.message.content);
        let mut verdicts = Vec::new();
        let checked = self
            .guards
            .require(GuardStage::Output, text, &mut self.scope, &mut verdicts)
            .instrument(tracing::info_span!("cairn.guard.output"))
            .await;
        if let Some(draft) = self.lineage.draft_mut() {
            draft.verdicts.extend(verdicts);
        }
        match checked {
            Ok(text) => {
                response.message.content = text;
                Ok(response)
            }
            Err(error) => {
                self.lineage
                    .write(Outcome::failed("blocked", error.to_string()));
                Err(error)
            }
        }
    }
}

/// The answer that met its schema, with the tokens and cost of every attempt.
fn add_up(earlier: ChatResponse, mut later: ChatResponse) -> ChatResponse {
    let (a, b) = (earlier.usage, later.usage);
    later.usage = Usage {
        input_tokens: a.input_tokens + b.input_tokens,
        cached_input_tokens: a.cached_input_tokens + b.cached_input_tokens,
        output_tokens: a.output_tokens + b.output_tokens,
        reasoning_tokens: a.reasoning_tokens + b.reasoning_tokens,
    };
    later.cost_usd = match (earlier.cost_usd, later.cost_usd) {
        (Some(x), Some(y)) => Some(x + y),
        (x, y) => x.or(y),
    };
    later
}

/// A cached answer as a stream: its text as one delta, its tool calls, and the finish.
fn replay(response: ChatResponse) -> ChatStream {
    let mut chunks = Vec::new();
    if !response.message.content.is_empty() {
        chunks.push(Ok(ChatChunk::Delta(response.message.content)));
    }
    for call in response.message.tool_calls {
        chunks.push(Ok(ChatChunk::ToolCall(call)));
    }
    chunks.push(Ok(ChatChunk::Finish {
        reason: response.finish_reason,
        usage: response.usage,
        cost_usd: response.cost_usd,
    }));
    Box::pin(futures_util::stream::iter(chunks))
}

/// A streamed answer. It ends after `ChatChunk::Finish` or after the first error. With output
/// guards, text is sent only as far as every guard has settled it (see
/// [`cairn_core::Guardrail::settled`]), checked part by part, so no character of a span a guard
/// redacts or blocks is ever sent; the rest is checked at the finish. What was streamed is stored in
/// the answer cache (as checked), charged, and recorded in lineage.
pub struct AnswerStream {
    inner: Pin<Box<dyn Stream<Item = Result<ChatChunk, AnswerError>> + Send>>,
}

impl std::fmt::Debug for AnswerStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AnswerStream")
    }
}

/// What a stream holds between chunks.
struct Streaming {
    answer: Answer,
    upstream: ChatStream,
    cached: bool,
    /// Whether text is held back for output guards or for restoring placeholders.
    holds: bool,
    /// Whether the streamed text is kept: only when the cache reads it.
    keep_text: bool,
    /// Text from the model not yet checked and sent.
    unsent: String,
    /// The text sent, as checked (before restoring), for the cache.
    text: String,
    tool_calls: Vec<ToolCall>,
    /// The output guards' verdicts, one record per guard over all parts.
    verdicts: Vec<crate::guards::VerdictRecord>,
    /// Chunks ready to go out before the next upstream chunk is read.
    queue: VecDeque<Result<ChatChunk, AnswerError>>,
    done: bool,
}

impl AnswerStream {
    fn new(answer: Answer, upstream: ChatStream, cached: bool) -> AnswerStream {
        let holds = answer.guards.runs_at(GuardStage::Output) || answer.scope.restores();
        let state = Streaming {
            keep_text: (answer.cache.is_some() || answer.online.is_some()) && !cached,
            answer,
            upstream,
            cached,
            holds,
            unsent: String::new(),
            text: String::new(),
            tool_calls: Vec::new(),
            verdicts: Vec::new(),
            queue: VecDeque::new(),
            done: false,
        };
        let inner = futures_util::stream::unfold(state, |mut state| async move {
            let item = state.next_chunk().await?;
            Some((item, state))
        });
        AnswerStream {
            inner: Box::pin(inner),
        }
    }
}

impl Streaming {
    /// The next chunk for the caller; `None` when the stream is over.
    async fn next_chunk(&mut self) -> Option<Result<ChatChunk, AnswerError>> {
        loop {
            if let Some(item) = self.queue.pop_front() {
                return Some(item);
            }
            if self.done {
                return None;
            }
            match self.upstream.next().await {
                Some(Ok(ChatChunk::Delta(text))) if !self.holds => {
                    if self.keep_text {
                        self.text.push_str(&text);
                    }
                    return Some(Ok(ChatChunk::Delta(text)));
                }
                Some(Ok(ChatChunk::Delta(text))) => {
                    self.unsent.push_str(&text);
                    match self.release(false).await {
                        Ok(Some(part)) => return Some(Ok(ChatChunk::Delta(part))),
                        Ok(None) => {}
                        Err(error) => return Some(Err(self.fail(error))),
                    }
                }
                Some(Ok(ChatChunk::ToolCall(call))) => {
                    self.tool_calls.push(call.clone());
                    return Some(Ok(ChatChunk::ToolCall(call)));
                }
                Some(Ok(ChatChunk::Step(step))) => return Some(Ok(ChatChunk::Step(step))),
                Some(Ok(ChatChunk::Finish {
                    reason,
                    usage,
                    cost_usd,
                })) => {
                    self.done = true;
                    match self.release(true).await {
                        Ok(Some(part)) => self.queue.push_back(Ok(ChatChunk::Delta(part))),
                        Ok(None) => {}
                        Err(error) => return Some(Err(self.fail(error))),
                    }
                    let finish = self.finish(reason, usage, cost_usd);
                    self.queue.push_back(Ok(finish));
                }
                Some(Err(error)) => {
                    self.done = true;
                    self.answer
                        .lineage
                        .write(Outcome::failed(error.class(), error.to_string()));
                    return Some(Err(error.into()));
                }
                // Ended without a finish: lineage says `cancelled` when the answer drops.
                None => return None,
            }
        }
    }

    /// Checks and releases the settled part of the unsent text (all of it at the `end`), restored
    /// for the caller; `None` when nothing is settled yet.
    async fn release(&mut self, end: bool) -> Result<Option<String>, AnswerError> {
        let mut cut = if end {
            self.unsent.len()
        } else {
            let guards = self
                .answer
                .guards
                .settled(&self.unsent, self.answer.scope.preceding());
            let placeholders = if self.answer.scope.restores() {
                cairn_core::guard::hold_placeholder(&self.unsent)
            } else {
                self.unsent.len()
            };
            guards.min(placeholders)
        };
        while !self.unsent.is_char_boundary(cut) {
            cut -= 1;
        }
        if cut == 0 {
            return Ok(None);
        }
        let raw: String = self.unsent.drain(..cut).collect();
        let mut verdicts = Vec::new();
        let checked = self
            .answer
            .guards
            .check(
                GuardStage::Output,
                raw.clone(),
                &mut self.answer.scope,
                &mut verdicts,
            )
            .instrument(tracing::info_span!("cairn.guard.output"))
            .await;
        merge_streamed(&mut self.verdicts, verdicts);
        self.answer.scope.sent(&raw);
        match checked {
            Checked::Pass(text) => {
                if self.keep_text {
                    self.text.push_str(&text);
                }
                Ok(Some(if self.answer.scope.restores() {
                    self.answer.scope.restore(&text)
                } else {
                    text
                }))
            }
            Checked::Blocked { guard, reason } => Err(AnswerError::Blocked {
                guard,
                stage: GuardStage::Output,
                reason,
            }),
        }
    }

    /// Ends the stream with `error`, recorded in lineage with the verdicts so far.
    fn fail(&mut self, error: AnswerError) -> AnswerError {
        self.done = true;
        self.queue.clear();
        self.record_verdicts();
        let class = if matches!(error, AnswerError::Blocked { .. }) {
            "blocked"
        } else {
            "error"
        };
        self.answer
            .lineage
            .write(Outcome::failed(class, error.to_string()));
        error
    }

    fn record_verdicts(&mut self) {
        if let Some(draft) = self.answer.lineage.draft_mut() {
            draft.verdicts.append(&mut self.verdicts);
        }
    }

    fn finish(&mut self, reason: FinishReason, usage: Usage, cost_usd: Option<f64>) -> ChatChunk {
        if !self.cached && self.tool_calls.is_empty() {
            self.answer.offer_online(&self.text);
        }
        if !self.cached {
            if let Some(cache) = &self.answer.cache {
                let response = ChatResponse {
                    message: ChatMessage {
                        tool_calls: std::mem::take(&mut self.tool_calls),
                        ..ChatMessage::new(Role::Assistant, std::mem::take(&mut self.text))
                    },
                    finish_reason: reason,
                    usage,
                    model: self.answer.route.clone(),
                    cost_usd,
                };
                cache.put(&self.answer.route, &self.answer.request, &response);
            }
            self.answer.admission_charge(&usage, cost_usd);
        }
        self.record_verdicts();
        self.answer.lineage.write(Outcome::ok(
            usage,
            cost_usd,
            if self.cached { "cached" } else { "ok" },
        ));
        ChatChunk::Finish {
            reason,
            usage,
            cost_usd,
        }
    }
}

impl Stream for AnswerStream {
    type Item = Result<ChatChunk, AnswerError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}
