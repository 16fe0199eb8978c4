//! `[evals]`: online evaluation of production answers (`[[evals.online]]`) and its judge budget,
//! and suites attached to collections and prompts (`[[evals.continuous]]`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::ConfigError;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvalsSection {
    /// Judge calls online evaluation may make per minute, over every app; answers beyond it are
    /// not judged (counted in `cairn_eval_online_skipped_total`).
    pub online_judge_calls_per_minute: u32,
    /// Apps whose answers are judged, a sample of them, off the request path.
    pub online: Vec<OnlineSection>,
    /// Suites run when what they evaluate changes: a sync of a collection, a move of a prompt's
    /// label; each run is compared with the suite's previous one.
    pub continuous: Vec<ContinuousSection>,
}

/// `[[evals.continuous]]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContinuousSection {
    /// The suite file, relative to the working directory.
    pub suite: PathBuf,
    /// An ingest that adds, updates or removes documents of one of these runs the suite.
    #[serde(default)]
    pub collections: Vec<String>,
    /// A label move (or rollback) of one of these prompts runs the suite.
    #[serde(default)]
    pub prompts: Vec<String>,
}

impl Default for EvalsSection {
    fn default() -> Self {
        EvalsSection {
            online_judge_calls_per_minute: 60,
            online: Vec::new(),
            continuous: Vec::new(),
        }
    }
}

/// `[[evals.online]]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnlineSection {
    pub app: String,
    /// The share of fresh answers judged, in (0, 1].
    pub sample: f64,
    /// The model or route that judges.
    pub judge: String,
    /// Judged metrics that need no reference answer.
    #[serde(default = "default_metrics")]
    pub metrics: Vec<String>,
}

fn default_metrics() -> Vec<String> {
    vec!["faithfulness".to_owned(), "answer_relevance".to_owned()]
}

/// Metrics online evaluation can score: judged, and needing nothing but the answer.
pub const ONLINE_METRICS: [&str; 2] = ["faithfulness", "answer_relevance"];

/// Each online rule names an app and a judge that exist, a sample in (0, 1] and known metrics; an
/// app is evaluated by one rule.
pub(super) fn check_evals(
    evals: &EvalsSection,
    apps: &[String],
    callable: &[String],
    bad: &impl Fn(&str, String, &str) -> ConfigError,
) -> Result<(), ConfigError> {
    for (index, rule) in evals.online.iter().enumerate() {
        let key = |field: &str| format!("evals.online[{index}].{field}");
        if !apps.contains(&rule.app) {
            return Err(bad(
                &key("app"),
                format!("no app is named `{}`", rule.app),
                &format!("use one of: {}", list(apps, "(none: add [[apps]])")),
            ));
        }
        if evals.online[..index].iter().any(|r| r.app == rule.app) {
            return Err(bad(
                &key("app"),
                format!("app `{}` is evaluated online twice", rule.app),
                "keep one [[evals.online]] per app",
            ));
        }
        if !(rule.sample > 0.0 && rule.sample <= 1.0) {
            return Err(bad(
                &key("sample"),
                format!("{} is not a share of answers", rule.sample),
                "use a number above 0 and at most 1, e.g. 0.05 for one answer in twenty",
            ));
        }
        if !callable.contains(&rule.judge) {
            return Err(bad(
                &key("judge"),
                format!("no model or route is named `{}`", rule.judge),
                &format!("use one of: {}", list(callable, "(none: add [[models]])")),
            ));
        }
        if let Some(unknown) = rule
            .metrics
            .iter()
            .find(|m| !ONLINE_METRICS.contains(&m.as_str()))
        {
            return Err(bad(
                &key("metrics"),
                format!("`{unknown}` cannot be scored online"),
                &format!(
                    "use {} (metrics that need a reference answer run in eval suites)",
                    ONLINE_METRICS.join(" or ")
                ),
            ));
        }
    }
    for (index, rule) in evals.continuous.iter().enumerate() {
        let key = |field: &str| format!("evals.continuous[{index}].{field}");
        if rule.collections.is_empty() && rule.prompts.is_empty() {
            return Err(bad(
                &key("suite"),
                "nothing triggers it".into(),
                "list the `collections` whose syncs or the `prompts` whose label moves run the suite",
            ));
        }
        cairn_eval::Suite::load(&rule.suite).map_err(|e| {
            bad(
                &key("suite"),
                e.to_string(),
                "name an eval suite file that `cairn eval run FILE` accepts (paths are relative to the working directory)",
            )
        })?;
    }
    if !evals.online.is_empty() && evals.online_judge_calls_per_minute == 0 {
        return Err(bad(
            "evals.online_judge_calls_per_minute",
            "0 would judge nothing".into(),
            "use a positive number, or remove [[evals.online]]",
        ));
    }
    Ok(())
}

fn list(names: &[String], none: &str) -> String {
    if names.is_empty() {
        none.to_owned()
    } else {
        names.join(", ")
    }
}
