//! Runs in the catalog: a finished run is stored with its cases, scores, judge reasons and
//! aggregates (`eval_runs`, `eval_results`), so `cairn eval list/show` can read it back and a later
//! run can compare itself with it as a baseline.

use std::collections::BTreeMap;

use cairn_core::Catalog;
use cairn_core::catalog::{CatalogResult, EvalRun, EvalStatus, NewEvalResult};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use crate::calibrate::Calibration;
use crate::metrics::Score;
use crate::report::{self, Baseline, Comparison, MetricSummary, RunReport};

/// Stores a run and sets its `run_id`.
pub async fn save(catalog: &dyn Catalog, report: &mut RunReport) -> CatalogResult<Uuid> {
    let run = catalog
        .create_eval_run(
            &report.suite,
            json!({
                "target": report.target,
                "baseline": report.baseline,
                "prompt_pins": report.prompt_pins,
            }),
        )
        .await?;
    for case in &report.cases {
        let question = case.asked();
        catalog
            .record_eval_result(NewEvalResult {
                run_id: run.id,
                case_id: case.case.id.clone(),
                passed: case.passed,
                metrics: serde_json::to_value(&case.scores).unwrap_or_default(),
                output: json!({
                    "question": question,
                    "origin": case.case.origin,
                    "reference": case.case.reference,
                    "attempts": case.attempts,
                    "flaky": case.flaky,
                }),
            })
            .await?;
    }
    let status = if report.passed {
        EvalStatus::Passed
    } else {
        EvalStatus::Failed
    };
    catalog
        .finish_eval_run(run.id, status, summary(report))
        .await?;
    report.run_id = Some(run.id);
    Ok(run.id)
}

/// What the run's catalog row holds as its summary.
pub fn summary(report: &RunReport) -> serde_json::Value {
    json!({
        "target": report.target,
        "baseline": report.baseline,
        "prompt_pins": report.prompt_pins,
        "seconds": report.seconds,
        "repeat": report.repeat,
        "calls": report.calls,
        "cost_usd": report.cost_usd,
        "metrics": report.metrics,
        "gates": report.gates,
        "passed": report.passed,
        "cases": report.cases.len(),
        "flaky": report.flaky_cases().iter().map(|c| c.case.id.clone()).collect::<Vec<_>>(),
        "calibrations": report.calibrations,
        "pairwise": report.pairwise,
    })
}

/// A stored run's per-case scores, or `None` when there is no such run.
pub async fn baseline(catalog: &dyn Catalog, run_id: Uuid) -> CatalogResult<Option<Baseline>> {
    if catalog.get_eval_run(run_id).await?.is_none() {
        return Ok(None);
    }
    let scores = catalog
        .list_eval_results(run_id)
        .await?
        .into_iter()
        .map(|result| {
            let scores: BTreeMap<String, Score> =
                serde_json::from_value(result.metrics).unwrap_or_default();
            let values = scores
                .into_iter()
                .filter_map(|(name, score)| score.value().map(|v| (name, v)))
                .collect();
            (result.case_id, values)
        })
        .collect();
    Ok(Some(Baseline { run_id, scores }))
}

/// Two stored runs compared case by case (`cairn eval compare`, `GET /v1/evals/compare`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredComparison {
    pub before: EvalRun,
    pub after: EvalRun,
    /// Per metric of the later run.
    pub metrics: Vec<MetricComparison>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricComparison {
    pub metric: String,
    pub before_mean: Option<f64>,
    pub after_mean: Option<f64>,
    /// `None` when no case was measured in both runs.
    pub comparison: Option<Comparison>,
}

/// Compares two stored runs; `Err(id)` names a run that does not exist.
pub async fn compare(
    catalog: &dyn Catalog,
    before: Uuid,
    after: Uuid,
) -> CatalogResult<Result<StoredComparison, Uuid>> {
    let (Some(before_scores), Some(before_run)) = (
        baseline(catalog, before).await?,
        catalog.get_eval_run(before).await?,
    ) else {
        return Ok(Err(before));
    };
    let (Some(after_scores), Some(after_run)) = (
        baseline(catalog, after).await?,
        catalog.get_eval_run(after).await?,
    ) else {
        return Ok(Err(after));
    };
    let summaries = |run: &EvalRun| -> Vec<MetricSummary> {
        serde_json::from_value(run.summary["metrics"].clone()).unwrap_or_default()
    };
    let (before_metrics, after_metrics) = (summaries(&before_run), summaries(&after_run));
    let mean = |metrics: &[MetricSummary], name: &str| {
        metrics
            .iter()
            .find(|m| m.name == name)
            .and_then(|m| m.mean)
            .map(|e| e.value)
    };
    let names: Vec<String> = after_metrics.iter().map(|m| m.name.clone()).collect();
    let metrics = report::compare_runs(&before_scores, &after_scores, &names)
        .into_iter()
        .map(|(metric, comparison)| MetricComparison {
            before_mean: mean(&before_metrics, &metric),
            after_mean: mean(&after_metrics, &metric),
            metric,
            comparison,
        })
        .collect();
    Ok(Ok(StoredComparison {
        before: before_run,
        after: after_run,
        metrics,
    }))
}

/// Calibrations are stored as eval runs of the suite `calibration:PROMPT`, so they are listed and
/// shown like any run.
pub const CALIBRATION_SUITE: &str = "calibration:";

fn prompt_name(prompt: &str) -> &str {
    prompt.split_once('@').map_or(prompt, |(name, _)| name)
}

/// Stores a calibration with its judge prompt and version.
pub async fn save_calibration(
    catalog: &dyn Catalog,
    calibration: &Calibration,
) -> CatalogResult<Uuid> {
    let suite = format!("{CALIBRATION_SUITE}{}", prompt_name(&calibration.prompt));
    let run = catalog
        .create_eval_run(
            &suite,
            json!({
                "target": format!("judge:{}", calibration.judge),
                "metric": calibration.metric,
                "prompt": calibration.prompt,
                "prompt_version": calibration.prompt_version,
            }),
        )
        .await?;
    let summary = serde_json::to_value(calibration).unwrap_or_default();
    catalog
        .finish_eval_run(run.id, EvalStatus::Passed, summary)
        .await?;
    Ok(run.id)
}

/// A judge prompt's latest stored calibration, without its list of disagreements.
pub async fn latest_calibration(
    catalog: &dyn Catalog,
    prompt: &str,
) -> CatalogResult<Option<(Uuid, Calibration)>> {
    let suite = format!("{CALIBRATION_SUITE}{}", prompt_name(prompt));
    let Some(run) = catalog
        .list_eval_runs(Some(&suite), 1)
        .await?
        .into_iter()
        .next()
    else {
        return Ok(None);
    };
    let Ok(mut calibration) = serde_json::from_value::<Calibration>(run.summary) else {
        return Ok(None);
    };
    calibration.disagreements.clear();
    Ok(Some((run.id, calibration)))
}
