//! The eval tool's arguments and structured output: a suite run on request, summarised for an
//! agent (metrics, gates, the failing cases with their reasons).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunSuiteArgs {
    /// Suite file name, without .yaml.
    pub suite: String,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct MetricOut {
    pub name: String,
    /// `None` when no case was measured.
    pub mean: Option<f64>,
    pub measured: u64,
    pub unmeasured: u64,
}

/// What a suite run found, one entry per target.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct EvalSuiteOutput {
    pub suite: String,
    /// Every gate of every target held.
    pub passed: bool,
    pub runs: Vec<SuiteRunOut>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SuiteRunOut {
    /// The stored run (`list_eval_runs`, `cairn eval show`).
    pub run_id: Option<String>,
    pub target: String,
    pub passed: bool,
    pub metrics: Vec<MetricOut>,
    pub gates: Vec<GateOut>,
    /// At most 20, with why each failed.
    pub failing_cases: Vec<FailingCaseOut>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct GateOut {
    pub gate: String,
    pub passed: bool,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct FailingCaseOut {
    pub case: String,
    pub reasons: Vec<String>,
}
