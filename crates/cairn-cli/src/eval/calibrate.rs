//! `cairn eval calibrate`: a judge's agreement with human labels, printed and stored.

use super::{CalibrateArgs, broken, table};
use cairn_eval::store;

pub(super) async fn calibrate(
    config: &cairn_runtime::config::Config,
    args: CalibrateArgs,
) -> anyhow::Result<()> {
    let cases = cairn_eval::calibrate::load(&args.labels).map_err(broken)?;
    let file = serde_json::from_value(serde_json::json!({
        "metric": args.metric,
        "prompt": args.prompt,
        "threshold": args.threshold,
    }))
    .map_err(|e| {
        broken(format!(
            "--metric {}: {e}; calibrate faithfulness, context_recall, answer_relevance or answer_correctness",
            args.metric
        ))
    })?;
    let metric = cairn_eval::calibrate::judged_metric(file, &cases).map_err(broken)?;
    let catalog = cairn_runtime::catalog::open_for_use(config)
        .await
        .map_err(broken)?;
    let result = calibrate_with(config, &catalog, &args, &metric, &cases).await;
    catalog.close().await;
    result
}

pub(super) async fn calibrate_with(
    config: &cairn_runtime::config::Config,
    catalog: &cairn_runtime::catalog::OpenCatalog,
    args: &CalibrateArgs,
    metric: &cairn_eval::metrics::Metric,
    cases: &[cairn_eval::calibrate::Labelled],
) -> anyhow::Result<()> {
    let runtime = super::runtime(config, catalog).await?;
    let pipeline_answerer = super::local_answerer(&runtime);
    let answerer = cairn_eval::CachingAnswerer::new(&pipeline_answerer, &*runtime.catalog);
    let judge = cairn_eval::metrics::JudgeSettings {
        route: args.judge.clone(),
        max_tokens: args.max_tokens,
    };
    let progress = super::Progress::new(&format!(
        "the calibration of the judge of {} ({}) on {} labelled answers",
        metric.name,
        args.judge,
        cases.len()
    ));
    let calibration = cairn_eval::calibrate::calibrate(
        &answerer,
        &judge,
        metric,
        cases,
        args.concurrency,
        &progress,
    )
    .await;
    progress.finish();
    let calibration = calibration.map_err(broken)?;
    let stored = if args.no_store {
        None
    } else {
        Some(
            store::save_calibration(&*runtime.catalog, &calibration)
                .await
                .map_err(broken)?,
        )
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"run_id": stored, "calibration": calibration})
            )?
        );
        return Ok(());
    }
    println!(
        "judge of {}: {}",
        calibration.metric,
        calibration.describe()
    );
    if let Some(agreement) = &calibration.agreement {
        let c = agreement.confusion;
        let mut matrix = table(&["", "judge: pass", "judge: fail"]);
        matrix.add_row(vec![
            "labelled pass".to_owned(),
            c.both_pass.to_string(),
            c.judge_only_fail.to_string(),
        ]);
        matrix.add_row(vec![
            "labelled fail".to_owned(),
            c.judge_only_pass.to_string(),
            c.both_fail.to_string(),
        ]);
        println!("{matrix}");
    }
    for miss in calibration.disagreements.iter().take(20) {
        let score = miss
            .score
            .map_or_else(|| "unmeasured".to_owned(), |s| format!("{s:.2}"));
        println!(
            "  {} ({}): labelled {}, judge {score}: {}",
            miss.id,
            miss.origin,
            if miss.label { "pass" } else { "fail" },
            miss.reason
        );
    }
    if let Some(id) = stored {
        println!("stored as run {id} (cairn eval show {id})");
    }
    Ok(())
}
