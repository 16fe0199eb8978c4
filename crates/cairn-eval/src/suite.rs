//! Suite files (`evals/*.yaml`): what to run (a target, or several in the matrix form), on which
//! cases, measured how, and which gates decide the exit code. Loading validates everything that can
//! be checked without a model call, and names the file and line of what is wrong.

use std::path::{Path, PathBuf};

use cairn_core::eval::EvalTarget;
use serde::Deserialize;

use crate::dataset::{self, Case, CaseFile};
use crate::error::SuiteError;
use crate::gates::{Gate, GateFile};
use crate::metrics::{JudgeSettings, Metric, MetricFile};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuiteFile {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// `app:NAME`, `route:NAME` or `model:NAME`.
    #[serde(default)]
    pub target: Option<String>,
    /// The matrix form: several targets on the same cases, one run each.
    #[serde(default)]
    pub targets: Vec<String>,
    /// For route and model targets: the registered prompt rendered from each case's variables
    /// (`name@label`, `name@3`); without one the question is sent as the user message.
    #[serde(default)]
    pub prompt: Option<String>,
    /// The matrix form over prompt versions.
    #[serde(default)]
    pub prompts: Vec<String>,
    pub dataset: DatasetFile,
    #[serde(default)]
    pub judge: Option<JudgeFile>,
    pub metrics: Vec<MetricFile>,
    #[serde(default)]
    pub gates: Vec<GateFile>,
    /// Every case this many times (flaky verdicts are listed).
    #[serde(default = "one")]
    pub repeat: u32,
    /// Cases in flight at once.
    #[serde(default = "four")]
    pub concurrency: usize,
    /// Caps each target answer.
    #[serde(default)]
    pub max_tokens: Option<u32>,
    #[serde(default)]
    pub temperature: Option<f32>,
}

fn one() -> u32 {
    1
}

fn four() -> usize {
    4
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetFile {
    /// A JSONL or CSV file, relative to the suite file.
    #[serde(default)]
    pub file: Option<String>,
    /// Inline cases.
    #[serde(default)]
    pub cases: Vec<CaseFile>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JudgeFile {
    /// The model or route judge prompts are sent to.
    pub route: String,
    #[serde(default)]
    pub max_tokens: Option<u32>,
}

/// A suite ready to run.
#[derive(Debug, Clone)]
pub struct Suite {
    pub name: String,
    pub path: PathBuf,
    pub targets: Vec<EvalTarget>,
    pub cases: Vec<Case>,
    pub metrics: Vec<Metric>,
    pub gates: Vec<Gate>,
    pub judge: Option<JudgeSettings>,
    pub repeat: u32,
    pub concurrency: usize,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f32>,
}

impl Suite {
    /// Reads and validates a suite file.
    pub fn load(path: &Path) -> Result<Suite, SuiteError> {
        let source = std::fs::read_to_string(path).map_err(|e| SuiteError::File {
            origin: path.display().to_string(),
            message: format!("cannot read the suite: {e}"),
        })?;
        Suite::parse(&source, path)
    }

    pub fn parse(source: &str, path: &Path) -> Result<Suite, SuiteError> {
        let shown = path.display().to_string();
        let file: SuiteFile = serde_saphyr::from_str(source).map_err(|e| {
            let (line, message) = parse_problem(source, &e);
            SuiteError::File {
                origin: match line {
                    Some(line) => format!("{shown}:{line}"),
                    None => shown.clone(),
                },
                message: format!("{message}; see docs/evals.md for the suite format"),
            }
        })?;
        let at = |line: Option<usize>| match line {
            Some(line) => format!("{shown}:{line}"),
            None => shown.clone(),
        };
        let invalid = |line: Option<usize>, message: String| SuiteError::Invalid {
            origin: at(line),
            message,
        };
        cairn_core::catalog::validate_name("suite", &file.name)
            .map_err(|e| invalid(key_line(source, "name"), e.to_string()))?;
        let targets = targets(&file).map_err(|m| {
            invalid(
                key_line(source, "target").or_else(|| key_line(source, "targets")),
                m,
            )
        })?;

        let base = path.parent().unwrap_or(Path::new("."));
        let mut cases: Vec<Case> = file
            .dataset
            .cases
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, case)| case.into_case(i, at(item_lines(source, "cases").get(i).copied())))
            .collect();
        if let Some(data) = &file.dataset.file {
            let data_path = base.join(data);
            let mut read = match data_path.extension().and_then(|e| e.to_str()) {
                Some("jsonl") => dataset::read_jsonl(&data_path)?,
                Some("csv") => dataset::read_csv(&data_path)?,
                _ => {
                    return Err(invalid(
                        key_line(source, "file"),
                        format!(
                            "dataset `{data}` is neither .jsonl nor .csv; convert it to one of them"
                        ),
                    ));
                }
            };
            cases.append(&mut read);
        }
        if cases.is_empty() {
            return Err(invalid(
                key_line(source, "dataset"),
                "the dataset has no cases; add `cases:` or a `file:` (JSONL or CSV)".into(),
            ));
        }
        dataset::check_unique(&cases)?;

        let metric_lines = item_lines(source, "metrics");
        let metrics = file
            .metrics
            .into_iter()
            .enumerate()
            .map(|(i, metric)| Metric::build(metric, &cases, &at(metric_lines.get(i).copied())))
            .collect::<Result<Vec<_>, _>>()?;
        if metrics.is_empty() {
            return Err(invalid(
                key_line(source, "metrics"),
                "the suite measures nothing; list at least one metric".into(),
            ));
        }
        if let Some(duplicate) = metrics
            .iter()
            .enumerate()
            .find(|(i, m)| metrics[..*i].iter().any(|o| o.name == m.name))
        {
            return Err(invalid(
                metric_lines.get(duplicate.0).copied(),
                format!(
                    "two metrics are named `{}`; give one a `name:`",
                    duplicate.1.name
                ),
            ));
        }
        let judge = file.judge.map(|j| JudgeSettings {
            route: j.route,
            max_tokens: j.max_tokens,
        });
        if judge.is_none()
            && let Some((i, metric)) = metrics
                .iter()
                .enumerate()
                .find(|(_, m)| m.check.is_judged())
        {
            return Err(invalid(
                metric_lines.get(i).copied(),
                format!(
                    "metric `{}` needs a judge; add `judge: {{route: NAME}}` naming the model or route that judges",
                    metric.name
                ),
            ));
        }
        let gate_lines = item_lines(source, "gates");
        let gates = file
            .gates
            .into_iter()
            .enumerate()
            .map(|(i, gate)| {
                Gate::build(gate, &metrics).map_err(|m| invalid(gate_lines.get(i).copied(), m))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if file.repeat == 0 || file.concurrency == 0 {
            return Err(invalid(
                None,
                "`repeat` and `concurrency` must be at least 1".into(),
            ));
        }
        Ok(Suite {
            name: file.name,
            path: path.to_owned(),
            targets,
            cases,
            metrics,
            gates,
            judge,
            repeat: file.repeat,
            concurrency: file.concurrency,
            max_tokens: file.max_tokens,
            temperature: file.temperature,
        })
    }

    /// Every suite file (`*.yaml`, `*.yml`) in `path`, or `path` itself.
    pub fn files(path: &Path) -> Result<Vec<PathBuf>, SuiteError> {
        if !path.is_dir() {
            return Ok(vec![path.to_owned()]);
        }
        let entries = std::fs::read_dir(path).map_err(|e| SuiteError::File {
            origin: path.display().to_string(),
            message: format!("cannot list the suites: {e}"),
        })?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(SuiteError::File {
                origin: path.display().to_string(),
                message: "no suite files (*.yaml) here".into(),
            });
        }
        Ok(files)
    }
}

fn targets(file: &SuiteFile) -> Result<Vec<EvalTarget>, String> {
    let named: Vec<&String> = file.target.iter().chain(&file.targets).collect();
    if named.is_empty() {
        return Err("no `target`; name one: app:NAME, route:NAME or model:NAME".into());
    }
    let prompts: Vec<Option<String>> = if file.prompt.is_none() && file.prompts.is_empty() {
        vec![None]
    } else {
        file.prompt
            .iter()
            .chain(&file.prompts)
            .cloned()
            .map(Some)
            .collect()
    };
    let mut targets = Vec::new();
    for name in named {
        let target = EvalTarget::parse(name)
            .ok_or_else(|| format!("target `{name}` is not app:NAME, route:NAME or model:NAME"))?;
        if matches!(target, EvalTarget::App(_)) && prompts.iter().any(Option::is_some) {
            return Err(format!(
                "target `{name}` is an app, which renders its own prompt; `prompt` is for route and model targets"
            ));
        }
        for prompt in &prompts {
            let target = target.clone().with_prompt(prompt.clone());
            if !targets.contains(&target) {
                targets.push(target);
            }
        }
    }
    Ok(targets)
}

/// The line and message of a parse error: for an unknown key, the key's own line (the parser
/// reports the mapping that holds it), and the message without the parser's location prefixes.
fn parse_problem(source: &str, error: &serde_saphyr::Error) -> (Option<usize>, String) {
    let text = error.to_string();
    let text = text.lines().next().unwrap_or_default();
    let located =
        regex::Regex::new(r"^(?:error: )?line \d+ column \d+: (.*?)(?: at line \d+, column \d+)?$")
            .ok()
            .and_then(|re| {
                re.captures(text)
                    .and_then(|c| c.get(1))
                    .map(|m| m.as_str().to_owned())
            });
    let message = located.unwrap_or_else(|| text.to_owned());
    let reported = error
        .location()
        .and_then(|at| usize::try_from(at.line()).ok());
    let unknown_key = message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split_once('`'))
        .map(|(key, _)| format!("{key}:"));
    let line = match (reported, unknown_key) {
        (Some(from), Some(key)) => source
            .lines()
            .enumerate()
            .skip(from.saturating_sub(1))
            .find(|(_, l)| l.trim_start().trim_start_matches("- ").starts_with(&key))
            .map(|(i, _)| i + 1)
            .or(Some(from)),
        (reported, _) => reported,
    };
    (line, message)
}

/// The 1-based line of the first top-level `key:`.
fn key_line(source: &str, key: &str) -> Option<usize> {
    let prefix = format!("{key}:");
    source
        .lines()
        .position(|l| l.trim_start().starts_with(&prefix))
        .map(|i| i + 1)
}

/// The 1-based lines where the items of the list under `key:` begin (`- ` lines at the list's
/// indentation).
fn item_lines(source: &str, key: &str) -> Vec<usize> {
    let prefix = format!("{key}:");
    let lines: Vec<&str> = source.lines().collect();
    let Some(start) = lines
        .iter()
        .position(|l| l.trim_start().starts_with(&prefix))
    else {
        return Vec::new();
    };
    let key_indent = indent(lines[start]);
    let mut item_indent = None;
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate().skip(start + 1) {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let this = indent(line);
        let is_item = line.trim_start().starts_with("- ") || line.trim() == "-";
        if this < key_indent || (this == key_indent && !is_item) {
            break;
        }
        if is_item && item_indent.is_none_or(|at| at == this) {
            item_indent = Some(this);
            found.push(i + 1);
        }
    }
    found
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

#[cfg(test)]
mod tests;
