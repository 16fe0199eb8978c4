//! Metrics: what a suite measures about each answer. Deterministic checks and retrieval metrics
//! need no model; judged metrics ask a judge through a registered prompt. Every metric gives a
//! [`Score`] in 0..=1 or says why it could not measure one: unmeasured is never zero.

mod deterministic;
mod judged;
mod retrieval;
mod rubric;
mod similarity;
mod trajectory;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::dataset::Case;
use crate::error::SuiteError;

pub use judged::{JudgeSettings, Judged};
pub use rubric::{Criterion, CriterionFile, Rubric};
pub use similarity::Similarity;

/// A metric as written in a suite file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricFile {
    pub metric: MetricKind,
    /// How the report names it (default: the metric, with `@k` for retrieval metrics).
    #[serde(default)]
    pub name: Option<String>,
    /// A case passes the metric when its score is at least this (default: 1 for pass/fail checks,
    /// 0.5 for graded ones).
    #[serde(default)]
    pub threshold: Option<f64>,
    /// `equals`, `similarity`: the expected answer (default: the case's reference); `contains`:
    /// one value.
    #[serde(default)]
    pub value: Option<String>,
    /// `contains`: several values, any (default) or all of them (`all: true`).
    #[serde(default)]
    pub values: Vec<String>,
    #[serde(default)]
    pub all: bool,
    #[serde(default)]
    pub ignore_case: bool,
    /// `regex`.
    #[serde(default)]
    pub pattern: Option<String>,
    /// `json_schema`: the schema the answer must match.
    #[serde(default)]
    pub schema: Option<Value>,
    /// `length`: characters; `latency`: milliseconds; `cost`: US dollars.
    #[serde(default)]
    pub min: Option<f64>,
    #[serde(default)]
    pub max: Option<f64>,
    /// Retrieval metrics: how many passages count (default 5).
    #[serde(default)]
    pub k: Option<usize>,
    /// Judged metrics: the registered judge prompt (`name@label`, `name@3`), default the built-in
    /// `eval_<metric>@production`.
    #[serde(default)]
    pub prompt: Option<String>,
    /// `rubric`: what the judge scores, each a sentence or `{name, description}`.
    #[serde(default)]
    pub criteria: Vec<CriterionFile>,
    /// `rubric`: criteria are scored from 1 to this (default 5).
    #[serde(default)]
    pub scale: Option<u8>,
    /// `tool_called`, `tool_not_called`: the tool, as the agent's model sees it (`search`,
    /// `SERVER__TOOL`).
    #[serde(default)]
    pub tool: Option<String>,
    /// `tool_called`: values the call's arguments must have (a JSON object; each key present
    /// with this value, strings compared without case; extra arguments are fine).
    #[serde(default)]
    pub arguments: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    Equals,
    Contains,
    Regex,
    JsonValid,
    JsonSchema,
    Length,
    Latency,
    Cost,
    RecallAtK,
    PrecisionAtK,
    Mrr,
    NdcgAtK,
    Faithfulness,
    AnswerRelevance,
    AnswerCorrectness,
    ContextRecall,
    Similarity,
    Rubric,
    ToolCalled,
    ToolNotCalled,
    StepCount,
}

impl MetricKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Equals => "equals",
            MetricKind::Contains => "contains",
            MetricKind::Regex => "regex",
            MetricKind::JsonValid => "json_valid",
            MetricKind::JsonSchema => "json_schema",
            MetricKind::Length => "length",
            MetricKind::Latency => "latency",
            MetricKind::Cost => "cost",
            MetricKind::RecallAtK => "recall_at_k",
            MetricKind::PrecisionAtK => "precision_at_k",
            MetricKind::Mrr => "mrr",
            MetricKind::NdcgAtK => "ndcg_at_k",
            MetricKind::Faithfulness => "faithfulness",
            MetricKind::AnswerRelevance => "answer_relevance",
            MetricKind::AnswerCorrectness => "answer_correctness",
            MetricKind::ContextRecall => "context_recall",
            MetricKind::Similarity => "similarity",
            MetricKind::Rubric => "rubric",
            MetricKind::ToolCalled => "tool_called",
            MetricKind::ToolNotCalled => "tool_not_called",
            MetricKind::StepCount => "step_count",
        }
    }
}

/// A metric ready to score.
#[derive(Debug, Clone)]
pub struct Metric {
    pub name: String,
    pub threshold: f64,
    pub check: Check,
}

/// What a metric does.
#[derive(Debug, Clone)]
pub enum Check {
    Deterministic(deterministic::Deterministic),
    Retrieval(retrieval::Retrieval),
    Judged(Judged),
    /// Embedding similarity to a reference, through the answerer's embedding model.
    Similarity(Similarity),
}

impl Check {
    /// Whether scoring calls a judge.
    pub fn is_judged(&self) -> bool {
        matches!(self, Check::Judged(_))
    }
}

/// One score, or why there is none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Score {
    Measured {
        value: f64,
        /// The judge's reason, or what the check found.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    Unmeasured {
        reason: String,
    },
}

impl Score {
    pub fn measured(value: f64) -> Score {
        Score::Measured {
            value,
            reason: None,
        }
    }

    pub fn because(value: f64, reason: impl Into<String>) -> Score {
        Score::Measured {
            value,
            reason: Some(reason.into()),
        }
    }

    pub fn unmeasured(reason: impl Into<String>) -> Score {
        Score::Unmeasured {
            reason: reason.into(),
        }
    }

    pub fn value(&self) -> Option<f64> {
        match self {
            Score::Measured { value, .. } => Some(*value),
            Score::Unmeasured { .. } => None,
        }
    }

    pub fn reason(&self) -> Option<&str> {
        match self {
            Score::Measured { reason, .. } => reason.as_deref(),
            Score::Unmeasured { reason } => Some(reason),
        }
    }
}

impl Metric {
    /// Validates a metric against the suite's cases: a metric that needs a field some case lacks
    /// is refused here, before any model call. `origin` is `file:line` of the metric.
    pub fn build(file: MetricFile, cases: &[Case], origin: &str) -> Result<Metric, SuiteError> {
        let kind = file.metric;
        let invalid = |message: String| SuiteError::Invalid {
            origin: origin.to_owned(),
            message: format!("metric `{}`: {message}", kind.as_str()),
        };
        let needs = |field: &str, has: &dyn Fn(&Case) -> bool| -> Result<(), SuiteError> {
            match cases.iter().find(|c| !has(c)) {
                Some(case) => Err(invalid(format!(
                    "needs a {field} in every case, and case `{}` ({}) has none; add it, or drop the metric",
                    case.id, case.origin
                ))),
                None => Ok(()),
            }
        };
        let check = match kind {
            MetricKind::Equals
            | MetricKind::Contains
            | MetricKind::Regex
            | MetricKind::JsonValid
            | MetricKind::JsonSchema
            | MetricKind::Length
            | MetricKind::Latency
            | MetricKind::Cost
            | MetricKind::ToolCalled
            | MetricKind::ToolNotCalled
            | MetricKind::StepCount => {
                if kind == MetricKind::Equals && file.value.is_none() {
                    needs("reference answer", &|c| c.reference.is_some())?;
                }
                Check::Deterministic(deterministic::Deterministic::build(&file).map_err(invalid)?)
            }
            MetricKind::RecallAtK
            | MetricKind::PrecisionAtK
            | MetricKind::Mrr
            | MetricKind::NdcgAtK => {
                needs("gold passage (gold or file)", &|c| !c.gold.is_empty())?;
                Check::Retrieval(retrieval::Retrieval::build(kind, file.k).map_err(invalid)?)
            }
            MetricKind::Faithfulness
            | MetricKind::AnswerRelevance
            | MetricKind::AnswerCorrectness
            | MetricKind::ContextRecall => {
                if matches!(
                    kind,
                    MetricKind::AnswerCorrectness | MetricKind::ContextRecall
                ) {
                    needs("reference answer", &|c| c.reference.is_some())?;
                }
                Check::Judged(Judged::build(kind, file.prompt.clone(), None).map_err(invalid)?)
            }
            MetricKind::Rubric => {
                let rubric = Rubric::build(&file.criteria, file.scale).map_err(invalid)?;
                Check::Judged(
                    Judged::build(kind, file.prompt.clone(), Some(rubric)).map_err(invalid)?,
                )
            }
            MetricKind::Similarity => {
                if file.value.is_none() {
                    needs("reference answer", &|c| c.reference.is_some())?;
                }
                Check::Similarity(Similarity {
                    value: file.value.clone(),
                })
            }
        };
        let graded = matches!(
            check,
            Check::Judged(_)
                | Check::Retrieval(_)
                | Check::Deterministic(deterministic::Deterministic::Contains { all: true, .. })
        );
        let threshold = file.threshold.unwrap_or(match check {
            // Sentence embeddings of paraphrases sit well above 0.5.
            Check::Similarity(_) => 0.8,
            _ if graded => 0.5,
            _ => 1.0,
        });
        if !(0.0..=1.0).contains(&threshold) {
            return Err(invalid(format!(
                "threshold {threshold} is outside 0..1; scores run from 0 to 1"
            )));
        }
        let name = file.name.clone().unwrap_or_else(|| match &check {
            Check::Retrieval(r) => r.name(),
            _ => kind.as_str().to_owned(),
        });
        Ok(Metric {
            name,
            threshold,
            check,
        })
    }

    /// Scores what needs no judge; judged metrics go through [`Judged::score`].
    pub fn score_locally(&self, case: &Case, answer: &cairn_core::eval::EvalAnswer) -> Score {
        match &self.check {
            Check::Deterministic(check) => check.score(case, answer),
            Check::Retrieval(check) => check.score(case, &answer.passages),
            Check::Judged(_) => Score::unmeasured("a judged metric is scored by its judge"),
            Check::Similarity(_) => {
                Score::unmeasured("a similarity is scored with the embedding model")
            }
        }
    }
}
