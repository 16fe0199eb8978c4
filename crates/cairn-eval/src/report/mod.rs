//! What a run found: every case with its answers and scores, per-metric aggregates with confidence
//! intervals, the comparison with a baseline run, and the gates. Serialised as-is for `--json` and
//! the catalog; `junit` writes the JUnit XML CI systems read, `html` one self-contained page for
//! people.

pub mod html;
pub mod junit;

use std::collections::{BTreeMap, HashMap};

use cairn_core::eval::EvalAnswer;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::dataset::Case;
use crate::gates::GateResult;
use crate::metrics::{Metric, Score};
use crate::stats::{self, Estimate};

/// One repeat of one case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    pub repeat: u32,
    /// `None` when the target gave no answer (`error` says why).
    pub answer: Option<EvalAnswer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub scores: BTreeMap<String, Score>,
}

/// A case over all its repeats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseResult {
    pub case: Case,
    pub attempts: Vec<Attempt>,
    /// Per metric: the mean of its measured repeats, or unmeasured when none was.
    pub scores: BTreeMap<String, Score>,
    /// Every metric measured and at its threshold.
    pub passed: bool,
    /// Metrics whose verdict (pass or fail) changed between repeats.
    pub flaky: Vec<String>,
}

impl CaseResult {
    /// The question as the pipeline kept it (values its guards redacted stay placeholders), where
    /// an answer says, else as the dataset wrote it.
    pub fn asked(&self) -> &str {
        self.attempts
            .iter()
            .filter_map(|a| a.answer.as_ref())
            .map(|a| a.question.as_str())
            .find(|q| !q.is_empty())
            .unwrap_or(&self.case.question)
    }
}

/// A paired comparison of one metric with a baseline run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub pairs: usize,
    /// `this run - baseline`, with its 95% interval.
    pub difference: Estimate,
    /// Case ids whose score rose or fell.
    pub better: Vec<String>,
    pub worse: Vec<String>,
}

impl Comparison {
    /// Significantly worse: the whole 95% interval of the difference is below zero.
    pub fn regressed(&self) -> bool {
        self.difference.high < 0.0
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricSummary {
    pub name: String,
    pub threshold: f64,
    pub measured: usize,
    pub unmeasured: usize,
    pub mean: Option<Estimate>,
    /// Share of measured cases at the threshold, with its Wilson interval.
    pub pass_rate: Option<Estimate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub versus_baseline: Option<Comparison>,
}

/// Model calls a run made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Calls {
    pub target: usize,
    pub judge: usize,
    /// Calls the answer cache answered (no model call was made).
    pub cached: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    pub suite: String,
    pub target: String,
    /// The catalog id, once stored.
    pub run_id: Option<Uuid>,
    pub baseline: Option<Uuid>,
    /// Prompt versions the target used instead of those it names (prompt name → version).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub prompt_pins: BTreeMap<String, i64>,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub seconds: f64,
    pub repeat: u32,
    pub calls: Calls,
    pub cost_usd: f64,
    pub metrics: Vec<MetricSummary>,
    pub gates: Vec<GateResult>,
    pub cases: Vec<CaseResult>,
    /// Every gate held.
    pub passed: bool,
    /// Per judged metric, its judge prompt's latest calibration against human labels, where one
    /// is stored (filled in by the caller that has the catalog).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub calibrations: BTreeMap<String, crate::calibrate::Calibration>,
    /// On the second target's run of a `pairwise` suite: the judge's comparison with the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pairwise: Option<crate::pairwise::PairwiseReport>,
}

impl RunReport {
    /// Each case's answer in its first repeat, by case id.
    pub fn first_answers(&self) -> HashMap<&str, &EvalAnswer> {
        self.cases
            .iter()
            .filter_map(|c| {
                let answer = c.attempts.first()?.answer.as_ref()?;
                Some((c.case.id.as_str(), answer))
            })
            .collect()
    }

    pub fn flaky_cases(&self) -> Vec<&CaseResult> {
        self.cases.iter().filter(|c| !c.flaky.is_empty()).collect()
    }

    /// Why `case` did not pass: each metric below its threshold or unmeasured, with the reason.
    pub fn failures(&self, case: &CaseResult) -> Vec<String> {
        case.scores
            .iter()
            .filter_map(|(name, score)| {
                let threshold = self
                    .metrics
                    .iter()
                    .find(|m| &m.name == name)
                    .map_or(1.0, |m| m.threshold);
                let reason = score.reason().unwrap_or("no reason given");
                match score.value() {
                    Some(value) if value >= threshold => None,
                    Some(value) => Some(format!("{name} {value:.3} < {threshold}: {reason}")),
                    None => Some(format!("{name} unmeasured: {reason}")),
                }
            })
            .collect()
    }
}

/// A stored run's per-case scores, to compare a new run with.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Baseline {
    pub run_id: Uuid,
    /// case id → metric name → score.
    pub scores: HashMap<String, BTreeMap<String, f64>>,
}

/// A case's scores over its repeats: the mean of what was measured, and which metrics flipped.
pub fn combine(case: Case, attempts: Vec<Attempt>, metrics: &[Metric]) -> CaseResult {
    let mut scores = BTreeMap::new();
    let mut flaky = Vec::new();
    let mut passed = true;
    for metric in metrics {
        let values: Vec<f64> = attempts
            .iter()
            .filter_map(|a| a.scores.get(&metric.name).and_then(Score::value))
            .collect();
        let verdicts: Vec<bool> = values.iter().map(|v| *v >= metric.threshold).collect();
        if verdicts.iter().any(|v| *v) && verdicts.iter().any(|v| !*v) {
            flaky.push(metric.name.clone());
        }
        let reason = attempts
            .iter()
            .find_map(|a| a.scores.get(&metric.name).and_then(Score::reason))
            .map(str::to_owned);
        let score = match stats::mean(&values) {
            Some(mean) => Score::Measured {
                value: mean,
                reason,
            },
            None => Score::unmeasured(reason.unwrap_or_else(|| "not scored".to_owned())),
        };
        passed &= score.value().is_some_and(|v| v >= metric.threshold);
        scores.insert(metric.name.clone(), score);
    }
    CaseResult {
        case,
        attempts,
        scores,
        passed,
        flaky,
    }
}

/// Per-metric aggregates over the cases, and the comparison with the baseline where given.
pub fn summarise(
    cases: &[CaseResult],
    metrics: &[Metric],
    baseline: Option<&Baseline>,
) -> Vec<MetricSummary> {
    metrics
        .iter()
        .map(|metric| {
            let values: Vec<f64> = cases
                .iter()
                .filter_map(|c| c.scores.get(&metric.name).and_then(Score::value))
                .collect();
            let passing = values.iter().filter(|v| **v >= metric.threshold).count();
            let versus_baseline = baseline.and_then(|b| compare(cases, &metric.name, b));
            MetricSummary {
                name: metric.name.clone(),
                threshold: metric.threshold,
                measured: values.len(),
                unmeasured: cases.len() - values.len(),
                mean: stats::bootstrap_mean(&values, stats::seed_for(&metric.name)),
                pass_rate: stats::wilson(passing, values.len()),
                versus_baseline,
            }
        })
        .collect()
}

fn compare(cases: &[CaseResult], metric: &str, baseline: &Baseline) -> Option<Comparison> {
    let now = cases.iter().filter_map(|case| {
        let value = case.scores.get(metric).and_then(Score::value)?;
        Some((case.case.id.as_str(), value))
    });
    paired(now, metric, baseline)
}

/// Two stored runs compared case by case: for each metric of `after`, the paired difference
/// `after - before` and the cases that got better or worse (`cairn eval compare`).
pub fn compare_runs(
    before: &Baseline,
    after: &Baseline,
    metrics: &[String],
) -> Vec<(String, Option<Comparison>)> {
    metrics
        .iter()
        .map(|metric| {
            let mut now: Vec<(&str, f64)> = after
                .scores
                .iter()
                .filter_map(|(case, scores)| Some((case.as_str(), *scores.get(metric)?)))
                .collect();
            now.sort_by(|a, b| a.0.cmp(b.0));
            (metric.clone(), paired(now.into_iter(), metric, before))
        })
        .collect()
}

/// Pairs each case's score now with its score in `baseline`, where both were measured.
fn paired<'a>(
    now: impl Iterator<Item = (&'a str, f64)>,
    metric: &str,
    baseline: &Baseline,
) -> Option<Comparison> {
    let mut pairs = Vec::new();
    let mut better = Vec::new();
    let mut worse = Vec::new();
    for (case, now) in now {
        let Some(before) = baseline
            .scores
            .get(case)
            .and_then(|s| s.get(metric))
            .copied()
        else {
            continue;
        };
        if now > before + 1e-9 {
            better.push(case.to_owned());
        } else if now < before - 1e-9 {
            worse.push(case.to_owned());
        }
        pairs.push((before, now));
    }
    Some(Comparison {
        pairs: pairs.len(),
        difference: stats::paired_difference(&pairs, stats::seed_for(metric))?,
        better,
        worse,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(scores: &[(&str, f64)]) -> Baseline {
        Baseline {
            run_id: Uuid::nil(),
            scores: scores
                .iter()
                .map(|(case, value)| {
                    (
                        (*case).to_owned(),
                        BTreeMap::from([("faithfulness".to_owned(), *value)]),
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn stored_runs_compare_case_by_case() {
        let before = run(&[("a", 1.0), ("b", 0.5), ("c", 0.0), ("gone", 1.0)]);
        let after = run(&[("a", 0.0), ("b", 0.5), ("c", 1.0), ("new", 1.0)]);
        let compared = compare_runs(
            &before,
            &after,
            &["faithfulness".to_owned(), "missing".to_owned()],
        );
        let (name, faithfulness) = &compared[0];
        assert_eq!(name, "faithfulness");
        let faithfulness = faithfulness.as_ref().expect("three pairs");
        assert_eq!(faithfulness.pairs, 3);
        assert_eq!(faithfulness.better, ["c"]);
        assert_eq!(faithfulness.worse, ["a"]);
        assert!(faithfulness.difference.value.abs() < 1e-9);
        assert_eq!(compared[1].1, None, "no pairs, no comparison");
    }
}
