//! Evaluation runs and results.

use std::sync::Arc;

use cairn_core::catalog::*;
use serde_json::json;
use uuid::Uuid;

use crate::{assert_conflict, assert_not_found};

pub async fn eval_runs(catalog: Arc<dyn Catalog>) {
    let older = catalog
        .create_eval_run("rag-smoke", json!({"app": "support"}))
        .await
        .expect("run");
    let run = catalog
        .create_eval_run(
            "rag-smoke",
            json!({"app": "support", "prompt": "rag_answer@2"}),
        )
        .await
        .expect("run");
    catalog
        .create_eval_run("other", json!({}))
        .await
        .expect("other suite");
    assert_eq!(run.status, EvalStatus::Running);

    for (case, passed) in [("q2", false), ("q1", true)] {
        catalog
            .record_eval_result(NewEvalResult {
                run_id: run.id,
                case_id: case.into(),
                passed,
                metrics: json!({"faithfulness": if passed { 0.9 } else { 0.2 }}),
                output: json!({"answer": "…"}),
            })
            .await
            .expect("result");
    }
    assert_conflict(
        catalog
            .record_eval_result(NewEvalResult {
                run_id: run.id,
                case_id: "q1".into(),
                passed: true,
                metrics: json!({}),
                output: json!({}),
            })
            .await,
        "recording a case twice",
    );
    assert_not_found(
        catalog
            .record_eval_result(NewEvalResult {
                run_id: Uuid::now_v7(),
                case_id: "q1".into(),
                passed: true,
                metrics: json!({}),
                output: json!({}),
            })
            .await,
        "a result of a missing run",
    );
    let results = catalog.list_eval_results(run.id).await.expect("results");
    assert_eq!(
        results
            .iter()
            .map(|r| (r.case_id.as_str(), r.passed))
            .collect::<Vec<_>>(),
        [("q1", true), ("q2", false)]
    );

    let finished = catalog
        .finish_eval_run(run.id, EvalStatus::Failed, json!({"pass_rate": 0.5}))
        .await
        .expect("finish");
    assert_eq!(finished.status, EvalStatus::Failed);
    assert!(finished.finished_at.is_some());
    assert_conflict(
        catalog
            .finish_eval_run(run.id, EvalStatus::Passed, json!({}))
            .await,
        "finishing twice",
    );
    assert_not_found(
        catalog
            .finish_eval_run(Uuid::now_v7(), EvalStatus::Passed, json!({}))
            .await,
        "finishing a missing run",
    );
    assert!(matches!(
        catalog
            .finish_eval_run(older.id, EvalStatus::Running, json!({}))
            .await,
        Err(CatalogError::Invalid(_))
    ));

    let runs: Vec<Uuid> = catalog
        .list_eval_runs(Some("rag-smoke"), 10)
        .await
        .expect("runs")
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(runs, [run.id, older.id], "newest first");
    assert_eq!(
        catalog
            .list_eval_runs(Some("rag-smoke"), 1)
            .await
            .expect("limited")
            .len(),
        1
    );
    let suites: Vec<String> = catalog
        .list_eval_runs(None, 10)
        .await
        .expect("every suite's runs")
        .into_iter()
        .map(|r| r.suite)
        .collect();
    assert_eq!(suites, ["other", "rag-smoke", "rag-smoke"], "newest first");
    assert_eq!(
        catalog.get_eval_run(run.id).await.expect("get"),
        Some(finished)
    );

    // The call cache: a miss, a hit, and a replaced answer.
    assert_eq!(catalog.cached_eval_call("k1").await.expect("miss"), None);
    catalog
        .cache_eval_call("k1", json!({"text": "yes"}))
        .await
        .expect("cache");
    catalog
        .cache_eval_call("k1", json!({"text": "no"}))
        .await
        .expect("replace");
    assert_eq!(
        catalog.cached_eval_call("k1").await.expect("hit"),
        Some(json!({"text": "no"}))
    );
}
