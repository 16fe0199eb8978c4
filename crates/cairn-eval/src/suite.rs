//! Suite files (`evals/*.yaml`): what to run (a target, or several in the matrix form), on which
//! cases, measured how, and which gates decide the exit code. Loading validates everything that can
//! be checked without a model call, and names the file and line of what is wrong.

use std::path::{Path, PathBuf};

use cairn_core::eval::EvalTarget;
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::dataset::{self, Case, CaseFile};
use crate::error::SuiteError;
use crate::gates::{Gate, GateFile};
use crate::metrics::{JudgeSettings, Metric, MetricFile};
use crate::pairwise::{Pairwise, PairwiseFile};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuiteFile {
    pub name: Spanned<String>,
    #[serde(default)]
    pub description: String,
    /// `app:NAME`, `agent:NAME`, `route:NAME` or `model:NAME`.
    #[serde(default)]
    pub target: Option<Spanned<String>>,
    /// The matrix form: several targets on the same cases, one run each.
    #[serde(default)]
    pub targets: Vec<Spanned<String>>,
    /// For route and model targets: the registered prompt rendered from each case's variables
    /// (`name@label`, `name@3`); without one the question is sent as the user message.
    #[serde(default)]
    pub prompt: Option<String>,
    /// The matrix form over prompt versions.
    #[serde(default)]
    pub prompts: Vec<String>,
    pub dataset: Spanned<DatasetFile>,
    #[serde(default)]
    pub judge: Option<JudgeFile>,
    pub metrics: Spanned<Vec<Spanned<MetricFile>>>,
    #[serde(default)]
    pub gates: Vec<Spanned<GateFile>>,
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
    /// With exactly two targets: a judge compares their answers case by case, in both orders.
    #[serde(default)]
    pub pairwise: Option<Spanned<PairwiseFile>>,
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
    pub file: Option<Spanned<String>>,
    /// Inline cases.
    #[serde(default)]
    pub cases: Vec<Spanned<CaseFile>>,
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
    /// The pairwise comparison of the two targets, when asked for.
    pub pairwise: Option<Pairwise>,
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
        cairn_core::catalog::validate_name("suite", &file.name.value)
            .map_err(|e| invalid(line(&file.name), e.to_string()))?;
        let targets = targets(&file).map_err(|(at, m)| invalid(at, m))?;

        let base = path.parent().unwrap_or(Path::new("."));
        let mut cases: Vec<Case> = file
            .dataset
            .value
            .cases
            .iter()
            .enumerate()
            .map(|(i, case)| case.value.clone().into_case(i, at(line(case))))
            .collect();
        if let Some(data) = &file.dataset.value.file {
            let data_path = base.join(&data.value);
            let mut read = match data_path.extension().and_then(|e| e.to_str()) {
                Some("jsonl") => dataset::read_jsonl(&data_path)?,
                Some("csv") => dataset::read_csv(&data_path)?,
                _ => {
                    return Err(invalid(
                        line(data),
                        format!(
                            "dataset `{}` is neither .jsonl nor .csv; convert it to one of them",
                            data.value
                        ),
                    ));
                }
            };
            cases.append(&mut read);
        }
        if cases.is_empty() {
            return Err(invalid(
                line(&file.dataset),
                "the dataset has no cases; add `cases:` or a `file:` (JSONL or CSV)".into(),
            ));
        }
        dataset::check_unique(&cases)?;
        if targets.contains(&EvalTarget::Given)
            && let Some(case) = cases.iter().find(|c| c.given.is_none())
        {
            return Err(SuiteError::Invalid {
                origin: case.origin.clone(),
                message: format!(
                    "case `{}` has no `response`, and the target `given` scores the answers the dataset gives; add `response` (and `contexts`, the passages it was given)",
                    case.id
                ),
            });
        }

        if file.metrics.value.is_empty() {
            return Err(invalid(
                line(&file.metrics),
                "the suite measures nothing; list at least one metric".into(),
            ));
        }
        let metric_lines: Vec<Option<usize>> = file.metrics.value.iter().map(line).collect();
        let metrics = file
            .metrics
            .value
            .into_iter()
            .zip(&metric_lines)
            .map(|(metric, at_line)| Metric::build(metric.value, &cases, &at(*at_line)))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some((i, duplicate)) = metrics
            .iter()
            .enumerate()
            .find(|(i, m)| metrics[..*i].iter().any(|o| o.name == m.name))
        {
            return Err(invalid(
                metric_lines[i],
                format!(
                    "two metrics are named `{}`; give one a `name:`",
                    duplicate.name
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
                metric_lines[i],
                format!(
                    "metric `{}` needs a judge; add `judge: {{route: NAME}}` naming the model or route that judges",
                    metric.name
                ),
            ));
        }
        let gates = file
            .gates
            .into_iter()
            .map(|gate| {
                let at_line = line(&gate);
                Gate::build(gate.value, &metrics).map_err(|m| invalid(at_line, m))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let pairwise = match file.pairwise {
            None => None,
            Some(pairwise) => {
                let at_line = line(&pairwise);
                if targets.len() != 2 {
                    return Err(invalid(
                        at_line,
                        format!(
                            "`pairwise` compares exactly two targets, and this suite has {}; list two under `targets:`",
                            targets.len()
                        ),
                    ));
                }
                if judge.is_none() {
                    return Err(invalid(
                        at_line,
                        "`pairwise` needs a judge; add `judge: {route: NAME}`".into(),
                    ));
                }
                Some(Pairwise::build(pairwise.value))
            }
        };
        if file.repeat == 0 || file.concurrency == 0 {
            return Err(invalid(
                None,
                "`repeat` and `concurrency` must be at least 1".into(),
            ));
        }
        Ok(Suite {
            name: file.name.value,
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
            pairwise,
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

/// Every target of the suite, each with every prompt; a bad one is refused with its line.
fn targets(file: &SuiteFile) -> Result<Vec<EvalTarget>, (Option<usize>, String)> {
    let named: Vec<&Spanned<String>> = file.target.iter().chain(&file.targets).collect();
    if named.is_empty() {
        return Err((
            None,
            "no `target`; name one: app:NAME, agent:NAME, route:NAME, model:NAME or given".into(),
        ));
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
        let target = EvalTarget::parse(&name.value).ok_or_else(|| {
            (
                line(name),
                format!(
                    "target `{}` is not app:NAME, agent:NAME, route:NAME, model:NAME or given",
                    name.value
                ),
            )
        })?;
        if matches!(target, EvalTarget::App(_) | EvalTarget::Agent(_))
            && prompts.iter().any(Option::is_some)
        {
            return Err((
                line(name),
                format!(
                    "target `{}` renders its own prompt; `prompt` is for route and model targets",
                    name.value
                ),
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

/// The 1-based line a value starts on.
fn line<T>(spanned: &Spanned<T>) -> Option<usize> {
    usize::try_from(spanned.referenced.line())
        .ok()
        .filter(|line| *line > 0)
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

#[cfg(test)]
mod tests;
