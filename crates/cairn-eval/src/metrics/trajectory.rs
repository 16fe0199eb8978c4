//! Checks of an agent's trajectory (the steps of its run, `agent:NAME` targets): whether it called
//! a tool (with the expected arguments) or kept away from one, and how many model calls it took.
//! An answer with no recorded run (any other target) is unmeasured, never zero.

use cairn_core::agent::AgentStep;
use cairn_core::eval::EvalAnswer;
use serde_json::Value;

use super::deterministic::pass;
use super::{MetricFile, MetricKind, Score};

#[derive(Debug, Clone)]
pub enum Trajectory {
    /// Some successful call of `tool` whose arguments include `arguments`.
    Called {
        tool: String,
        arguments: Option<serde_json::Map<String, Value>>,
    },
    /// No call of `tool`, successful or not.
    NotCalled { tool: String },
    /// Model calls within `min..=max`.
    Steps { min: Option<f64>, max: Option<f64> },
}

impl Trajectory {
    pub fn build(file: &MetricFile) -> Result<Trajectory, String> {
        let tool = || {
            file.tool.clone().filter(|t| !t.is_empty()).ok_or(
                "needs `tool`: the tool's name as the agent's model sees it (search, SERVER__TOOL)",
            )
        };
        Ok(match file.metric {
            MetricKind::ToolCalled => Trajectory::Called {
                tool: tool()?,
                arguments: match &file.arguments {
                    None => None,
                    Some(Value::Object(map)) => Some(map.clone()),
                    Some(_) => {
                        return Err("`arguments` must be an object: name → expected value".into());
                    }
                },
            },
            MetricKind::ToolNotCalled => Trajectory::NotCalled { tool: tool()? },
            MetricKind::StepCount => {
                if file.min.is_none() && file.max.is_none() {
                    return Err(
                        "needs `min`, `max` or both: the model calls a good run takes".into(),
                    );
                }
                Trajectory::Steps {
                    min: file.min,
                    max: file.max,
                }
            }
            other => return Err(format!("`{}` is not a trajectory check", other.as_str())),
        })
    }

    pub fn score(&self, answer: &EvalAnswer) -> Score {
        if answer.steps.is_empty() {
            return Score::unmeasured("no agent run was recorded (the target is not an agent)");
        }
        let calls: Vec<(&str, &Value, &str)> = answer
            .steps
            .iter()
            .filter_map(|step| match step {
                AgentStep::Tool {
                    tool,
                    arguments,
                    status,
                    ..
                } => Some((tool.as_str(), arguments, status.as_str())),
                AgentStep::Model { .. } => None,
            })
            .collect();
        let called: Vec<&str> = calls.iter().map(|(tool, _, _)| *tool).collect();
        match self {
            Trajectory::Called { tool, arguments } => {
                let matching = calls
                    .iter()
                    .filter(|(t, _, status)| t == tool && *status == "ok");
                let with_arguments = matching
                    .clone()
                    .any(|(_, given, _)| arguments.as_ref().is_none_or(|a| includes(given, a)));
                pass(with_arguments, || {
                    if matching.count() > 0 {
                        format!(
                            "`{tool}` was called, but not with {}",
                            Value::Object(arguments.clone().unwrap_or_default())
                        )
                    } else if called.is_empty() {
                        "no tool was called".to_owned()
                    } else {
                        format!(
                            "`{tool}` was not called successfully; calls: {}",
                            called.join(", ")
                        )
                    }
                })
            }
            Trajectory::NotCalled { tool } => pass(!called.contains(&tool.as_str()), || {
                format!("`{tool}` was called")
            }),
            Trajectory::Steps { min, max } => {
                let steps = answer
                    .steps
                    .iter()
                    .filter(|s| matches!(s, AgentStep::Model { .. }))
                    .count() as f64;
                let ok = min.is_none_or(|m| steps >= m) && max.is_none_or(|m| steps <= m);
                pass(ok, || format!("{steps} model calls"))
            }
        }
    }
}

/// Whether `given` has every expected key with its value (strings compared without case).
fn includes(given: &Value, expected: &serde_json::Map<String, Value>) -> bool {
    expected
        .iter()
        .all(|(key, want)| match (given.get(key), want) {
            (Some(Value::String(got)), Value::String(want)) => {
                got.to_lowercase() == want.to_lowercase()
            }
            (Some(got), want) => got == want,
            (None, _) => false,
        })
}

#[cfg(test)]
mod tests {
    use cairn_core::model::Usage;
    use serde_json::json;

    use super::*;

    fn model_step(step: u32) -> AgentStep {
        AgentStep::Model {
            step,
            route: "r".into(),
            model: "m".into(),
            usage: Usage::default(),
            cost_usd: None,
            latency_ms: 1,
            tool_calls: Vec::new(),
            status: "ok".into(),
        }
    }

    fn tool_step(tool: &str, arguments: Value, status: &str) -> AgentStep {
        AgentStep::Tool {
            step: 1,
            call_id: "c".into(),
            source: "cairn".into(),
            tool: tool.into(),
            arguments,
            status: status.into(),
            result_chars: 10,
            latency_ms: 1,
            error: None,
        }
    }

    fn check(file: Value) -> Trajectory {
        let file: MetricFile = serde_json::from_value(file).expect("metric file");
        Trajectory::build(&file).expect("builds")
    }

    #[test]
    fn tool_calls_arguments_and_step_counts_are_scored_from_the_run() {
        let answer = EvalAnswer {
            steps: vec![
                model_step(1),
                tool_step(
                    "search",
                    json!({"query": "Parental Leave", "top_k": 3}),
                    "ok",
                ),
                tool_step("fetch_url", json!({"url": "http://x"}), "failed"),
                model_step(2),
            ],
            ..EvalAnswer::default()
        };
        let score = |file: Value| check(file).score(&answer);
        assert_eq!(
            score(json!({"metric": "tool_called", "tool": "search"})).value(),
            Some(1.0)
        );
        assert_eq!(
            score(json!({"metric": "tool_called", "tool": "search", "arguments": {"query": "parental leave"}})).value(),
            Some(1.0),
            "string arguments compare without case; extra arguments are fine"
        );
        let wrong = score(
            json!({"metric": "tool_called", "tool": "search", "arguments": {"query": "holidays"}}),
        );
        assert_eq!(wrong.value(), Some(0.0));
        assert!(
            wrong.reason().is_some_and(|r| r.contains("not with")),
            "{wrong:?}"
        );
        let failed = score(json!({"metric": "tool_called", "tool": "fetch_url"}));
        assert_eq!(
            failed.value(),
            Some(0.0),
            "a failed call is not a call that worked"
        );
        assert_eq!(
            score(json!({"metric": "tool_not_called", "tool": "ask_app"})).value(),
            Some(1.0)
        );
        assert_eq!(
            score(json!({"metric": "tool_not_called", "tool": "fetch_url"})).value(),
            Some(0.0)
        );
        assert_eq!(
            score(json!({"metric": "step_count", "max": 2})).value(),
            Some(1.0)
        );
        assert_eq!(
            score(json!({"metric": "step_count", "max": 1})).value(),
            Some(0.0)
        );
        let plain = EvalAnswer::default();
        assert_eq!(
            check(json!({"metric": "tool_called", "tool": "search"}))
                .score(&plain)
                .value(),
            None,
            "an answer without a run is unmeasured"
        );
    }

    #[test]
    fn trajectory_metrics_say_what_they_need() {
        for (file, needs) in [
            (json!({"metric": "tool_called"}), "needs `tool`"),
            (
                json!({"metric": "tool_called", "tool": "search", "arguments": [1]}),
                "must be an object",
            ),
            (json!({"metric": "step_count"}), "needs `min`, `max`"),
        ] {
            let file: MetricFile = serde_json::from_value(file).expect("metric file");
            let error = Trajectory::build(&file).expect_err("refused");
            assert!(error.contains(needs), "{error}");
        }
    }
}
