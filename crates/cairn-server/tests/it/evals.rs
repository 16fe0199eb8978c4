//! Eval runs over REST (list, one run, two compared) and eval-gated prompt labels over
//! `PUT /v1/prompts/NAME/labels/LABEL`: refused without a run, refused with a run that does not
//! vouch for the version, moved with one that does.

use std::sync::Arc;

use axum::http::StatusCode;
use cairn_core::Catalog;
use cairn_core::catalog::{EvalStatus, NewEvalResult};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{PROMPT, check_error, json_request, publish_body, test_app};

/// A finished run of `suite` with one case scored `faithfulness` = `value`, pinned at `pins`.
async fn stored_run(
    catalog: &dyn Catalog,
    suite: &str,
    pins: Value,
    value: f64,
    passed: bool,
) -> Uuid {
    let run = catalog
        .create_eval_run(suite, json!({"target": "app:docs", "prompt_pins": pins}))
        .await
        .expect("run");
    catalog
        .record_eval_result(NewEvalResult {
            run_id: run.id,
            case_id: "sqlite".into(),
            passed,
            metrics: json!({"faithfulness": {"status": "measured", "value": value}}),
            output: json!({}),
        })
        .await
        .expect("result");
    let status = if passed {
        EvalStatus::Passed
    } else {
        EvalStatus::Failed
    };
    catalog
        .finish_eval_run(
            run.id,
            status,
            json!({"target": "app:docs", "metrics": [{
                "name": "faithfulness", "threshold": 0.5, "measured": 1, "unmeasured": 0,
                "mean": {"value": value, "low": value, "high": value}, "pass_rate": null
            }]}),
        )
        .await
        .expect("finish");
    run.id
}

#[tokio::test]
async fn eval_runs_are_listed_shown_and_compared() {
    let test = test_app(64 * 1024).await;
    let catalog = test.state.catalog.as_ref();
    let before = stored_run(catalog, "docs", json!({}), 0.5, true).await;
    let after = stored_run(catalog, "docs", json!({}), 1.0, true).await;
    stored_run(catalog, "smoke", json!({}), 1.0, true).await;

    let (status, body) = json_request(&test.app, "GET", "/v1/evals/runs", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"].as_array().map(Vec::len), Some(3), "{body}");
    let (_, body) = json_request(&test.app, "GET", "/v1/evals/runs?suite=docs&limit=1", None).await;
    let ids: Vec<&str> = body["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["id"].as_str())
        .collect();
    assert_eq!(ids, [after.to_string()], "newest first: {body}");
    let (status, body) = json_request(&test.app, "GET", "/v1/evals/runs?limit=0", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    check_error(&body, "invalid_request_error", "invalid_limit");

    let (status, body) =
        json_request(&test.app, "GET", &format!("/v1/evals/runs/{before}"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["run"]["status"], "passed");
    assert_eq!(body["results"][0]["case_id"], "sqlite");
    let (status, body) = json_request(&test.app, "GET", "/v1/evals/runs/yesterday", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    check_error(&body, "invalid_request_error", "invalid_run_id");
    let (status, body) = json_request(
        &test.app,
        "GET",
        &format!("/v1/evals/runs/{}", Uuid::now_v7()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    check_error(&body, "not_found_error", "eval_run_not_found");

    let (status, body) = json_request(
        &test.app,
        "GET",
        &format!("/v1/evals/compare?before={before}&after={after}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let faithfulness = &body["metrics"][0];
    assert_eq!(faithfulness["metric"], "faithfulness", "{body}");
    assert_eq!(
        (
            faithfulness["before_mean"].as_f64(),
            faithfulness["after_mean"].as_f64()
        ),
        (Some(0.5), Some(1.0))
    );
    assert_eq!(
        faithfulness["comparison"]["better"],
        json!(["sqlite"]),
        "{body}"
    );
    let (status, body) = json_request(
        &test.app,
        "GET",
        &format!("/v1/evals/compare?before={before}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        check_error(&body, "invalid_request_error", "missing_run_id")
            .contains("`after` is required")
    );
}

#[tokio::test]
async fn gated_labels_move_only_with_a_run_that_vouches_for_the_version() {
    let mut test = test_app(64 * 1024).await;
    test.state.prompts = cairn_prompts::PromptRegistry::with_gates(
        test.state.catalog.clone(),
        cairn_prompts::RenderLimits::default(),
        std::time::Duration::from_secs(60),
        vec![cairn_prompts::LabelGate {
            prompt: "support".into(),
            label: "production".into(),
            suite: "docs".into(),
        }],
    );
    let app = cairn_server::router(test.state.clone());
    for source in [
        PROMPT.to_owned(),
        PROMPT.replace("Be helpful.", "Be very helpful."),
    ] {
        let (status, body) = json_request(
            &app,
            "POST",
            "/v1/prompts/support/versions",
            Some(&publish_body(&source)),
        )
        .await;
        assert!(status.is_success(), "{body}");
    }
    let catalog: Arc<dyn Catalog> = test.state.catalog.clone();

    let (status, body) = json_request(
        &app,
        "PUT",
        "/v1/prompts/support/labels/production",
        Some(r#"{"version": 2}"#),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let message = check_error(&body, "invalid_request_error", "label_gated");
    assert!(
        message.contains("eval suite `docs`") && message.contains("eval_run"),
        "{message}"
    );

    // A failed run, a run of v1, and a run of another suite do not vouch for v2.
    let failed = stored_run(catalog.as_ref(), "docs", json!({"support": 2}), 0.0, false).await;
    let of_v1 = stored_run(catalog.as_ref(), "docs", json!({"support": 1}), 1.0, true).await;
    let elsewhere = stored_run(catalog.as_ref(), "smoke", json!({"support": 2}), 1.0, true).await;
    for (run, expected) in [
        (failed, "did not pass"),
        (of_v1, "not support v2"),
        (elsewhere, "is of suite `smoke`"),
    ] {
        let (status, body) = json_request(
            &app,
            "PUT",
            "/v1/prompts/support/labels/production",
            Some(&json!({"version": 2, "eval_run": run}).to_string()),
        )
        .await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        let message = check_error(&body, "invalid_request_error", "label_gated");
        assert!(message.contains(expected), "{expected}: {message}");
    }

    // Other labels are not gated.
    let (status, body) = json_request(
        &app,
        "PUT",
        "/v1/prompts/support/labels/staging",
        Some(r#"{"version": 2}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let passed = stored_run(catalog.as_ref(), "docs", json!({"support": 2}), 1.0, true).await;
    let (status, body) = json_request(
        &app,
        "PUT",
        "/v1/prompts/support/labels/production",
        Some(&json!({"version": 2, "eval_run": passed, "reason": "suite passed"}).to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["eval_run"], passed.to_string(), "{body}");
    let history = catalog
        .prompt_label_history("support")
        .await
        .expect("history");
    let production = history
        .iter()
        .find(|m| m.label == "production")
        .expect("moved");
    assert_eq!(
        (production.to_version, production.eval_run),
        (2, Some(passed))
    );
}
