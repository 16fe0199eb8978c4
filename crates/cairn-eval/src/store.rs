//! Runs in the catalog: a finished run is stored with its cases, scores, judge reasons and
//! aggregates (`eval_runs`, `eval_results`), so `cairn eval list/show` can read it back and a later
//! run can compare itself with it as a baseline.

use std::collections::BTreeMap;

use cairn_core::Catalog;
use cairn_core::catalog::{CatalogResult, EvalStatus, NewEvalResult};
use serde_json::json;
use uuid::Uuid;

use crate::metrics::Score;
use crate::report::{Baseline, RunReport};

/// Stores a run and sets its `run_id`.
pub async fn save(catalog: &dyn Catalog, report: &mut RunReport) -> CatalogResult<Uuid> {
    let run = catalog
        .create_eval_run(
            &report.suite,
            json!({"target": report.target, "baseline": report.baseline}),
        )
        .await?;
    for case in &report.cases {
        // The question as the pipeline kept it (redacted values as placeholders), where it says.
        let question = case
            .attempts
            .iter()
            .filter_map(|a| a.answer.as_ref())
            .map(|a| a.question.as_str())
            .find(|q| !q.is_empty())
            .unwrap_or(&case.case.question);
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
        "seconds": report.seconds,
        "repeat": report.repeat,
        "calls": report.calls,
        "cost_usd": report.cost_usd,
        "metrics": report.metrics,
        "gates": report.gates,
        "passed": report.passed,
        "cases": report.cases.len(),
        "flaky": report.flaky_cases().iter().map(|c| c.case.id.clone()).collect::<Vec<_>>(),
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
