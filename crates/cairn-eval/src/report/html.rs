//! One self-contained HTML file for people: per run, the summary and gates, each metric's
//! distribution over the cases, the comparison with the baseline, and every case to open: the
//! question, each repeat's answer and retrieved passages, and each score with the judge's reason.
//! No script and nothing fetched: it opens from disk, in a CI artefact viewer or a mail.

use minijinja::{Environment, context};
use serde_json::{Value, json};

use super::{CaseResult, RunReport};
use crate::metrics::Score;
use crate::stats::Estimate;

const TEMPLATE: &str = include_str!("report.html");

/// Bins of a metric's histogram (scores are in [0, 1]).
const BINS: usize = 10;

/// The runs as one HTML document.
pub fn render(reports: &[RunReport]) -> Result<String, String> {
    let mut env = Environment::new();
    // The `.html` name turns on HTML escaping of every value: answers and passages are untrusted.
    env.add_template("report.html", TEMPLATE)
        .map_err(|e| e.to_string())?;
    let runs: Vec<Value> = reports.iter().map(run_view).collect();
    let passed = reports.iter().all(|r| r.passed);
    env.get_template("report.html")
        .and_then(|t| t.render(context! { runs, passed }))
        .map_err(|e| e.to_string())
}

fn run_view(report: &RunReport) -> Value {
    let metrics: Vec<Value> = report
        .metrics
        .iter()
        .map(|metric| {
            let values: Vec<f64> = report
                .cases
                .iter()
                .filter_map(|c| c.scores.get(&metric.name).and_then(Score::value))
                .collect();
            let estimate = |e: Option<Estimate>| {
                e.map_or_else(
                    || "unmeasured".to_owned(),
                    |e| format!("{:.3} [{:.3}, {:.3}]", e.value, e.low, e.high),
                )
            };
            json!({
                "name": metric.name,
                "threshold": metric.threshold,
                "mean": estimate(metric.mean),
                "pass_rate": estimate(metric.pass_rate),
                "measured": metric.measured,
                "cases": metric.measured + metric.unmeasured,
                "versus": metric.versus_baseline.as_ref().map(|c| json!({
                    "difference": format!(
                        "{:+.3} [{:.3}, {:.3}]",
                        c.difference.value, c.difference.low, c.difference.high
                    ),
                    "better": c.better,
                    "worse": c.worse,
                })),
                "histogram": histogram(&values),
            })
        })
        .collect();
    let cases: Vec<Value> = report
        .cases
        .iter()
        .map(|case| case_view(report, case))
        .collect();
    json!({
        "suite": report.suite,
        "target": report.target,
        "run_id": report.run_id,
        "baseline": report.baseline,
        "pins": report.prompt_pins,
        "started_at": report.started_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        "seconds": format!("{:.1}", report.seconds),
        "repeat": report.repeat,
        "calls": report.calls,
        "cost_usd": format!("{:.4}", report.cost_usd),
        "passed": report.passed,
        "gates": report.gates,
        "metrics": metrics,
        "cases": cases,
        "calibrations": report
            .calibrations
            .iter()
            .map(|(metric, c)| format!("judge of {metric}: {}", c.describe()))
            .collect::<Vec<_>>(),
        "pairwise": report.pairwise.as_ref().map(|p| p.describe()),
        "failing": report.cases.iter().filter(|c| !c.passed).count(),
        "flaky": report.flaky_cases().len(),
    })
}

fn case_view(report: &RunReport, case: &CaseResult) -> Value {
    let scores: Vec<Value> = case
        .scores
        .iter()
        .map(|(name, score)| {
            let versus = report
                .metrics
                .iter()
                .find(|m| &m.name == name)
                .and_then(|m| m.versus_baseline.as_ref())
                .map(|c| {
                    if c.better.contains(&case.case.id) {
                        "better"
                    } else if c.worse.contains(&case.case.id) {
                        "worse"
                    } else {
                        ""
                    }
                })
                .unwrap_or_default();
            json!({
                "metric": name,
                "value": score.value().map(|v| format!("{v:.3}")),
                "reason": score.reason(),
                "versus": versus,
            })
        })
        .collect();
    let attempts: Vec<Value> = case
        .attempts
        .iter()
        .map(|attempt| {
            let scores: Vec<Value> = attempt
                .scores
                .iter()
                .map(|(name, score)| {
                    json!({
                        "metric": name,
                        "value": score.value().map(|v| format!("{v:.3}")),
                        "reason": score.reason(),
                    })
                })
                .collect();
            json!({
                "repeat": attempt.repeat,
                "answer": attempt.answer,
                "error": attempt.error,
                "scores": scores,
                "latency_ms": attempt.answer.as_ref().map(|a| format!("{:.0}", a.latency_ms)),
            })
        })
        .collect();
    let question = case.asked();
    json!({
        "id": case.case.id,
        "origin": case.case.origin,
        "question": question,
        "reference": case.case.reference,
        "passed": case.passed,
        "flaky": case.flaky,
        "failures": report.failures(case),
        "scores": scores,
        "attempts": attempts,
    })
}

/// Counts of `values` in [`BINS`] equal bins over [0, 1], with each bar's height in percent of
/// the tallest.
fn histogram(values: &[f64]) -> Vec<Value> {
    let mut counts = [0usize; BINS];
    for value in values {
        let bin = ((value.clamp(0.0, 1.0) * BINS as f64) as usize).min(BINS - 1);
        counts[bin] += 1;
    }
    let tallest = counts.iter().copied().max().unwrap_or(0).max(1);
    counts
        .iter()
        .enumerate()
        .map(|(bin, count)| {
            json!({
                "from": format!("{:.1}", bin as f64 / BINS as f64),
                "count": count,
                "height": count * 100 / tallest,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use cairn_core::eval::{EvalAnswer, EvalPassage};

    use super::*;
    use crate::dataset::Case;
    use crate::report::{Attempt, Calls};

    #[test]
    fn answers_and_passages_are_escaped_and_every_case_can_be_opened() {
        let hostile = "<script>alert(1)</script><img src=x onerror=alert(2)>";
        let case = Case {
            id: "xss".into(),
            question: "What is <b>bold</b>?".into(),
            variables: Default::default(),
            reference: None,
            gold: Vec::new(),
            tags: Vec::new(),
            origin: "suite.yaml:7".into(),
            given: None,
        };
        let answer = EvalAnswer {
            text: hostile.into(),
            passages: vec![EvalPassage {
                source: "docs/a.html".into(),
                title: "A".into(),
                text: hostile.into(),
                score: 1.0,
            }],
            prompt: Some(("rag_answer".into(), Some(2))),
            ..EvalAnswer::default()
        };
        let scores = BTreeMap::from([(
            "faithfulness".to_owned(),
            Score::because(0.0, format!("unsupported: {hostile}")),
        )]);
        let report = RunReport {
            suite: "smoke".into(),
            target: "app:docs".into(),
            run_id: None,
            baseline: None,
            prompt_pins: BTreeMap::new(),
            started_at: chrono::Utc::now(),
            seconds: 1.0,
            repeat: 1,
            calls: Calls::default(),
            cost_usd: 0.0,
            metrics: Vec::new(),
            gates: Vec::new(),
            calibrations: BTreeMap::new(),
            pairwise: None,
            cases: vec![CaseResult {
                case,
                attempts: vec![Attempt {
                    repeat: 0,
                    answer: Some(answer),
                    error: None,
                    scores: scores.clone(),
                }],
                scores,
                passed: false,
                flaky: Vec::new(),
            }],
            passed: false,
        };
        let page = render(&[report]).expect("renders");
        assert!(!page.contains("<script>"), "{page}");
        assert!(!page.contains("<img"), "{page}");
        assert!(
            page.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
            "{page}"
        );
        assert!(
            page.contains("What is &lt;b&gt;bold&lt;&#x2f;b&gt;?"),
            "{page}"
        );
        assert!(
            page.contains(r#"<details class="case fail" data-case="xss">"#),
            "{page}"
        );
        assert!(page.contains("prompt rag_answer v2"), "{page}");
    }

    #[test]
    fn histograms_bin_scores_over_the_unit_interval() {
        let bars = histogram(&[0.0, 0.05, 0.5, 1.0, 1.0, 7.0]);
        let counts: Vec<u64> = bars
            .iter()
            .map(|b| b["count"].as_u64().unwrap_or(99))
            .collect();
        assert_eq!(counts, [2, 0, 0, 0, 0, 1, 0, 0, 0, 3]);
        assert_eq!(bars[9]["height"], 100);
        assert_eq!(bars[5]["height"], 33);
    }
}
