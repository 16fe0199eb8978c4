//! Online evaluation (`[[evals.online]]`): a configured share of each app's fresh answers is judged
//! off the request path, within a budget of judge calls per minute. Each score lands on the
//! answer's lineage record (`GET /v1/lineage/{id}` shows it) and in the metrics
//! (`cairn_eval_online_score{app, metric}`, a histogram), so a panel shows quality drifting after a
//! document sync or a model change, and an alert can fire on a falling rolling mean.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use cairn_core::Catalog;
use cairn_core::catalog::LineageScore;
use cairn_core::eval::{Answered, Answerer, EvalAnswer, OnlineEvaluator};
use serde_json::Map;

use crate::dataset::Case;
use crate::metrics::{Check, JudgeSettings, Metric, Score};

/// One app's online evaluation.
#[derive(Debug, Clone)]
pub struct OnlineRule {
    pub app: String,
    /// The share of fresh answers judged, in (0, 1].
    pub sample: f64,
    pub judge: JudgeSettings,
    /// Judged metrics that need no reference (faithfulness, answer relevance).
    pub metrics: Vec<Metric>,
}

/// Judges a sample of production answers; the answerer (the pipeline) is bound once it exists.
pub struct OnlineEval {
    /// Shared with the judging tasks, so sampling an answer copies no metric.
    rules: Vec<Arc<OnlineRule>>,
    catalog: Arc<dyn Catalog>,
    answerer: OnceLock<Arc<dyn Answerer>>,
    budget: Budget,
}

/// Judge calls allowed per minute, over every app.
#[derive(Debug)]
struct Budget {
    per_minute: u32,
    window: Mutex<(Instant, u32)>,
}

impl Budget {
    /// Takes `calls` judge calls from this minute's allowance, or says there are not enough.
    fn take(&self, calls: u32) -> bool {
        let Ok(mut window) = self.window.lock() else {
            return false;
        };
        if window.0.elapsed() >= Duration::from_secs(60) {
            *window = (Instant::now(), 0);
        }
        if window.1 + calls > self.per_minute {
            return false;
        }
        window.1 += calls;
        true
    }
}

impl std::fmt::Debug for OnlineEval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnlineEval")
            .field("rules", &self.rules)
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

impl OnlineEval {
    pub fn new(rules: Vec<OnlineRule>, catalog: Arc<dyn Catalog>, per_minute: u32) -> OnlineEval {
        OnlineEval {
            rules: rules.into_iter().map(Arc::new).collect(),
            catalog,
            answerer: OnceLock::new(),
            budget: Budget {
                per_minute,
                window: Mutex::new((Instant::now(), 0)),
            },
        }
    }

    /// Gives it the answerer its judges are called through (the pipeline it observes).
    pub fn bind(&self, answerer: Arc<dyn Answerer>) {
        let _ = self.answerer.set(answerer);
    }
}

impl OnlineEvaluator for OnlineEval {
    fn observe(&self, answered: Answered) {
        let Some(rule) = self.rules.iter().find(|r| r.app == answered.app) else {
            return;
        };
        if fastrand::f64() >= rule.sample {
            return;
        }
        let Some(answerer) = self.answerer.get().cloned() else {
            return;
        };
        let calls = u32::try_from(rule.metrics.len()).unwrap_or(u32::MAX);
        if !self.budget.take(calls) {
            metrics::counter!("cairn_eval_online_skipped_total", "app" => answered.app.clone(), "reason" => "budget")
                .increment(1);
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (rule, catalog) = (rule.clone(), self.catalog.clone());
        runtime.spawn(async move { judge(rule, answerer, catalog, answered).await });
    }
}

/// Judges one answer by every metric of its rule and records the scores.
async fn judge(
    rule: Arc<OnlineRule>,
    answerer: Arc<dyn Answerer>,
    catalog: Arc<dyn Catalog>,
    answered: Answered,
) {
    let case = Case {
        id: answered.lineage_id.to_string(),
        question: answered.question.clone(),
        variables: Map::new(),
        reference: None,
        gold: Vec::new(),
        tags: Vec::new(),
        origin: format!("lineage {}", answered.lineage_id),
        given: None,
    };
    let answer = EvalAnswer {
        text: answered.answer.clone(),
        question: answered.question.clone(),
        passages: answered.passages.clone(),
        lineage_id: Some(answered.lineage_id),
        ..EvalAnswer::default()
    };
    for metric in &rule.metrics {
        let Check::Judged(judged) = &metric.check else {
            continue;
        };
        let score = match judged
            .score(answerer.as_ref(), &rule.judge, &case, &answer, false)
            .await
        {
            Ok(judgement) => judgement.score,
            Err(e) => Score::unmeasured(format!("the judge cannot be called: {e}")),
        };
        match score.value() {
            Some(value) => metrics::histogram!(
                "cairn_eval_online_score",
                "app" => rule.app.clone(),
                "metric" => metric.name.clone()
            )
            .record(value),
            None => metrics::counter!(
                "cairn_eval_online_unmeasured_total",
                "app" => rule.app.clone(),
                "metric" => metric.name.clone()
            )
            .increment(1),
        }
        let record = LineageScore {
            lineage_id: answered.lineage_id,
            metric: metric.name.clone(),
            score: score.value(),
            reason: score.reason().unwrap_or_default().to_owned(),
            judge: rule.judge.route.clone(),
            created_at: chrono::Utc::now(),
        };
        if let Err(e) = catalog.record_lineage_score(record).await {
            tracing::warn!(error = %e, lineage_id = %answered.lineage_id, "could not store an online eval score");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_refuses_calls_past_the_minute_s_allowance() {
        let budget = Budget {
            per_minute: 5,
            window: Mutex::new((Instant::now(), 0)),
        };
        assert!(budget.take(2));
        assert!(budget.take(3));
        assert!(!budget.take(1), "the minute's five calls are spent");
        if let Ok(mut window) = budget.window.lock() {
            window.0 -= Duration::from_secs(61);
        }
        assert!(budget.take(1), "a new minute, a new allowance");
    }
}
