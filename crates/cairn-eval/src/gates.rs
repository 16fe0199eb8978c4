//! Gates: the conditions on a run's aggregates that decide its exit code. A gate on a metric with
//! too many unmeasured cases fails for that reason: it neither passes nor scores the gaps as zero.

use serde::{Deserialize, Serialize};

use crate::metrics::Metric;
use crate::report::MetricSummary;

/// The share of unmeasured cases a gate tolerates unless it says otherwise.
pub const DEFAULT_MAX_UNMEASURED: f64 = 0.2;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateFile {
    /// The metric's name as the report shows it (`faithfulness`, `recall@5`).
    pub metric: String,
    /// The mean must be at least this.
    #[serde(default)]
    pub min_mean: Option<f64>,
    /// The lower end of the mean's 95% interval must be at least this.
    #[serde(default)]
    pub min_lower_bound: Option<f64>,
    /// The share of cases passing the metric's threshold must be at least this.
    #[serde(default)]
    pub min_pass_rate: Option<f64>,
    /// With a baseline run: fails when the paired difference is significantly below zero.
    #[serde(default)]
    pub no_regression: bool,
    /// The largest share of cases that may be unmeasured (default 0.2).
    #[serde(default)]
    pub max_unmeasured: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gate {
    pub metric: String,
    pub min_mean: Option<f64>,
    pub min_lower_bound: Option<f64>,
    pub min_pass_rate: Option<f64>,
    pub no_regression: bool,
    pub max_unmeasured: f64,
}

/// A gate's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateResult {
    /// What the gate demands, as a reader would say it.
    pub gate: String,
    pub passed: bool,
    /// Why it failed, or what it saw.
    pub detail: String,
}

impl Gate {
    pub fn build(file: GateFile, metrics: &[Metric]) -> Result<Gate, String> {
        if !metrics.iter().any(|m| m.name == file.metric) {
            let names: Vec<&str> = metrics.iter().map(|m| m.name.as_str()).collect();
            return Err(format!(
                "gate names metric `{}`, which the suite does not measure; metrics: {}",
                file.metric,
                names.join(", ")
            ));
        }
        if file.min_mean.is_none()
            && file.min_lower_bound.is_none()
            && file.min_pass_rate.is_none()
            && !file.no_regression
        {
            return Err(format!(
                "gate on `{}` sets no condition; add min_mean, min_lower_bound, min_pass_rate or no_regression: true",
                file.metric
            ));
        }
        Ok(Gate {
            metric: file.metric,
            min_mean: file.min_mean,
            min_lower_bound: file.min_lower_bound,
            min_pass_rate: file.min_pass_rate,
            no_regression: file.no_regression,
            max_unmeasured: file.max_unmeasured.unwrap_or(DEFAULT_MAX_UNMEASURED),
        })
    }

    /// Checks the gate against a metric's summary (and its comparison with a baseline, if any).
    pub fn check(&self, summary: &MetricSummary) -> Vec<GateResult> {
        let total = summary.measured + summary.unmeasured;
        let unmeasured_share = if total == 0 {
            1.0
        } else {
            summary.unmeasured as f64 / total as f64
        };
        let mut results = Vec::new();
        let mut demand = |what: String, outcome: Result<String, String>| {
            let (passed, detail) = match outcome {
                Ok(detail) => (true, detail),
                Err(detail) => (false, detail),
            };
            results.push(GateResult {
                gate: format!("{} {what}", self.metric),
                passed,
                detail,
            });
        };
        if unmeasured_share > self.max_unmeasured {
            demand(
                format!("unmeasured ≤ {:.0}%", self.max_unmeasured * 100.0),
                Err(format!(
                    "{} of {total} cases unmeasured ({:.0}%): too few scores to gate on; see the cases' reasons",
                    summary.unmeasured,
                    unmeasured_share * 100.0
                )),
            );
            return results;
        }
        let at_least = |value: Option<f64>, min: f64, what: &str| match value {
            Some(v) if v >= min => Ok(format!("{what} {v:.3}")),
            Some(v) => Err(format!("{what} {v:.3} is below {min}")),
            None => Err(format!("no {what}: nothing was measured")),
        };
        if let Some(min) = self.min_mean {
            demand(
                format!("mean ≥ {min}"),
                at_least(summary.mean.map(|e| e.value), min, "mean"),
            );
        }
        if let Some(min) = self.min_lower_bound {
            demand(
                format!("95% lower bound ≥ {min}"),
                at_least(summary.mean.map(|e| e.low), min, "lower bound"),
            );
        }
        if let Some(min) = self.min_pass_rate {
            demand(
                format!("pass rate ≥ {min}"),
                at_least(summary.pass_rate.map(|e| e.value), min, "pass rate"),
            );
        }
        if self.no_regression {
            let outcome = match &summary.versus_baseline {
                None => Err("no baseline run to compare with; pass --baseline RUN_ID".to_owned()),
                Some(diff) if diff.regressed() => Err(format!(
                    "regressed by {:.3} (95% interval {:.3} to {:.3}) over {} paired cases",
                    -diff.difference.value, diff.difference.low, diff.difference.high, diff.pairs
                )),
                Some(diff) => Ok(format!(
                    "difference {:+.3} (95% interval {:.3} to {:.3})",
                    diff.difference.value, diff.difference.low, diff.difference.high
                )),
            };
            demand("no significant regression".to_owned(), outcome);
        }
        results
    }
}
