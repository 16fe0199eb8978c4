//! Checks that need no model: equality, containment, regular expressions, JSON and JSON Schema,
//! length, latency and cost ceilings, and an agent's trajectory (`trajectory.rs`).

use cairn_core::eval::EvalAnswer;
use cairn_core::model::unfenced_json;
use regex::Regex;
use serde_json::Value;

use super::{MetricFile, MetricKind, Score};
use crate::dataset::Case;

#[derive(Debug, Clone)]
pub enum Deterministic {
    /// Equal to `value`, or to the case's reference (whitespace trimmed).
    Equals {
        value: Option<String>,
        ignore_case: bool,
    },
    /// Contains any of `values` (score 0 or 1), or all of them (score: the share found).
    Contains {
        values: Vec<String>,
        all: bool,
        ignore_case: bool,
    },
    Regex(Regex),
    JsonValid,
    JsonSchema(std::sync::Arc<jsonschema::Validator>),
    Length {
        min: Option<f64>,
        max: Option<f64>,
    },
    Latency {
        max_ms: f64,
    },
    Cost {
        max_usd: f64,
    },
    Trajectory(super::trajectory::Trajectory),
}

impl Deterministic {
    pub fn build(file: &MetricFile) -> Result<Deterministic, String> {
        Ok(match file.metric {
            MetricKind::Equals => Deterministic::Equals {
                value: file.value.clone(),
                ignore_case: file.ignore_case,
            },
            MetricKind::Contains => {
                let values: Vec<String> = file.value.iter().chain(&file.values).cloned().collect();
                if values.is_empty() {
                    return Err(
                        "needs `value` or `values`: the text the answer must contain".into(),
                    );
                }
                Deterministic::Contains {
                    values,
                    all: file.all,
                    ignore_case: file.ignore_case,
                }
            }
            MetricKind::Regex => {
                let pattern = file
                    .pattern
                    .as_deref()
                    .ok_or("needs `pattern`: the regular expression the answer must match")?;
                let pattern = if file.ignore_case {
                    format!("(?i){pattern}")
                } else {
                    pattern.to_owned()
                };
                Deterministic::Regex(
                    Regex::new(&pattern).map_err(|e| format!("`pattern` does not compile: {e}"))?,
                )
            }
            MetricKind::JsonValid => Deterministic::JsonValid,
            MetricKind::JsonSchema => {
                let schema = file
                    .schema
                    .as_ref()
                    .ok_or("needs `schema`: the JSON Schema the answer must match")?;
                Deterministic::JsonSchema(std::sync::Arc::new(
                    jsonschema::validator_for(schema)
                        .map_err(|e| format!("`schema` is not a valid JSON Schema: {e}"))?,
                ))
            }
            MetricKind::Length => {
                if file.min.is_none() && file.max.is_none() {
                    return Err("needs `min`, `max` or both, in characters".into());
                }
                Deterministic::Length {
                    min: file.min,
                    max: file.max,
                }
            }
            MetricKind::Latency => Deterministic::Latency {
                max_ms: file
                    .max
                    .ok_or("needs `max`: the slowest acceptable answer, in milliseconds")?,
            },
            MetricKind::Cost => Deterministic::Cost {
                max_usd: file
                    .max
                    .ok_or("needs `max`: the dearest acceptable answer, in US dollars")?,
            },
            MetricKind::ToolCalled | MetricKind::ToolNotCalled | MetricKind::StepCount => {
                Deterministic::Trajectory(super::trajectory::Trajectory::build(file)?)
            }
            other => return Err(format!("`{}` is not a deterministic check", other.as_str())),
        })
    }

    pub fn score(&self, case: &Case, answer: &EvalAnswer) -> Score {
        let text = answer.text.trim();
        match self {
            Deterministic::Equals { value, ignore_case } => {
                let Some(expected) = value.as_deref().or(case.reference.as_deref()) else {
                    return Score::unmeasured("the case has no reference answer to compare with");
                };
                let expected = expected.trim();
                let equal = if *ignore_case {
                    text.to_lowercase() == expected.to_lowercase()
                } else {
                    text == expected
                };
                pass(equal, || format!("expected `{expected}`"))
            }
            Deterministic::Contains {
                values,
                all,
                ignore_case,
            } => {
                let haystack = fold(text, *ignore_case);
                let found: Vec<&String> = values
                    .iter()
                    .filter(|v| haystack.contains(&fold(v, *ignore_case)))
                    .collect();
                if *all {
                    let missing: Vec<&str> = values
                        .iter()
                        .filter(|v| !found.contains(v))
                        .map(String::as_str)
                        .collect();
                    let share = found.len() as f64 / values.len() as f64;
                    if missing.is_empty() {
                        Score::measured(share)
                    } else {
                        Score::because(share, format!("missing: {}", missing.join(", ")))
                    }
                } else {
                    pass(!found.is_empty(), || {
                        format!("contains none of: {}", values.join(", "))
                    })
                }
            }
            Deterministic::Regex(regex) => pass(regex.is_match(text), || {
                format!("does not match `{}`", regex.as_str())
            }),
            Deterministic::JsonValid => match serde_json::from_str::<Value>(unfenced_json(text)) {
                Ok(_) => Score::measured(1.0),
                Err(e) => Score::because(0.0, format!("not JSON: {e}")),
            },
            Deterministic::JsonSchema(validator) => {
                match serde_json::from_str::<Value>(unfenced_json(text)) {
                    Err(e) => Score::because(0.0, format!("not JSON: {e}")),
                    Ok(value) => match validator.iter_errors(&value).next() {
                        None => Score::measured(1.0),
                        Some(error) => {
                            Score::because(0.0, format!("{} at `{}`", error, error.instance_path()))
                        }
                    },
                }
            }
            Deterministic::Length { min, max } => {
                let chars = text.chars().count() as f64;
                let ok = min.is_none_or(|m| chars >= m) && max.is_none_or(|m| chars <= m);
                pass(ok, || format!("{chars} characters"))
            }
            Deterministic::Latency { max_ms } => {
                if answer.cached {
                    return Score::unmeasured(
                        "the answer came from the cache: no latency to judge",
                    );
                }
                pass(answer.latency_ms <= *max_ms, || {
                    format!("{:.0} ms", answer.latency_ms)
                })
            }
            Deterministic::Cost { max_usd } => match answer.cost_usd {
                None => Score::unmeasured("the route does not know this model's prices"),
                Some(cost) => pass(cost <= *max_usd, || format!("${cost:.6}")),
            },
            Deterministic::Trajectory(check) => check.score(answer),
        }
    }
}

pub(super) fn pass(ok: bool, why_not: impl FnOnce() -> String) -> Score {
    if ok {
        Score::measured(1.0)
    } else {
        Score::because(0.0, why_not())
    }
}

fn fold(text: &str, ignore_case: bool) -> String {
    if ignore_case {
        text.to_lowercase()
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn check(metric: Value, answer: &str, reference: Option<&str>) -> Score {
        let file: MetricFile = serde_json::from_value(metric).expect("metric");
        let check = Deterministic::build(&file).expect("builds");
        let case = Case {
            id: "c".into(),
            question: "q".into(),
            variables: Default::default(),
            reference: reference.map(str::to_owned),
            gold: Vec::new(),
            tags: Vec::new(),
            origin: "t:1".into(),
            given: None,
        };
        let answer = EvalAnswer {
            text: answer.into(),
            latency_ms: 120.0,
            cost_usd: Some(0.002),
            ..EvalAnswer::default()
        };
        check.score(&case, &answer)
    }

    #[test]
    fn checks_score_as_expected() {
        let cases = [
            (json!({"metric": "equals"}), " 42 ", Some("42"), Some(1.0)),
            (
                json!({"metric": "equals", "value": "yes", "ignore_case": true}),
                "YES",
                None,
                Some(1.0),
            ),
            (json!({"metric": "equals"}), "41", Some("42"), Some(0.0)),
            (
                json!({"metric": "contains", "values": ["a", "zz"]}),
                "abc",
                None,
                Some(1.0),
            ),
            (
                json!({"metric": "contains", "values": ["a", "zz"], "all": true}),
                "abc",
                None,
                Some(0.5),
            ),
            (
                json!({"metric": "regex", "pattern": "^\\d+$"}),
                "123",
                None,
                Some(1.0),
            ),
            (
                json!({"metric": "json_valid"}),
                "```json\n{\"a\": 1}\n```",
                None,
                Some(1.0),
            ),
            (json!({"metric": "json_valid"}), "{a: 1}", None, Some(0.0)),
            (
                json!({"metric": "json_schema", "schema": {"type": "object", "required": ["a"]}}),
                "{\"b\": 1}",
                None,
                Some(0.0),
            ),
            (
                json!({"metric": "json_schema", "schema": {"type": "object", "required": ["a"]}}),
                "{\"a\": 1}",
                None,
                Some(1.0),
            ),
            (
                json!({"metric": "length", "max": 3}),
                "abcd",
                None,
                Some(0.0),
            ),
            (
                json!({"metric": "latency", "max": 100}),
                "x",
                None,
                Some(0.0),
            ),
            (json!({"metric": "cost", "max": 0.01}), "x", None, Some(1.0)),
            (json!({"metric": "equals"}), "x", None, None),
        ];
        for (metric, answer, reference, expected) in cases {
            let score = check(metric.clone(), answer, reference);
            assert_eq!(score.value(), expected, "{metric} on {answer:?}: {score:?}");
        }
    }

    #[test]
    fn a_check_missing_its_setting_says_which() {
        let file: MetricFile = serde_json::from_value(json!({"metric": "regex"})).expect("metric");
        let err = Deterministic::build(&file).expect_err("no pattern");
        assert!(err.contains("pattern"), "{err}");
    }
}
