//! `cairn eval`: run suites (`run FILE|DIR`), list a suite's stored runs; showing and comparing
//! stored runs is in `stored.rs`, judge calibration in `calibrate.rs`.
//! Exit codes: 0 every gate held, 1 a gate failed, 2 the suite could not run (bad file, target or
//! judge missing, catalog unreachable).

mod calibrate;
mod stored;

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cairn_core::Catalog;
use cairn_eval::metrics::Check;
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
    /// Runs a judged metric's judge over a human-labelled JSONL set and reports how often it
    /// agrees with the labels (accuracy, Cohen's kappa, confusion matrix); stored with the judge
    /// prompt's version, and shown by every later run that uses that judge.
    Calibrate(CalibrateArgs),
    /// Two stored runs case by case: per metric, the difference with its 95% interval and the
    /// cases that got better or worse.
    Compare {
        before: Uuid,
        after: Uuid,
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
    /// Writes one self-contained HTML report: summary, distributions, every case to open.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Does not store the run in the catalog.
    #[arg(long)]
    pub no_store: bool,
}

#[derive(Debug, Args)]
pub struct CalibrateArgs {
    /// The labelled set: JSONL lines of question, answer, passages and label (pass or fail).
    pub labels: PathBuf,
    /// The judged metric: faithfulness, context_recall, answer_relevance or answer_correctness.
    #[arg(long)]
    pub metric: String,
    /// The model or route that judges.
    #[arg(long)]
    pub judge: String,
    /// Another registered judge prompt (default: the metric's built-in `eval_<metric>@production`).
    #[arg(long)]
    pub prompt: Option<String>,
    /// A judge score at or above this is a pass (default: the metric's).
    #[arg(long)]
    pub threshold: Option<f64>,
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Caps each judge answer (default: the judge prompt's `max_tokens`).
    #[arg(long)]
    pub max_tokens: Option<u32>,
    #[arg(long)]
    pub json: bool,
    /// Does not store the calibration.
    #[arg(long)]
    pub no_store: bool,
}

impl RunArgs {
    /// A run of `path` that is stored and printed, with nothing else asked for.
    fn stored(path: &Path) -> RunArgs {
        RunArgs {
            path: path.to_owned(),
            repeat: None,
            baseline: None,
            fresh: false,
            json: false,
            junit: None,
            html: None,
            no_store: false,
        }
    }
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
            let runs = catalog.as_dyn().list_eval_runs(Some(&suite), limit).await;
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
        EvalCommand::Calibrate(args) => calibrate::calibrate(config, args).await,
        EvalCommand::Compare {
            before,
            after,
            json,
        } => {
            let catalog = cairn_runtime::catalog::open_for_use(config)
                .await
                .map_err(broken)?;
            let compared = stored::compare(&*catalog.as_dyn(), before, after, json).await;
            catalog.close().await;
            compared
        }
        EvalCommand::Show { run, json } => {
            let catalog = cairn_runtime::catalog::open_for_use(config)
                .await
                .map_err(broken)?;
            let found = stored::show(&*catalog.as_dyn(), run, json).await;
            catalog.close().await;
            found
        }
    }
}

async fn run_suites(config: &cairn_runtime::config::Config, args: RunArgs) -> anyhow::Result<()> {
    let suites = load_suites(&args.path)?;
    let catalog = cairn_runtime::catalog::open_for_use(config)
        .await
        .map_err(broken)?;
    let result = match runtime(config, &catalog).await {
        Ok(runtime) => execute(&runtime, &suites, &args, &BTreeMap::new()).await,
        Err(e) => Err(e),
    };
    catalog.close().await;
    let reports = result?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    }
    if let Some(path) = &args.junit {
        let xml = junit::render(&reports).map_err(broken)?;
        std::fs::write(path, xml)
            .map_err(|e| broken(format!("cannot write {}: {e}", path.display())))?;
    }
    if let Some(path) = &args.html {
        let page = cairn_eval::report::html::render(&reports).map_err(broken)?;
        std::fs::write(path, page)
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

fn load_suites(path: &Path) -> anyhow::Result<Vec<Suite>> {
    let files = Suite::files(path).map_err(broken)?;
    files
        .iter()
        .map(|file| Suite::load(file))
        .collect::<Result<Vec<_>, _>>()
        .map_err(broken)
}

/// What changed, to run the suites attached to it (`[[evals.continuous]]`).
#[derive(Debug, Clone, Copy)]
pub enum Trigger<'a> {
    /// An ingest added, updated or removed documents of the collection.
    Collection(&'a str),
    /// A label of the prompt moved.
    Prompt(&'a str),
}

impl std::fmt::Display for Trigger<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Trigger::Collection(name) => write!(f, "collection `{name}` changed"),
            Trigger::Prompt(name) => write!(f, "a label of prompt `{name}` moved"),
        }
    }
}

/// Runs every suite attached to what changed, each compared with its own previous run. What it
/// finds is printed; a suite that cannot run is reported and the change stands.
pub async fn continuous(
    config: &cairn_runtime::config::Config,
    catalog: &cairn_runtime::catalog::OpenCatalog,
    trigger: Trigger<'_>,
) {
    let attached: Vec<&Path> = config
        .evals
        .continuous
        .iter()
        .filter(|rule| match trigger {
            Trigger::Collection(name) => rule.collections.iter().any(|c| c == name),
            Trigger::Prompt(name) => rule.prompts.iter().any(|p| p == name),
        })
        .map(|rule| rule.suite.as_path())
        .collect();
    if attached.is_empty() {
        return;
    }
    // One runtime (models, retrieval) for every attached suite.
    let runtime = match runtime(config, catalog).await {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("eval: the suites attached to what changed could not run: {e}");
            return;
        }
    };
    for file in attached {
        eprintln!(
            "eval: {trigger}; running {} (attached in [[evals.continuous]])",
            file.display()
        );
        if let Err(e) = run_attached(&runtime, file).await {
            eprintln!("eval: {} could not run: {e}", file.display());
        }
    }
}

async fn run_attached(runtime: &cairn_runtime::Runtime, file: &Path) -> anyhow::Result<()> {
    let answerer = local_answerer(runtime);
    let reruns = cairn_eval::continuous::rerun(file, &answerer, &*runtime.catalog)
        .await
        .map_err(broken)?;
    for rerun in reruns {
        eprintln!("eval: {}", rerun.summary());
    }
    Ok(())
}

/// The runtime suites and judges are called through; an error ends `cairn eval` with exit code 2.
async fn runtime(
    config: &cairn_runtime::config::Config,
    catalog: &cairn_runtime::catalog::OpenCatalog,
) -> anyhow::Result<cairn_runtime::Runtime> {
    cairn_runtime::Runtime::build(config, catalog)
        .await
        .map_err(broken)
}

/// Eval calls through the runtime's pipeline, as the local user.
fn local_answerer(runtime: &cairn_runtime::Runtime) -> cairn_app::PipelineAnswerer {
    cairn_app::PipelineAnswerer::new(runtime.pipeline.clone(), cairn_core::Principal::local())
}

/// Runs `suite_file` with prompt `name` pinned at `version`, and stores the run: the run that
/// vouches for (or refuses) moving one of the prompt's eval-gated labels to that version.
pub async fn vouch(
    config: &cairn_runtime::config::Config,
    catalog: &cairn_runtime::catalog::OpenCatalog,
    suite_file: &Path,
    name: &str,
    version: i64,
) -> anyhow::Result<RunReport> {
    let suites = load_suites(suite_file)?;
    let [suite] = suites.as_slice() else {
        return Err(broken(format!(
            "{} holds {} suites; a label gate runs exactly one suite file",
            suite_file.display(),
            suites.len()
        )));
    };
    if suite.targets.len() != 1 {
        return Err(broken(format!(
            "suite `{}` ({}) runs {} targets; a label gate needs a suite with one target, so that one run vouches for the move",
            suite.name,
            suite_file.display(),
            suite.targets.len()
        )));
    }
    let args = RunArgs::stored(suite_file);
    let pins = BTreeMap::from([(name.to_owned(), version)]);
    let mut reports = execute(&runtime(config, catalog).await?, &suites, &args, &pins).await?;
    reports
        .pop()
        .ok_or_else(|| broken(format!("suite `{}` produced no run", suite.name)))
}

/// Runs every target of every suite; stores the runs unless told not to and prints their summaries
/// unless `--json`.
async fn execute(
    runtime: &cairn_runtime::Runtime,
    suites: &[Suite],
    args: &RunArgs,
    prompt_pins: &BTreeMap<String, i64>,
) -> anyhow::Result<Vec<RunReport>> {
    let pipeline_answerer = local_answerer(runtime);
    // Judge and prompt calls are answered from the catalog when their inputs are unchanged.
    let answerer = cairn_eval::CachingAnswerer::new(&pipeline_answerer, &*runtime.catalog);
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
        prompt_pins: prompt_pins.clone(),
    };
    let mut reports = Vec::new();
    for suite in suites {
        let mut runs = Vec::new();
        for target in &suite.targets {
            let progress = Progress::new(&format!("{} · {target}", suite.name));
            let report = cairn_eval::run(suite, target, &answerer, &options, &progress).await;
            progress.finish();
            runs.push(report.map_err(broken)?);
        }
        if let (Some(settings), Some(judge), [first, second]) =
            (&suite.pairwise, &suite.judge, runs.as_mut_slice())
        {
            eprintln!(
                "eval: judging {} against {} in both orders",
                first.target, second.target
            );
            let (a, b) = (first.first_answers(), second.first_answers());
            let pairs: Vec<cairn_eval::pairwise::Pair<'_>> = suite
                .cases
                .iter()
                .map(|case| cairn_eval::pairwise::Pair {
                    case,
                    first: a.get(case.id.as_str()).copied(),
                    second: b.get(case.id.as_str()).copied(),
                })
                .collect();
            let compared = cairn_eval::pairwise::compare(
                &answerer,
                judge,
                settings,
                (&first.target, &second.target),
                &pairs,
                suite.concurrency,
            )
            .await
            .map_err(broken)?;
            second.pairwise = Some(compared);
        }
        for mut report in runs {
            attach_calibrations(&*runtime.catalog, suite, &mut report).await;
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
    Ok(reports)
}

/// Each judged metric's latest judge calibration, where one is stored.
async fn attach_calibrations(catalog: &dyn Catalog, suite: &Suite, report: &mut RunReport) {
    for metric in &suite.metrics {
        if let Check::Judged(judged) = &metric.check
            && let Ok(Some((_, calibration))) =
                store::latest_calibration(catalog, &judged.prompt).await
        {
            report.calibrations.insert(metric.name.clone(), calibration);
        }
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
    if !report.prompt_pins.is_empty() {
        let pins: Vec<String> = report
            .prompt_pins
            .iter()
            .map(|(name, version)| format!("{name} v{version}"))
            .collect();
        println!("with {} in place of what the target names", pins.join(", "));
    }
    println!("{}", metric_table(&report.metrics));
    for (metric, calibration) in &report.calibrations {
        println!("judge of {metric}: {}", calibration.describe());
    }
    if let Some(pairwise) = &report.pairwise {
        println!("{}", pairwise.describe());
    }
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
