//! The agent loop against a scripted model (deterministic trajectories: parallel calls, a tool
//! error, an unknown tool, arguments that are not JSON, the step limit, the budget, the deadline,
//! a dropped stream, calls that wait for approval), and external tools from a real MCP server (the reference
//! `@modelcontextprotocol/server-everything` over stdio, installed by
//! `scripts/npm-tools.sh mcp-servers`), including one killed in the middle of a call.

mod approval;
mod mcp;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use cairn_agent::Runner;
use cairn_core::agent::{
    AgentLimits, AgentRun, AgentStep, AgentTool, RunOutcome, StepLog, ToolError, ToolSpec,
};
use cairn_core::model::{
    ChatChunk, ChatMessage, ChatModel, ChatRequest, ChatResponse, ChatStream, FinishReason, Role,
    ToolCall, Usage,
};
use cairn_core::{AgentRunner, ModelError};
use futures_util::StreamExt;
use serde_json::{Value, json};

type Script = dyn Fn(&ChatRequest, usize) -> Result<ChatResponse, ModelError> + Send + Sync;

/// A model that answers each call from a script, after an optional delay, and keeps what it was
/// asked.
pub(crate) struct Scripted {
    script: Box<Script>,
    delay: Duration,
    seen: Mutex<Vec<ChatRequest>>,
}

impl std::fmt::Debug for Scripted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Scripted")
    }
}

impl Scripted {
    fn new(
        script: impl Fn(&ChatRequest, usize) -> Result<ChatResponse, ModelError> + Send + Sync + 'static,
    ) -> Arc<Scripted> {
        Arc::new(Scripted {
            script: Box::new(script),
            delay: Duration::ZERO,
            seen: Mutex::new(Vec::new()),
        })
    }

    fn slow(
        delay: Duration,
        script: impl Fn(&ChatRequest, usize) -> Result<ChatResponse, ModelError> + Send + Sync + 'static,
    ) -> Arc<Scripted> {
        Arc::new(Scripted {
            script: Box::new(script),
            delay,
            seen: Mutex::new(Vec::new()),
        })
    }

    fn calls(&self) -> Vec<ChatRequest> {
        self.seen.lock().expect("lock").clone()
    }
}

#[async_trait]
impl ChatModel for Scripted {
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ModelError> {
        let index = {
            let mut seen = self.seen.lock().expect("lock");
            seen.push(request.clone());
            seen.len() - 1
        };
        tokio::time::sleep(self.delay).await;
        (self.script)(request, index)
    }

    /// The scripted answer, word by word, then its tool calls and the finish.
    async fn stream(&self, request: &ChatRequest) -> Result<ChatStream, ModelError> {
        let response = self.complete(request).await?;
        let mut chunks: Vec<Result<ChatChunk, ModelError>> = response
            .message
            .content
            .split_inclusive(' ')
            .map(|word| Ok(ChatChunk::Delta(word.to_owned())))
            .collect();
        chunks.extend(
            response
                .message
                .tool_calls
                .into_iter()
                .map(|call| Ok(ChatChunk::ToolCall(call))),
        );
        chunks.push(Ok(ChatChunk::Finish {
            reason: response.finish_reason,
            usage: response.usage,
            cost_usd: response.cost_usd,
        }));
        Ok(Box::pin(futures_util::stream::iter(chunks)))
    }
}

pub(crate) fn text(content: &str) -> ChatResponse {
    ChatResponse {
        message: ChatMessage::new(Role::Assistant, content),
        finish_reason: FinishReason::Stop,
        usage: Usage {
            input_tokens: 10,
            output_tokens: 5,
            ..Usage::default()
        },
        model: "scripted-1".into(),
        cost_usd: Some(0.001),
    }
}

pub(crate) fn calls(list: &[(&str, &str)]) -> ChatResponse {
    ChatResponse {
        message: ChatMessage {
            role: Role::Assistant,
            content: String::new(),
            tool_calls: list
                .iter()
                .enumerate()
                .map(|(i, (name, arguments))| ToolCall {
                    id: format!("call_{i}"),
                    name: (*name).into(),
                    arguments: (*arguments).into(),
                })
                .collect(),
            tool_call_id: None,
        },
        finish_reason: FinishReason::ToolCalls,
        ..text("")
    }
}

type Behaviour = dyn Fn(Value) -> futures_util::future::BoxFuture<'static, Result<String, ToolError>>
    + Send
    + Sync;

/// A tool whose behaviour is a closure.
struct FnTool {
    spec: ToolSpec,
    behaviour: Box<Behaviour>,
}

impl std::fmt::Debug for FnTool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.spec.name)
    }
}

#[async_trait]
impl AgentTool for FnTool {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, arguments: Value) -> Result<String, ToolError> {
        (self.behaviour)(arguments).await
    }
}

pub(crate) fn tool<F, Fut>(name: &str, behaviour: F) -> Arc<dyn AgentTool>
where
    F: Fn(Value) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<String, ToolError>> + Send + 'static,
{
    Arc::new(FnTool {
        spec: ToolSpec {
            name: name.into(),
            description: format!("the {name} tool"),
            parameters: json!({"type": "object"}),
            source: "test".into(),
        },
        behaviour: Box::new(move |args| Box::pin(behaviour(args))),
    })
}

pub(crate) fn run_of(
    model: Arc<Scripted>,
    tools: Vec<Arc<dyn AgentTool>>,
    limits: AgentLimits,
) -> AgentRun {
    AgentRun {
        agent: "tester".into(),
        route: "scripted".into(),
        model,
        system: vec![ChatMessage::new(Role::System, "You are a tester.")],
        tools,
        approval: Vec::new(),
        limits,
        steps: StepLog::default(),
    }
}

pub(crate) fn question() -> ChatRequest {
    ChatRequest {
        model: "agent:tester".into(),
        messages: vec![ChatMessage::new(Role::User, "What is the answer?")],
        ..ChatRequest::default()
    }
}

pub(crate) fn tool_steps(log: &StepLog) -> Vec<(String, String)> {
    log.steps()
        .into_iter()
        .filter_map(|s| match s {
            AgentStep::Tool { tool, status, .. } => Some((tool, status)),
            AgentStep::Model { .. } => None,
        })
        .collect()
}

#[tokio::test]
async fn tool_calls_of_one_step_run_at_once_and_their_results_reach_the_model() {
    // Each tool waits for the other: they finish only if they run at the same time.
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let pair = |name: &'static str| {
        let barrier = barrier.clone();
        tool(name, move |args| {
            let barrier = barrier.clone();
            async move {
                barrier.wait().await;
                Ok(format!("{name} says {}", args["x"]))
            }
        })
    };
    let model = Scripted::new(|request, call| match call {
        0 => Ok(calls(&[("left", r#"{"x": 1}"#), ("right", r#"{"x": 2}"#)])),
        _ => {
            let results: Vec<&str> = request
                .messages
                .iter()
                .filter(|m| m.role == Role::Tool)
                .map(|m| m.content.as_str())
                .collect();
            Ok(text(&results.join(" & ")))
        }
    });
    let limits = AgentLimits {
        tool_timeout: Duration::from_secs(5),
        ..AgentLimits::default()
    };
    let run = run_of(model.clone(), vec![pair("left"), pair("right")], limits);
    let log = run.steps.clone();
    let response = Runner::default()
        .bind(run)
        .complete(&question())
        .await
        .expect("answered");
    assert_eq!(response.message.content, "left says 1 & right says 2");
    assert_eq!(response.usage.input_tokens, 20, "usage adds up over steps");
    assert!((response.cost_usd.expect("cost") - 0.002).abs() < 1e-9);
    assert_eq!(log.outcome(), Some(RunOutcome::Answered));
    // Logged as they finish, in either order.
    let mut done = tool_steps(&log);
    done.sort();
    assert_eq!(
        done,
        vec![("left".into(), "ok".into()), ("right".into(), "ok".into())]
    );
    let asked = model.calls();
    assert_eq!(asked[0].messages[0].content, "You are a tester.");
    assert_eq!(asked[0].tools.len(), 2, "the model is offered the tools");
    assert_eq!(
        asked[1].messages[3].tool_call_id.as_deref(),
        Some("call_0"),
        "each result answers its call"
    );
}

#[tokio::test]
async fn failing_unknown_and_garbled_calls_become_errors_the_model_reads() {
    let model = Scripted::new(|request, call| match call {
        0 => Ok(calls(&[
            ("broken", "{}"),
            ("nonexistent", "{}"),
            ("broken", "{not json"),
        ])),
        _ => Ok(text(
            &request
                .messages
                .iter()
                .filter(|m| m.role == Role::Tool)
                .map(|m| m.content.clone())
                .collect::<Vec<_>>()
                .join("\n"),
        )),
    });
    let broken = tool("broken", |_| async {
        Err(ToolError::Failed("the disk is on fire".into()))
    });
    let run = run_of(model, vec![broken], AgentLimits::default());
    let log = run.steps.clone();
    let response = Runner::default()
        .bind(run)
        .complete(&question())
        .await
        .expect("the run goes on after tool errors");
    let seen = response.message.content;
    assert!(seen.contains("error: the disk is on fire"), "{seen}");
    assert!(
        seen.contains("no tool named `nonexistent`; the tools are: broken"),
        "{seen}"
    );
    assert!(seen.contains("the arguments are not JSON"), "{seen}");
    assert_eq!(
        tool_steps(&log),
        vec![
            ("broken".into(), "failed".into()),
            ("nonexistent".into(), "failed".into()),
            ("broken".into(), "invalid_arguments".into())
        ]
    );
}

#[tokio::test]
async fn a_model_that_never_stops_calling_tools_stops_at_max_steps() {
    let model = Scripted::new(|_, _| Ok(calls(&[("again", "{}")])));
    let again = tool("again", |_| async { Ok("more".to_owned()) });
    let limits = AgentLimits {
        max_steps: 3,
        ..AgentLimits::default()
    };
    let run = run_of(model.clone(), vec![again], limits);
    let log = run.steps.clone();
    let response = Runner::default()
        .bind(run)
        .complete(&question())
        .await
        .expect("a stopped run still answers");
    assert_eq!(model.calls().len(), 3);
    assert_eq!(log.outcome(), Some(RunOutcome::StepLimit));
    assert_eq!(response.finish_reason, FinishReason::Length);
    assert!(
        response
            .message
            .content
            .contains("after 3 model calls (its max_steps)"),
        "{}",
        response.message.content
    );
}

#[tokio::test]
async fn the_token_budget_stops_a_run_before_its_next_tool_round() {
    let model = Scripted::new(|_, _| Ok(calls(&[("again", "{}")])));
    let again = tool("again", |_| async { Ok("more".to_owned()) });
    let limits = AgentLimits {
        max_tokens: 30,
        ..AgentLimits::default()
    };
    let run = run_of(model.clone(), vec![again], limits);
    let log = run.steps.clone();
    let response = Runner::default()
        .bind(run)
        .complete(&question())
        .await
        .expect("answered");
    // 15 tokens a call: the second call reaches 30.
    assert_eq!(model.calls().len(), 2);
    assert_eq!(log.outcome(), Some(RunOutcome::Budget));
    assert_eq!(
        response.usage.input_tokens + response.usage.output_tokens,
        30
    );
}

#[tokio::test]
async fn the_deadline_stops_a_slow_model_and_a_slow_tool_times_out() {
    let model = Scripted::slow(Duration::from_secs(30), |_, _| Ok(text("too late")));
    let limits = AgentLimits {
        deadline: Duration::from_millis(100),
        ..AgentLimits::default()
    };
    let run = run_of(model, Vec::new(), limits);
    let log = run.steps.clone();
    let started = Instant::now();
    let response = Runner::default()
        .bind(run)
        .complete(&question())
        .await
        .expect("answered");
    // Only a hang catcher: the outcome below says the deadline, not the model, ended it.
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(log.outcome(), Some(RunOutcome::Deadline));
    assert!(response.message.content.contains("deadline"));

    let model = Scripted::new(|request, call| match call {
        0 => Ok(calls(&[("sleepy", "{}")])),
        _ => Ok(text(&request.messages.last().expect("a result").content)),
    });
    let sleepy = tool("sleepy", |_| async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        Ok("woke".to_owned())
    });
    let limits = AgentLimits {
        tool_timeout: Duration::from_millis(100),
        ..AgentLimits::default()
    };
    let run = run_of(model, vec![sleepy], limits);
    let log = run.steps.clone();
    let response = Runner::default()
        .bind(run)
        .complete(&question())
        .await
        .expect("answered");
    assert_eq!(response.message.content, "error: no result within 100 ms");
    assert_eq!(
        tool_steps(&log),
        vec![("sleepy".into(), "timed_out".into())]
    );
}

#[tokio::test]
async fn a_model_error_ends_the_run_with_that_error() {
    let model = Scripted::new(|_, call| match call {
        0 => Ok(calls(&[("fine", "{}")])),
        _ => Err(ModelError::Permanent("quota".into())),
    });
    let fine = tool("fine", |_| async { Ok("ok".to_owned()) });
    let run = run_of(model, vec![fine], AgentLimits::default());
    let log = run.steps.clone();
    let error = Runner::default()
        .bind(run)
        .complete(&question())
        .await
        .expect_err("the model failed");
    assert_eq!(error, ModelError::Permanent("quota".into()));
    let statuses: Vec<String> = log
        .steps()
        .into_iter()
        .filter_map(|s| match s {
            AgentStep::Model { status, .. } => Some(status),
            AgentStep::Tool { .. } => None,
        })
        .collect();
    assert_eq!(statuses, vec!["ok", "permanent"]);
}

#[tokio::test]
async fn a_streamed_run_shows_each_step_and_streams_the_answer() {
    let model = Scripted::new(|_, call| match call {
        0 => Ok(calls(&[("lookup", r#"{"q": "x"}"#)])),
        _ => Ok(text("the answer is 42")),
    });
    let lookup = tool("lookup", |_| async { Ok("42".to_owned()) });
    let run = run_of(model, vec![lookup], AgentLimits::default());
    let chunks: Vec<ChatChunk> = Runner::default()
        .bind(run)
        .stream(&question())
        .await
        .expect("a stream")
        .map(|item| item.expect("no error"))
        .collect()
        .await;
    let shown: Vec<String> = chunks
        .iter()
        .map(|chunk| match chunk {
            ChatChunk::Step(AgentStep::Model { step, .. }) => format!("model {step}"),
            ChatChunk::Step(AgentStep::Tool { tool, status, .. }) => format!("{tool} {status}"),
            ChatChunk::Delta(text) => format!("text {text}"),
            ChatChunk::ToolCall(_) => "tool call".into(),
            ChatChunk::Finish { .. } => "finish".into(),
        })
        .collect();
    assert_eq!(
        shown,
        vec![
            "model 1",
            "lookup running",
            "lookup ok",
            "text the ",
            "text answer ",
            "text is ",
            "text 42",
            "model 2",
            "finish"
        ],
        "the final answer streams as the model writes it"
    );
}

#[tokio::test]
async fn dropping_a_streamed_run_stops_it() {
    let calls_made = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = calls_made.clone();
    let model = Scripted::new(move |_, _| {
        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(calls(&[("slow", "{}")]))
    });
    let slow = tool("slow", |_| async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        Ok("done".to_owned())
    });
    let run = run_of(model, vec![slow], AgentLimits::default());
    let mut stream = Runner::default()
        .bind(run)
        .stream(&question())
        .await
        .expect("a stream");
    let first = stream.next().await.expect("a step").expect("no error");
    assert!(matches!(first, ChatChunk::Step(AgentStep::Model { .. })));
    drop(stream);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        calls_made.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "no model call after the stream was dropped"
    );
}
