//! `cairn eval`: run suites (`run FILE|DIR`), list a suite's stored runs, show one, compare two.
//! Exit codes: 0 every gate held, 1 a gate failed, 2 the suite could not run (bad file, target or
//! judge missing, catalog unreachable).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cairn_core::Catalog;
use cairn_eval::report::{MetricSummary, RunReport, junit};
use cairn_eval::{Observer, RunOptions, Suite, store};
use clap::{Args, Subcommand};
use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use indicatif::{ProgressBar, ProgressStyle};
use uuid::Uuid;

#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// Run a suite file, or every suite in a directory: `cairn eval run evals/`.
    Run(RunArgs),
    /// A suite's stored runs, newest first.
    List {
        suite: String,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// A stored run: its aggregates, gates and cases.
    Show {
        run: Uuid,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// A suite file (YAML) or a directory of them.
    pub path: PathBuf,
    /// Runs every case this many times (overrides the suite's `repeat`); flaky verdicts are listed.
    #[arg(long)]
    pub repeat: Option<u32>,
    /// Compares with a stored run, case by case (gates with `no_regression` need one).
    #[arg(long, value_name = "RUN_ID")]
    pub baseline: Option<Uuid>,
    /// Every call goes to a model: answers cached by an identical earlier call are not used.
    #[arg(long)]
    pub fresh: bool,
    /// Prints the full report as JSON on stdout instead of the summary.
    #[arg(long)]
    pub json: bool,
    /// Writes JUnit XML (one test case per case and per gate) for CI.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Does not store the run in the catalog.
    #[arg(long)]
    pub no_store: bool,
}

/// How `cairn eval` ends: the exit code and what to say.
#[derive(Debug)]
pub struct Exit {
    pub code: u8,
    pub message: String,
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}

fn broken(message: impl std::fmt::Display) -> anyhow::Error {
    anyhow::Error::new(Exit {
        code: 2,
        message: message.to_string(),
    })
}

pub async fn run(
    config: &cairn_runtime::config::Config,
    command: EvalCommand,
) -> anyhow::Result<()> {
    match command {
        EvalCommand::Run(args) => run_suites(config, args).await,
        EvalCommand::List { suite, limit, json } => {
            let catalog = cairn_runtime::catalog::open_for_use(config)
                .await
                .map_err(broken)?;
            let runs = catalog.as_dyn().list_eval_runs(&suite, limit).await;
            catalog.close().await;
            let runs = runs.map_err(broken)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&runs)?);
                return Ok(());
            }
            if runs.is_empty() {
                println!("no stored runs of suite `{suite}`; run one with `cairn eval run FILE`");
                return Ok(());
            }
            let mut table = table(&["run", "started", "status", "target", "cases"]);
            for run in runs {
                table.add_row(vec![
                    run.id.to_string(),
                    run.started_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                    run.status.as_str().to_owned(),
                    run.summary["target"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    run.summary["cases"].to_string(),
                ]);
            }
            println!("{table}");
            Ok(())
        }
        EvalCommand::Show { run, json } => {
            let catalog = cairn_runtime::catalog::open_for_use(config)
                .await
                .map_err(broken)?;
            let found = show(&*catalog.as_dyn(), run, json).await;
            catalog.close().await;
            found
        }
    }
}

async fn show(catalog: &dyn Catalog, id: Uuid, json: bool) -> anyhow::Result<()> {
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

async fn run_suites(config: &cairn_runtime::config::Config, args: RunArgs) -> anyhow::Result<()> {
    let files = Suite::files(&args.path).map_err(broken)?;
    let suites = files
        .iter()
        .map(|file| Suite::load(file))
        .collect::<Result<Vec<_>, _>>()
        .map_err(broken)?;
    let catalog = cairn_runtime::catalog::open_for_use(config)
        .await
        .map_err(broken)?;
    let result = run_loaded(config, &catalog, &suites, &args).await;
    catalog.close().await;
    result
}

async fn run_loaded(
    config: &cairn_runtime::config::Config,
    catalog: &cairn_runtime::catalog::OpenCatalog,
    suites: &[Suite],
    args: &RunArgs,
) -> anyhow::Result<()> {
    let runtime = cairn_runtime::Runtime::build(config, catalog)
        .await
        .map_err(broken)?;
    let answerer =
        cairn_app::PipelineAnswerer::new(runtime.pipeline.clone(), cairn_core::Principal::local());
    let baseline = match args.baseline {
        None => None,
        Some(id) => Some(
            store::baseline(&*runtime.catalog, id)
                .await
                .map_err(broken)?
                .ok_or_else(|| broken(format!("no stored eval run `{id}` to compare with; `cairn eval list SUITE` lists runs")))?,
        ),
    };
    let options = RunOptions {
        repeat: args.repeat,
        fresh: args.fresh,
        baseline,
    };
    let mut reports = Vec::new();
    for suite in suites {
        for target in &suite.targets {
            let progress = Progress::new(&format!("{} · {target}", suite.name));
            let report = cairn_eval::run(suite, target, &answerer, &options, &progress).await;
            progress.finish();
            let mut report = report.map_err(broken)?;
            if !args.no_store {
                store::save(&*runtime.catalog, &mut report)
                    .await
                    .map_err(|e| {
                        broken(format!("the run finished but could not be stored: {e}"))
                    })?;
            }
            if !args.json {
                print_summary(&report);
            }
            reports.push(report);
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    }
    if let Some(path) = &args.junit {
        let xml = junit::render(&reports).map_err(broken)?;
        std::fs::write(path, xml)
            .map_err(|e| broken(format!("cannot write {}: {e}", path.display())))?;
    }
    let failed: Vec<String> = reports
        .iter()
        .filter(|r| !r.passed)
        .map(|r| format!("{} ({})", r.suite, r.target))
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(anyhow::Error::new(Exit {
            code: 1,
            message: format!("gates failed: {}", failed.join(", ")),
        }))
    }
}

fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.to_vec());
    table
}

fn metric_table(metrics: &[MetricSummary]) -> Table {
    let mut table = table(&[
        "metric",
        "mean [95% CI]",
        "pass rate [95% CI]",
        "measured",
        "vs baseline",
    ]);
    for metric in metrics {
        let estimate = |e: Option<cairn_eval::stats::Estimate>| match e {
            Some(e) => format!("{:.3} [{:.3}, {:.3}]", e.value, e.low, e.high),
            None => "unmeasured".to_owned(),
        };
        table.add_row(vec![
            metric.name.clone(),
            estimate(metric.mean),
            estimate(metric.pass_rate),
            format!(
                "{} of {}",
                metric.measured,
                metric.measured + metric.unmeasured
            ),
            match &metric.versus_baseline {
                Some(c) => format!(
                    "{:+.3} [{:.3}, {:.3}]; {} better, {} worse",
                    c.difference.value,
                    c.difference.low,
                    c.difference.high,
                    c.better.len(),
                    c.worse.len()
                ),
                None => "-".to_owned(),
            },
        ]);
    }
    table
}

fn print_summary(report: &RunReport) {
    println!(
        "suite `{}` on {}: {} cases × {} in {:.1} s; {} target and {} judge calls ({} from the cache), ${:.4}",
        report.suite,
        report.target,
        report.cases.len(),
        report.repeat,
        report.seconds,
        report.calls.target,
        report.calls.judge,
        report.calls.cached,
        report.cost_usd
    );
    println!("{}", metric_table(&report.metrics));
    for gate in &report.gates {
        let mark = if gate.passed { "pass" } else { "FAIL" };
        println!("{mark}  {}: {}", gate.gate, gate.detail);
    }
    let failing: Vec<_> = report.cases.iter().filter(|c| !c.passed).collect();
    for case in failing.iter().take(10) {
        let reasons = report.failures(case);
        println!(
            "  case {} ({}): {}",
            case.case.id,
            case.case.origin,
            reasons.join("; ")
        );
    }
    if failing.len() > 10 {
        println!(
            "  … and {} more failing cases (--json has them all)",
            failing.len() - 10
        );
    }
    let flaky = report.flaky_cases();
    if !flaky.is_empty() {
        let ids: Vec<&str> = flaky.iter().map(|c| c.case.id.as_str()).collect();
        println!(
            "flaky (verdict changed between repeats): {}",
            ids.join(", ")
        );
    }
    if let Some(id) = report.run_id {
        println!("stored as run {id} (cairn eval show {id})");
    }
}

/// A progress bar with running means on a terminal; a line every few seconds otherwise.
struct Progress {
    bar: Option<ProgressBar>,
    label: String,
    last_line: Mutex<Instant>,
}

impl Progress {
    fn new(label: &str) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template("{prefix} {bar:30} {pos}/{len} {elapsed} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.set_prefix(label.to_owned());
            bar
        });
        eprintln!("eval: running {label}");
        Progress {
            bar,
            label: label.to_owned(),
            last_line: Mutex::new(Instant::now()),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Observer for Progress {
    fn attempt_done(&self, done: usize, total: usize, running: &[(String, Option<f64>)]) {
        let means: Vec<String> = running
            .iter()
            .map(|(name, mean)| match mean {
                Some(m) => format!("{name} {m:.2}"),
                None => format!("{name} -"),
            })
            .collect();
        let means = means.join(" · ");
        if let Some(bar) = &self.bar {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
            bar.set_message(means);
            return;
        }
        let Ok(mut last) = self.last_line.lock() else {
            return;
        };
        if done == total || last.elapsed() >= Duration::from_secs(5) {
            *last = Instant::now();
            eprintln!("eval: {} {done}/{total} {means}", self.label);
        }
    }
}
