//! The agent loop: ask the model (with the tools), run the tools it calls (at once when allowed,
//! each under its timeout), give it the results, and again, until it answers without calling a
//! tool or a limit stops it (steps, tokens, cost, the deadline). Every model call and tool call is
//! a step in the run's [`StepLog`]; a streamed run also shows each as it happens.
//!
//! A tool that fails, times out, is unknown or is given arguments that are not JSON gives the
//! model an error text to reason about, never a hang and never the end of the run. A model error
//! ends the run with that error (the route has already retried and fallen back).
//!
//! Calls of tools that need approval stop the run: its answer is the model's tool calls
//! (`finish_reason: tool_calls`), and the caller resumes it by sending the conversation back with a
//! `tool` message per call saying `{"approved": true}` or `{"approved": false, "reason": …}`; the
//! approved calls then run, the denied ones tell the model so, and the loop goes on.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use cairn_core::ModelError;
use cairn_core::agent::{AgentRun, AgentStep, RunOutcome, ToolError};
use cairn_core::model::{
    ChatChunk, ChatMessage, ChatModel, ChatRequest, ChatResponse, ChatStream, FinishReason, Role,
    ToolCall, ToolChoice, ToolDefinition, Usage,
};
use futures_util::StreamExt;
use futures_util::future::join_all;
use serde_json::Value;
use tokio::sync::mpsc;
use tracing::Instrument;

/// One run of an agent, as a model the pipeline completes or streams.
#[derive(Debug)]
pub(crate) struct AgentModel {
    pub(crate) run: AgentRun,
}

#[async_trait]
impl ChatModel for AgentModel {
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ModelError> {
        Loop::new(self.run.clone(), None).run(request).await
    }

    async fn stream(&self, request: &ChatRequest) -> Result<ChatStream, ModelError> {
        let (sender, mut receiver) = mpsc::channel::<Result<ChatChunk, ModelError>>(64);
        let agent_loop = Loop::new(self.run.clone(), Some(sender.clone()));
        let request = request.clone();
        let task = tokio::spawn(async move {
            let items = match agent_loop.run(&request).await {
                Ok(response) => {
                    // The text went out as it was written (`Loop::ask`); calls awaiting approval
                    // are the answer's tool calls.
                    let mut items = Vec::new();
                    items.extend(
                        response
                            .message
                            .tool_calls
                            .into_iter()
                            .map(|call| Ok(ChatChunk::ToolCall(call))),
                    );
                    items.push(Ok(ChatChunk::Finish {
                        reason: response.finish_reason,
                        usage: response.usage,
                        cost_usd: response.cost_usd,
                    }));
                    items
                }
                Err(error) => vec![Err(error)],
            };
            for item in items {
                if sender.send(item).await.is_err() {
                    break;
                }
            }
        });
        // Dropping the stream (a client that went away) stops the run where it is.
        let guard = AbortOnDrop(task);
        Ok(Box::pin(futures_util::stream::poll_fn(move |cx| {
            let _ = &guard;
            receiver.poll_recv(cx)
        })))
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The state of one run.
struct Loop {
    run: AgentRun,
    events: Option<mpsc::Sender<Result<ChatChunk, ModelError>>>,
    usage: Usage,
    cost: Option<f64>,
    served_by: String,
    started: Instant,
}

impl Loop {
    fn new(run: AgentRun, events: Option<mpsc::Sender<Result<ChatChunk, ModelError>>>) -> Loop {
        Loop {
            run,
            events,
            usage: Usage::default(),
            cost: None,
            served_by: String::new(),
            started: Instant::now(),
        }
    }

    async fn run(mut self, request: &ChatRequest) -> Result<ChatResponse, ModelError> {
        let span =
            tracing::info_span!("cairn.agent", agent = %self.run.agent, route = %self.run.route);
        let result = self.steps(request).instrument(span).await;
        let outcome = match &result {
            Ok(_) => self
                .run
                .steps
                .outcome()
                .unwrap_or(RunOutcome::Answered)
                .as_str(),
            Err(error) => error.class(),
        };
        let steps = self
            .run
            .steps
            .steps()
            .iter()
            .filter(|s| matches!(s, AgentStep::Model { .. }))
            .count();
        metrics::counter!("cairn_agent_runs_total", "agent" => self.run.agent.clone(), "outcome" => outcome).increment(1);
        metrics::histogram!("cairn_agent_steps", "agent" => self.run.agent.clone())
            .record(steps as f64);
        result
    }

    async fn steps(&mut self, request: &ChatRequest) -> Result<ChatResponse, ModelError> {
        let deadline = self.started + self.run.limits.deadline;
        let mut messages = self.run.system.clone();
        messages.extend(request.messages.iter().cloned());
        let tools: Vec<ToolDefinition> = self
            .run
            .tools
            .iter()
            .map(|t| t.spec().definition())
            .collect();
        if let Some(remaining) = left(deadline) {
            self.resume(&mut messages, remaining).await?;
        }
        for step in 1..=self.run.limits.max_steps {
            let Some(remaining) = left(deadline) else {
                return Ok(self.stop(RunOutcome::Deadline).await);
            };
            let call = ChatRequest {
                model: self.run.route.clone(),
                messages: messages.clone(),
                temperature: request.temperature,
                top_p: request.top_p,
                max_tokens: request.max_tokens,
                stop: request.stop.clone(),
                tool_choice: (!tools.is_empty()).then_some(ToolChoice::Auto),
                tools: tools.clone(),
                response_format: None,
                seed: request.seed,
            };
            let called = Instant::now();
            let answered = tokio::time::timeout(remaining, self.ask(&call))
                .instrument(tracing::info_span!("cairn.agent.model", step))
                .await;
            let response = match answered {
                Err(_) => return Ok(self.stop(RunOutcome::Deadline).await),
                Ok(Err(error)) => {
                    self.record_model(step, called, None, error.class());
                    return Err(error);
                }
                Ok(Ok(response)) => response,
            };
            self.record_model(step, called, Some(&response), "ok");
            if response.message.tool_calls.is_empty() {
                self.run.steps.finish(RunOutcome::Answered);
                return Ok(ChatResponse {
                    message: ChatMessage::new(Role::Assistant, response.message.content),
                    finish_reason: response.finish_reason,
                    usage: self.usage,
                    model: self.served_by.clone(),
                    cost_usd: self.cost,
                });
            }
            if self.over_budget() {
                return Ok(self.stop(RunOutcome::Budget).await);
            }
            let calls = response.message.tool_calls.clone();
            if calls.iter().any(|c| self.run.approval.contains(&c.name)) {
                return Ok(self.await_approval(step, response).await);
            }
            messages.push(response.message);
            let Some(remaining) = left(deadline) else {
                return Ok(self.stop(RunOutcome::Deadline).await);
            };
            let results = self.call_tools(step, &calls, remaining).await;
            for (call, content) in calls.iter().zip(results) {
                messages.push(ChatMessage {
                    role: Role::Tool,
                    content,
                    tool_calls: Vec::new(),
                    tool_call_id: Some(call.id.clone()),
                });
            }
        }
        Ok(self.stop(RunOutcome::StepLimit).await)
    }

    /// Runs one step's tool calls; each result is the text the model reads, an error included.
    async fn call_tools(&self, step: u32, calls: &[ToolCall], remaining: Duration) -> Vec<String> {
        let timeout = self.run.limits.tool_timeout.min(remaining);
        if self.run.limits.parallel_tools {
            join_all(calls.iter().map(|call| self.call_tool(step, call, timeout))).await
        } else {
            let mut results = Vec::with_capacity(calls.len());
            for call in calls {
                results.push(self.call_tool(step, call, timeout).await);
            }
            results
        }
    }

    async fn call_tool(&self, step: u32, call: &ToolCall, timeout: Duration) -> String {
        let tool = self.run.tools.iter().find(|t| t.spec().name == call.name);
        let source = tool.map_or_else(|| "unknown".to_owned(), |t| t.spec().source.clone());
        let arguments: Result<Value, ToolError> = if call.arguments.trim().is_empty() {
            Ok(Value::Object(serde_json::Map::new()))
        } else {
            serde_json::from_str(&call.arguments).map_err(|e| {
                ToolError::InvalidArguments(format!("the arguments are not JSON ({e})"))
            })
        };
        let mut record = self.tool_step(call, step, "running", None);
        self.show(record.clone()).await;
        let started = Instant::now();
        let span = tracing::info_span!("cairn.agent.tool", tool = %call.name, source = %source);
        let result = async {
            let tool = tool.ok_or_else(|| self.unknown_tool(&call.name))?;
            let arguments = arguments?;
            match tokio::time::timeout(timeout, tool.call(arguments)).await {
                Ok(result) => result,
                Err(_) => Err(ToolError::TimedOut(timeout)),
            }
        }
        .instrument(span)
        .await;
        let (text, status, error) = match result {
            Ok(text) => (text, "ok".to_owned(), None),
            Err(error) => (
                format!("error: {error}"),
                error.status().to_owned(),
                Some(error.to_string()),
            ),
        };
        count_call(source, &call.name, &status);
        if let AgentStep::Tool {
            status: s,
            result_chars,
            latency_ms,
            error: e,
            ..
        } = &mut record
        {
            *s = status;
            *result_chars = text.chars().count();
            *latency_ms = millis(started.elapsed());
            *e = error;
        }
        self.run.steps.push(record.clone());
        self.show(record).await;
        text
    }

    /// Stops the run at calls that need approval: they are recorded and become the answer.
    async fn await_approval(&mut self, step: u32, response: ChatResponse) -> ChatResponse {
        for call in &response.message.tool_calls {
            if !self.run.approval.contains(&call.name) {
                continue;
            }
            let record = self.tool_step(call, step, "awaiting_approval", None);
            self.run.steps.push(record.clone());
            self.show(record).await;
        }
        self.run.steps.finish(RunOutcome::AwaitingApproval);
        ChatResponse {
            message: ChatMessage {
                role: Role::Assistant,
                content: response.message.content,
                tool_calls: response.message.tool_calls,
                tool_call_id: None,
            },
            finish_reason: FinishReason::ToolCalls,
            usage: self.usage,
            model: self.served_by.clone(),
            cost_usd: self.cost,
        }
    }

    /// Carries out the caller's decisions on calls a previous run stopped at: when the
    /// conversation ends with the model's tool calls, some needing approval, and `tool` messages
    /// answering them, the approved calls (and the calls that need none) run now and the denied
    /// ones become a denial the model reads. Step 0 in the log: they were asked for before.
    async fn resume(
        &self,
        messages: &mut Vec<ChatMessage>,
        remaining: Duration,
    ) -> Result<(), ModelError> {
        let Some(at) = messages
            .iter()
            .rposition(|m| m.role == Role::Assistant && !m.tool_calls.is_empty())
        else {
            return Ok(());
        };
        let calls = messages[at].tool_calls.clone();
        let ours = messages[at + 1..].iter().all(|m| m.role == Role::Tool)
            && calls.iter().any(|c| self.run.approval.contains(&c.name));
        if !ours {
            return Ok(());
        }
        let answers: Vec<(String, String)> = messages[at + 1..]
            .iter()
            .filter_map(|m| Some((m.tool_call_id.clone()?, m.content.clone())))
            .collect();
        messages.truncate(at + 1);
        let timeout = self.run.limits.tool_timeout.min(remaining);
        for call in &calls {
            let content = if self.run.approval.contains(&call.name) {
                let answer = answers.iter().find(|(id, _)| *id == call.id);
                match answer.and_then(|(_, text)| decision(text)) {
                    Some(Ok(())) => self.call_tool(0, call, timeout).await,
                    Some(Err(reason)) => self.deny(call, reason).await,
                    None => {
                        return Err(ModelError::InvalidRequest(format!(
                            "tool call `{}` ({}) awaits approval: answer it with a tool message (tool_call_id `{}`) whose content is {{\"approved\": true}} or {{\"approved\": false, \"reason\": \"…\"}}",
                            call.id, call.name, call.id
                        )));
                    }
                }
            } else {
                self.call_tool(0, call, timeout).await
            };
            messages.push(ChatMessage {
                role: Role::Tool,
                content,
                tool_calls: Vec::new(),
                tool_call_id: Some(call.id.clone()),
            });
        }
        Ok(())
    }

    /// Records a denied call; returns what the model reads instead of a result.
    async fn deny(&self, call: &ToolCall, reason: Option<String>) -> String {
        let record = self.tool_step(call, 0, "denied", reason.clone());
        self.run.steps.push(record.clone());
        self.show(record).await;
        count_call(self.source_of(&call.name), &call.name, "denied");
        match reason {
            Some(reason) => format!("The user denied this call: {reason}"),
            None => "The user denied this call.".to_owned(),
        }
    }

    /// A tool call's step, before its outcome (running, awaiting approval) or without one
    /// (denied); the arguments as JSON where they parse.
    fn tool_step(
        &self,
        call: &ToolCall,
        step: u32,
        status: &str,
        error: Option<String>,
    ) -> AgentStep {
        AgentStep::Tool {
            step,
            call_id: call.id.clone(),
            source: self.source_of(&call.name),
            tool: call.name.clone(),
            arguments: serde_json::from_str(&call.arguments)
                .unwrap_or_else(|_| Value::String(call.arguments.clone())),
            status: status.into(),
            result_chars: 0,
            latency_ms: 0,
            error,
        }
    }

    fn source_of(&self, name: &str) -> String {
        self.run
            .tools
            .iter()
            .find(|t| t.spec().name == name)
            .map_or_else(|| "unknown".to_owned(), |t| t.spec().source.clone())
    }

    fn unknown_tool(&self, name: &str) -> ToolError {
        let names: Vec<&str> = self
            .run
            .tools
            .iter()
            .map(|t| t.spec().name.as_str())
            .collect();
        ToolError::Failed(format!(
            "there is no tool named `{name}`; the tools are: {}",
            names.join(", ")
        ))
    }

    fn record_model(
        &mut self,
        step: u32,
        called: Instant,
        response: Option<&ChatResponse>,
        status: &str,
    ) {
        if let Some(response) = response {
            add(&mut self.usage, &response.usage);
            if let Some(cost) = response.cost_usd {
                *self.cost.get_or_insert(0.0) += cost;
            }
            self.served_by.clone_from(&response.model);
        }
        let record = AgentStep::Model {
            step,
            route: self.run.route.clone(),
            model: response.map(|r| r.model.clone()).unwrap_or_default(),
            usage: response.map(|r| r.usage).unwrap_or_default(),
            cost_usd: response.and_then(|r| r.cost_usd),
            latency_ms: millis(called.elapsed()),
            tool_calls: response
                .map(|r| {
                    r.message
                        .tool_calls
                        .iter()
                        .map(|c| c.name.clone())
                        .collect()
                })
                .unwrap_or_default(),
            status: status.to_owned(),
        };
        self.run.steps.push(record.clone());
        if let Some(events) = &self.events {
            // Best effort: a full or closed channel only costs the client a progress event.
            let _ = events.try_send(Ok(ChatChunk::Step(record)));
        }
    }

    fn over_budget(&self) -> bool {
        let limits = &self.run.limits;
        let tokens = u64::from(self.usage.input_tokens) + u64::from(self.usage.output_tokens);
        (limits.max_tokens > 0 && tokens >= limits.max_tokens)
            || matches!((limits.max_cost_usd, self.cost), (Some(max), Some(cost)) if cost >= max)
    }

    /// Ends the run at a limit: the answer says which, and lineage records it.
    async fn stop(&mut self, outcome: RunOutcome) -> ChatResponse {
        self.run.steps.finish(outcome);
        let limits = &self.run.limits;
        let why = match outcome {
            RunOutcome::StepLimit => {
                format!("after {} model calls (its max_steps)", limits.max_steps)
            }
            RunOutcome::Budget => {
                "at its token or cost budget (max_tokens, max_cost_usd)".to_owned()
            }
            RunOutcome::Deadline => format!(
                "at its deadline of {} s (deadline_secs)",
                limits.deadline.as_secs()
            ),
            RunOutcome::Answered | RunOutcome::AwaitingApproval => String::new(),
        };
        tracing::info!(agent = %self.run.agent, outcome = outcome.as_str(), "agent run stopped {why}");
        let text = format!(
            "Agent `{}` stopped {why}, before it had a final answer.",
            self.run.agent
        );
        if let Some(events) = &self.events {
            let _ = events.send(Ok(ChatChunk::Delta(text.clone()))).await;
        }
        ChatResponse {
            message: ChatMessage::new(Role::Assistant, text),
            finish_reason: FinishReason::Length,
            usage: self.usage,
            model: self.served_by.clone(),
            cost_usd: self.cost,
        }
    }

    /// One model call. Streamed runs stream it, sending its text on as it comes (the final
    /// answer then appears word by word); the response is assembled either way.
    async fn ask(&self, call: &ChatRequest) -> Result<ChatResponse, ModelError> {
        let Some(events) = &self.events else {
            return self.run.model.complete(call).await;
        };
        let mut stream = self.run.model.stream(call).await?;
        let mut content = String::new();
        let mut tool_calls = Vec::new();
        while let Some(chunk) = stream.next().await {
            match chunk? {
                ChatChunk::Delta(text) => {
                    content.push_str(&text);
                    let _ = events.send(Ok(ChatChunk::Delta(text))).await;
                }
                ChatChunk::ToolCall(tool_call) => tool_calls.push(tool_call),
                ChatChunk::Step(_) => {}
                ChatChunk::Finish {
                    reason,
                    usage,
                    cost_usd,
                } => {
                    return Ok(ChatResponse {
                        message: ChatMessage {
                            role: Role::Assistant,
                            content,
                            tool_calls,
                            tool_call_id: None,
                        },
                        finish_reason: reason,
                        usage,
                        model: self.run.route.clone(),
                        cost_usd,
                    });
                }
            }
        }
        Err(ModelError::Transient(
            "the model's stream ended before it finished".into(),
        ))
    }

    async fn show(&self, step: AgentStep) {
        if let Some(events) = &self.events {
            let _ = events.send(Ok(ChatChunk::Step(step))).await;
        }
    }
}

fn count_call(source: String, tool: &str, status: &str) {
    metrics::counter!("cairn_agent_tool_calls_total", "source" => source, "tool" => tool.to_owned(), "status" => status.to_owned())
        .increment(1);
}

/// The caller's decision on a call awaiting approval: `{"approved": true}`, `{"approved": false,
/// "reason": "…"}`, or the words `approved` / `denied`; `None` when the text is neither.
fn decision(text: &str) -> Option<Result<(), Option<String>>> {
    if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(text) {
        let reason = map.get("reason").and_then(Value::as_str).map(str::to_owned);
        return match map.get("approved") {
            Some(Value::Bool(true)) => Some(Ok(())),
            Some(Value::Bool(false)) => Some(Err(reason)),
            _ => None,
        };
    }
    match text.trim().to_ascii_lowercase().as_str() {
        "approved" | "approve" | "yes" => Some(Ok(())),
        "denied" | "deny" | "no" => Some(Err(None)),
        _ => None,
    }
}

fn left(deadline: Instant) -> Option<Duration> {
    let remaining = deadline.saturating_duration_since(Instant::now());
    (!remaining.is_zero()).then_some(remaining)
}

fn add(total: &mut Usage, more: &Usage) {
    total.input_tokens += more.input_tokens;
    total.cached_input_tokens += more.cached_input_tokens;
    total.output_tokens += more.output_tokens;
    total.reasoning_tokens += more.reasoning_tokens;
}

fn millis(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
}
