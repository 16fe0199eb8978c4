//! What a run found: every case with its answers and scores, per-metric aggregates with confidence
//! intervals, the comparison with a baseline run, and the gates. Serialised as-is for `--json` and
//! the catalog; `junit` writes the JUnit XML CI systems read.

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
}

impl RunReport {
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
    let mut pairs = Vec::new();
    let mut better = Vec::new();
    let mut worse = Vec::new();
    for case in cases {
        let (Some(now), Some(before)) = (
            case.scores.get(metric).and_then(Score::value),
            baseline
                .scores
                .get(&case.case.id)
                .and_then(|s| s.get(metric))
                .copied(),
        ) else {
            continue;
        };
        if now > before + 1e-9 {
            better.push(case.case.id.clone());
        } else if now < before - 1e-9 {
            worse.push(case.case.id.clone());
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
