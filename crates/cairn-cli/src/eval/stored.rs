//! `cairn eval compare` and `cairn eval show`: stored runs read back from the catalog.

use cairn_core::Catalog;
use cairn_eval::report::MetricSummary;
use cairn_eval::store;
use uuid::Uuid;

use super::{broken, metric_table, table};

pub(super) async fn compare(
    catalog: &dyn Catalog,
    before: Uuid,
    after: Uuid,
    json: bool,
) -> anyhow::Result<()> {
    let compared = store::compare(catalog, before, after)
        .await
        .map_err(broken)?
        .map_err(|missing| {
            broken(format!(
                "no eval run `{missing}`; `cairn eval list SUITE` lists a suite's runs"
            ))
        })?;
    if json {
        println!("{}", serde_json::to_string_pretty(&compared)?);
        return Ok(());
    }
    let (before_run, after_run) = (&compared.before, &compared.after);
    if before_run.suite != after_run.suite {
        println!(
            "note: comparing runs of different suites (`{}` and `{}`); only cases with the same id are paired",
            before_run.suite, after_run.suite
        );
    }
    println!(
        "{before} ({}) → {after} ({})",
        before_run.summary["target"].as_str().unwrap_or_default(),
        after_run.summary["target"].as_str().unwrap_or_default()
    );
    let mean = |m: Option<f64>| m.map_or_else(|| "-".to_owned(), |m| format!("{m:.3}"));
    let mut out = table(&[
        "metric",
        "before",
        "after",
        "difference [95% CI]",
        "pairs",
        "better",
        "worse",
    ]);
    for metric in &compared.metrics {
        let (difference, pairs, better, worse) = match &metric.comparison {
            Some(c) => (
                format!(
                    "{:+.3} [{:.3}, {:.3}]",
                    c.difference.value, c.difference.low, c.difference.high
                ),
                c.pairs.to_string(),
                c.better.join(", "),
                c.worse.join(", "),
            ),
            None => (
                "no paired cases".to_owned(),
                "0".to_owned(),
                String::new(),
                String::new(),
            ),
        };
        out.add_row(vec![
            metric.metric.clone(),
            mean(metric.before_mean),
            mean(metric.after_mean),
            difference,
            pairs,
            better,
            worse,
        ]);
    }
    println!("{out}");
    Ok(())
}

pub(super) async fn show(catalog: &dyn Catalog, id: Uuid, json: bool) -> anyhow::Result<()> {
    let run = catalog
        .get_eval_run(id)
        .await
        .map_err(broken)?
        .ok_or_else(|| {
            broken(format!(
                "no eval run `{id}`; `cairn eval list SUITE` lists a suite's runs"
            ))
        })?;
    let results = catalog.list_eval_results(id).await.map_err(broken)?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"run": run, "results": results}))?
        );
        return Ok(());
    }
    println!(
        "run {} of suite `{}`: {} ({})",
        run.id,
        run.suite,
        run.status.as_str(),
        run.summary["target"].as_str().unwrap_or_default()
    );
    let metrics: Vec<MetricSummary> =
        serde_json::from_value(run.summary["metrics"].clone()).unwrap_or_default();
    println!("{}", metric_table(&metrics));
    let mut cases = table(&["case", "passed", "scores"]);
    for result in results {
        cases.add_row(vec![
            result.case_id,
            if result.passed { "yes" } else { "no" }.to_owned(),
            result
                .metrics
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(name, score)| match score["value"].as_f64() {
                            Some(v) => format!("{name} {v:.2}"),
                            None => format!("{name} unmeasured"),
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default(),
        ]);
    }
    println!("{cases}");
    Ok(())
}
