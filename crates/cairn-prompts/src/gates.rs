//! Eval-gated labels: a label such as `production` that moves only to a version a passing eval run
//! vouches for. The harness runs the suite with the candidate version pinned and stores the run;
//! the move names that run, and the registry checks, against the catalog, that the run passed, is
//! of the gate's suite and evaluated exactly that version. The label's audit trail keeps the run.

use cairn_core::catalog::{EvalRun, EvalStatus};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::PromptError;

/// `[[prompts.gates]]`: moving `label` of `prompt` requires a passing run of `suite`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelGate {
    pub prompt: String,
    pub label: String,
    /// The suite's name (its `name:`), as its runs are stored.
    pub suite: String,
}

impl LabelGate {
    /// Refuses a move of a gated label that names no run.
    pub(crate) fn unvouched(&self, version: i64) -> PromptError {
        PromptError::Gated(format!(
            "label `{}` of prompt `{}` moves only to a version a passing run of eval suite `{}` vouches for; \
             run it on v{version} and move the label with that run: \
             `cairn prompt label {} {version} {} --require-eval SUITE_FILE`, or pass `eval_run` in the request",
            self.label, self.prompt, self.suite, self.prompt, self.label
        ))
    }
}

/// Checks that `run` vouches for moving `name`'s label to `version`: it passed, evaluated that
/// version (its `prompt_pins`), and, when the label is gated, is a run of the gate's suite.
pub(crate) fn vouches(
    run: Option<&EvalRun>,
    run_id: Uuid,
    name: &str,
    version: i64,
    gate: Option<&LabelGate>,
) -> Result<(), PromptError> {
    let refuse = |why: String| Err(PromptError::Gated(why));
    let Some(run) = run else {
        return refuse(format!(
            "no eval run `{run_id}`; `cairn eval list SUITE` lists a suite's runs"
        ));
    };
    if run.status != EvalStatus::Passed {
        return refuse(format!(
            "eval run `{run_id}` of suite `{}` {}: it cannot vouch for {name} v{version}; \
             `cairn eval show {run_id}` says which gates failed",
            run.suite,
            match run.status {
                EvalStatus::Running => "has not finished",
                _ => "did not pass",
            }
        ));
    }
    let pinned = run.target["prompt_pins"][name].as_i64();
    if pinned != Some(version) {
        return refuse(format!(
            "eval run `{run_id}` evaluated {}, not {name} v{version}; \
             run the suite with v{version} (`cairn prompt label {name} {version} LABEL --require-eval SUITE_FILE`)",
            match pinned {
                Some(other) => format!("{name} v{other}"),
                None =>
                    format!("the versions its targets name, with no version of `{name}` pinned"),
            }
        ));
    }
    if let Some(gate) = gate
        && gate.suite != run.suite
    {
        return refuse(format!(
            "label `{}` of prompt `{name}` is gated by eval suite `{}`; run `{run_id}` is of suite `{}`",
            gate.label, gate.suite, run.suite
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn run(suite: &str, status: EvalStatus, pins: serde_json::Value) -> EvalRun {
        EvalRun {
            id: Uuid::nil(),
            suite: suite.into(),
            target: json!({"target": "app:chat", "prompt_pins": pins}),
            status,
            summary: json!({}),
            started_at: chrono::Utc::now(),
            finished_at: None,
        }
    }

    fn gate() -> LabelGate {
        LabelGate {
            prompt: "rag_answer".into(),
            label: "production".into(),
            suite: "docs".into(),
        }
    }

    fn refusal(result: Result<(), PromptError>) -> String {
        match result {
            Err(PromptError::Gated(why)) => why,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_passing_run_of_the_gate_suite_on_that_version_vouches() {
        let passed = run("docs", EvalStatus::Passed, json!({"rag_answer": 3}));
        vouches(Some(&passed), Uuid::nil(), "rag_answer", 3, Some(&gate())).expect("vouches");
        // Without a gate, any passing run on that version does.
        let other = run("other", EvalStatus::Passed, json!({"rag_answer": 3}));
        vouches(Some(&other), Uuid::nil(), "rag_answer", 3, None).expect("vouches");
    }

    #[test]
    fn runs_that_failed_evaluated_another_version_or_another_suite_do_not() {
        let id = Uuid::nil();
        let failed = run("docs", EvalStatus::Failed, json!({"rag_answer": 3}));
        assert!(
            refusal(vouches(Some(&failed), id, "rag_answer", 3, None)).contains("did not pass")
        );
        let older = run("docs", EvalStatus::Passed, json!({"rag_answer": 2}));
        assert!(
            refusal(vouches(Some(&older), id, "rag_answer", 3, None))
                .contains("evaluated rag_answer v2, not rag_answer v3")
        );
        let unpinned = run("docs", EvalStatus::Passed, json!({}));
        assert!(
            refusal(vouches(Some(&unpinned), id, "rag_answer", 3, None))
                .contains("no version of `rag_answer` pinned")
        );
        let elsewhere = run("smoke", EvalStatus::Passed, json!({"rag_answer": 3}));
        assert!(
            refusal(vouches(
                Some(&elsewhere),
                id,
                "rag_answer",
                3,
                Some(&gate())
            ))
            .contains("gated by eval suite `docs`")
        );
        assert!(refusal(vouches(None, id, "rag_answer", 3, None)).contains("no eval run"));
    }
}
