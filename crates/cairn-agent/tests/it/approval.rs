//! Tools that need approval: the run stops at their calls, which become its answer; the caller's
//! decisions, sent back as `tool` messages, resume it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use cairn_agent::Runner;
use cairn_core::agent::{AgentLimits, AgentStep, RunOutcome};
use cairn_core::model::{ChatMessage, ChatRequest, FinishReason, Role};
use cairn_core::{AgentRunner, ModelError};

use super::{Scripted, calls, question, run_of, text, tool, tool_steps};

/// A model that asks to delete a file and to look something up (in one step), then answers
/// with what the tools told it.
fn deleter() -> Arc<Scripted> {
    Scripted::new(|request, _| {
        let results: Vec<&str> = request
            .messages
            .iter()
            .filter(|m| m.role == Role::Tool)
            .map(|m| m.content.as_str())
            .collect();
        if results.is_empty() {
            Ok(calls(&[
                ("delete_file", r#"{"path": "/srv/report.pdf"}"#),
                ("lookup", "{}"),
            ]))
        } else {
            Ok(text(&results.join(" | ")))
        }
    })
}

fn tools(deleted: &Arc<AtomicUsize>) -> Vec<Arc<dyn cairn_core::AgentTool>> {
    let counter = deleted.clone();
    vec![
        tool("delete_file", move |_| {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                Ok("deleted".to_owned())
            }
        }),
        tool("lookup", |_| async { Ok("found".to_owned()) }),
    ]
}

fn with_approval(run: cairn_core::agent::AgentRun) -> cairn_core::agent::AgentRun {
    cairn_core::agent::AgentRun {
        approval: vec!["delete_file".into()],
        ..run
    }
}

/// The conversation sent back: the question, the calls the run stopped at, and `decision`.
fn resumed(paused: &ChatMessage, decision: Option<&str>) -> ChatRequest {
    let mut request = question();
    request.messages.push(paused.clone());
    if let Some(decision) = decision {
        request.messages.push(ChatMessage {
            role: Role::Tool,
            content: decision.into(),
            tool_calls: Vec::new(),
            tool_call_id: Some("call_0".into()),
        });
    }
    request
}

#[tokio::test]
async fn a_call_that_needs_approval_stops_the_run_and_is_its_answer() {
    let deleted = Arc::new(AtomicUsize::new(0));
    let run = with_approval(run_of(deleter(), tools(&deleted), AgentLimits::default()));
    let log = run.steps.clone();
    let response = Runner::default()
        .bind(run)
        .complete(&question())
        .await
        .expect("paused");
    assert_eq!(response.finish_reason, FinishReason::ToolCalls);
    let names: Vec<&str> = response
        .message
        .tool_calls
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(names, vec!["delete_file", "lookup"]);
    assert_eq!(
        deleted.load(Ordering::SeqCst),
        0,
        "nothing ran before approval"
    );
    assert_eq!(log.outcome(), Some(RunOutcome::AwaitingApproval));
    assert_eq!(
        tool_steps(&log),
        vec![("delete_file".into(), "awaiting_approval".into())]
    );
}

#[tokio::test]
async fn approved_calls_run_and_denied_ones_tell_the_model_why() {
    let deleted = Arc::new(AtomicUsize::new(0));
    let paused = {
        let run = with_approval(run_of(deleter(), tools(&deleted), AgentLimits::default()));
        Runner::default()
            .bind(run)
            .complete(&question())
            .await
            .expect("paused")
            .message
    };

    let run = with_approval(run_of(deleter(), tools(&deleted), AgentLimits::default()));
    let log = run.steps.clone();
    let response = Runner::default()
        .bind(run)
        .complete(&resumed(&paused, Some(r#"{"approved": true}"#)))
        .await
        .expect("resumed");
    assert_eq!(response.message.content, "deleted | found");
    assert_eq!(deleted.load(Ordering::SeqCst), 1);
    assert_eq!(log.outcome(), Some(RunOutcome::Answered));
    let resumed_steps: Vec<(u32, String)> = log
        .steps()
        .into_iter()
        .filter_map(|s| match s {
            AgentStep::Tool { step, tool, .. } => Some((step, tool)),
            AgentStep::Model { .. } => None,
        })
        .collect();
    assert!(
        resumed_steps.iter().all(|(step, _)| *step == 0),
        "decided calls are step 0 of the resumed run: {resumed_steps:?}"
    );

    let run = with_approval(run_of(deleter(), tools(&deleted), AgentLimits::default()));
    let log = run.steps.clone();
    let response = Runner::default()
        .bind(run)
        .complete(&resumed(
            &paused,
            Some(r#"{"approved": false, "reason": "keep the report"}"#),
        ))
        .await
        .expect("resumed");
    assert_eq!(
        response.message.content,
        "The user denied this call: keep the report | found"
    );
    assert_eq!(
        deleted.load(Ordering::SeqCst),
        1,
        "a denied call does not run"
    );
    let mut statuses = tool_steps(&log);
    statuses.sort();
    assert_eq!(
        statuses,
        vec![
            ("delete_file".into(), "denied".into()),
            ("lookup".into(), "ok".into())
        ]
    );

    // No decision for a call that needs one: the request is refused with how to answer.
    let run = with_approval(run_of(deleter(), tools(&deleted), AgentLimits::default()));
    let error = Runner::default()
        .bind(run)
        .complete(&resumed(&paused, None))
        .await
        .expect_err("refused");
    assert!(
        matches!(&error, ModelError::InvalidRequest(m) if m.contains("awaits approval") && m.contains("\"approved\": true")),
        "{error:?}"
    );
}
