//! Judge calibration: a judged metric run over a human-labelled set, and how often the judge agrees
//! with the people who labelled it (accuracy, Cohen's kappa, the confusion matrix). A judge is only
//! as good as this agreement; runs of a suite show their judges' latest calibration.
//!
//! The labelled set is JSONL, one answer per line: `question`, `answer`, `passages` (the context
//! the answer was given), optionally `reference` and `id`, and `label`: whether the answer passes
//! the metric (`true`/`false`, `pass`/`fail`, `1`/`0`).

use std::path::Path;

use cairn_core::eval::{Answerer, EvalAnswer, EvalCallError, EvalPassage};
use futures_util::{StreamExt, stream};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::dataset::Case;
use crate::error::SuiteError;
use crate::metrics::{Check, JudgeSettings, Metric, MetricFile};

/// One human-labelled answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Labelled {
    pub case: Case,
    pub answer: String,
    pub passages: Vec<String>,
    /// The people's verdict: the answer passes the metric.
    pub label: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LabelledLine {
    #[serde(default)]
    id: Option<String>,
    question: String,
    answer: String,
    #[serde(default)]
    passages: Vec<String>,
    #[serde(default)]
    reference: Option<String>,
    label: Value,
}

/// Reads a labelled JSONL file.
pub fn load(path: &Path) -> Result<Vec<Labelled>, SuiteError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| SuiteError::Dataset {
        origin: shown.clone(),
        message: format!("cannot read the labelled set: {e}"),
    })?;
    let mut cases = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let origin = format!("{shown}:{}", index + 1);
        let bad = |message: String| SuiteError::Dataset {
            origin: origin.clone(),
            message,
        };
        let row: LabelledLine = serde_json::from_str(line).map_err(|e| {
            bad(format!(
                "{e}; each line is {{\"question\", \"answer\", \"passages\": [...], \"label\": true|false}}"
            ))
        })?;
        let label = match &row.label {
            Value::Bool(b) => *b,
            Value::Number(n) if n.as_f64() == Some(1.0) => true,
            Value::Number(n) if n.as_f64() == Some(0.0) => false,
            Value::String(s) if matches!(s.as_str(), "pass" | "yes" | "supported") => true,
            Value::String(s) if matches!(s.as_str(), "fail" | "no" | "unsupported") => false,
            other => {
                return Err(bad(format!(
                    "`label: {other}` is not a verdict; use true/false, pass/fail or 1/0"
                )));
            }
        };
        let id = row.id.unwrap_or_else(|| format!("line-{}", index + 1));
        if cases.iter().any(|c: &Labelled| c.case.id == id) {
            return Err(bad(format!("id `{id}` is used twice")));
        }
        cases.push(Labelled {
            case: Case {
                id,
                question: row.question,
                variables: Map::new(),
                reference: row.reference,
                gold: Vec::new(),
                tags: Vec::new(),
                origin,
                given: None,
            },
            answer: row.answer,
            passages: row.passages,
            label,
        });
    }
    if cases.is_empty() {
        return Err(SuiteError::Dataset {
            origin: shown,
            message: "the labelled set is empty".into(),
        });
    }
    Ok(cases)
}

/// The four cells of a binary confusion matrix, the people's verdict against the judge's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confusion {
    /// Both say it passes.
    pub both_pass: usize,
    /// The judge passes what the people failed.
    pub judge_only_pass: usize,
    /// The judge fails what the people passed.
    pub judge_only_fail: usize,
    /// Both say it fails.
    pub both_fail: usize,
}

/// How often the judge agrees with the people.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Agreement {
    pub accuracy: f64,
    /// Cohen's kappa: agreement beyond what chance would give (1 perfect, 0 chance, < 0 worse).
    pub kappa: f64,
    pub confusion: Confusion,
}

/// Agreement over (people, judge) verdict pairs; `None` for none.
pub fn agreement(pairs: &[(bool, bool)]) -> Option<Agreement> {
    if pairs.is_empty() {
        return None;
    }
    let mut confusion = Confusion::default();
    for pair in pairs {
        match pair {
            (true, true) => confusion.both_pass += 1,
            (false, true) => confusion.judge_only_pass += 1,
            (true, false) => confusion.judge_only_fail += 1,
            (false, false) => confusion.both_fail += 1,
        }
    }
    let n = pairs.len() as f64;
    let observed = (confusion.both_pass + confusion.both_fail) as f64 / n;
    let people_pass = (confusion.both_pass + confusion.judge_only_fail) as f64 / n;
    let judge_pass = (confusion.both_pass + confusion.judge_only_pass) as f64 / n;
    let chance = people_pass * judge_pass + (1.0 - people_pass) * (1.0 - judge_pass);
    // When chance agreement is certain (everyone says the same thing), kappa is undefined; perfect
    // agreement then counts as 1 and anything else as 0.
    let kappa = if (1.0 - chance).abs() < 1e-12 {
        if (observed - 1.0).abs() < 1e-12 {
            1.0
        } else {
            0.0
        }
    } else {
        (observed - chance) / (1.0 - chance)
    };
    Some(Agreement {
        accuracy: observed,
        kappa,
        confusion,
    })
}

/// One labelled answer the judge saw differently, or could not judge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Disagreement {
    pub id: String,
    pub origin: String,
    pub label: bool,
    /// The judge's score, `None` when unmeasured.
    pub score: Option<f64>,
    pub reason: String,
}

/// What a calibration found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// The metric (`faithfulness`, …) and its judge prompt (`name@label`).
    pub metric: String,
    pub prompt: String,
    /// The prompt version the judge answered with.
    pub prompt_version: Option<i64>,
    /// The judge's model or route.
    pub judge: String,
    /// A judge score at or above this is a pass.
    pub threshold: f64,
    pub cases: usize,
    pub unmeasured: usize,
    /// Over the measured cases; `None` when none was.
    pub agreement: Option<Agreement>,
    pub disagreements: Vec<Disagreement>,
}

impl Calibration {
    /// One line: the agreement, on how many answers, with which prompt version.
    pub fn describe(&self) -> String {
        let version = self
            .prompt_version
            .map_or_else(String::new, |v| format!(" v{v}"));
        let prompt = self.prompt.split('@').next().unwrap_or(&self.prompt);
        match &self.agreement {
            Some(a) => format!(
                "κ {:.2}, accuracy {:.2} on {} of {} labelled answers ({prompt}{version}, judge {})",
                a.kappa,
                a.accuracy,
                self.cases - self.unmeasured,
                self.cases,
                self.judge
            ),
            None => format!(
                "no labelled answer could be judged ({prompt}{version}, judge {})",
                self.judge
            ),
        }
    }
}

/// The metric a calibration judges with: one of the judged metrics, as a suite would build it.
pub fn judged_metric(file: MetricFile, cases: &[Labelled]) -> Result<Metric, SuiteError> {
    use crate::metrics::MetricKind;
    if !matches!(
        file.metric,
        MetricKind::Faithfulness
            | MetricKind::ContextRecall
            | MetricKind::AnswerRelevance
            | MetricKind::AnswerCorrectness
            | MetricKind::Rubric
    ) {
        return Err(SuiteError::Invalid {
            origin: "the --metric option".into(),
            message: format!(
                "`{}` needs no judge; calibrate a judged metric (faithfulness, context_recall, answer_relevance, answer_correctness)",
                file.metric.as_str()
            ),
        });
    }
    let kinds: Vec<Case> = cases.iter().map(|c| c.case.clone()).collect();
    let metric = Metric::build(file, &kinds, "the --metric option")?;
    Ok(metric)
}

/// Runs the metric's judge over every labelled answer and measures its agreement with the labels.
pub async fn calibrate(
    answerer: &dyn Answerer,
    judge: &JudgeSettings,
    metric: &Metric,
    cases: &[Labelled],
    concurrency: usize,
    observer: &dyn crate::Observer,
) -> Result<Calibration, EvalCallError> {
    let Check::Judged(judged) = &metric.check else {
        return Err(EvalCallError::Unusable(format!(
            "`{}` is not a judged metric",
            metric.name
        )));
    };
    let done = std::sync::atomic::AtomicUsize::new(0);
    let done = &done;
    let judgements: Vec<_> = stream::iter(cases)
        .map(|labelled| async move {
            let answer = EvalAnswer {
                text: labelled.answer.clone(),
                question: labelled.case.question.clone(),
                passages: labelled
                    .passages
                    .iter()
                    .enumerate()
                    .map(|(i, text)| EvalPassage {
                        source: format!("passage {}", i + 1),
                        title: String::new(),
                        text: text.clone(),
                        score: 1.0,
                    })
                    .collect(),
                ..EvalAnswer::default()
            };
            let judgement = judged
                .score(answerer, judge, &labelled.case, &answer, true)
                .await?;
            let finished = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            observer.attempt_done(finished, cases.len(), &[]);
            Ok::<_, EvalCallError>((labelled, judgement))
        })
        .buffered(concurrency.max(1))
        .collect()
        .await;
    let mut pairs = Vec::new();
    let mut disagreements = Vec::new();
    let mut unmeasured = 0;
    let mut prompt_version = None;
    for judged in judgements {
        let (labelled, judgement) = judged?;
        prompt_version = prompt_version.or(judgement.prompt_version);
        let reason = judgement.score.reason().unwrap_or_default().to_owned();
        match judgement.score.value() {
            Some(score) => {
                let verdict = score >= metric.threshold;
                pairs.push((labelled.label, verdict));
                if verdict != labelled.label {
                    disagreements.push(Disagreement {
                        id: labelled.case.id.clone(),
                        origin: labelled.case.origin.clone(),
                        label: labelled.label,
                        score: Some(score),
                        reason,
                    });
                }
            }
            None => {
                unmeasured += 1;
                disagreements.push(Disagreement {
                    id: labelled.case.id.clone(),
                    origin: labelled.case.origin.clone(),
                    label: labelled.label,
                    score: None,
                    reason,
                });
            }
        }
    }
    Ok(Calibration {
        metric: metric.name.clone(),
        prompt: judged.prompt.clone(),
        prompt_version,
        judge: judge.route.clone(),
        threshold: metric.threshold,
        cases: cases.len(),
        unmeasured,
        agreement: agreement(&pairs),
        disagreements,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kappa_discounts_chance_agreement() {
        // 20 pass/pass, 5 people-pass/judge-fail, 10 people-fail/judge-pass, 15 fail/fail:
        // observed 0.7, chance 0.5·0.6 + 0.5·0.4 = 0.5, kappa 0.4.
        let mut pairs = vec![(true, true); 20];
        pairs.extend(vec![(true, false); 5]);
        pairs.extend(vec![(false, true); 10]);
        pairs.extend(vec![(false, false); 15]);
        let found = agreement(&pairs).expect("pairs");
        assert!((found.accuracy - 0.7).abs() < 1e-9);
        assert!((found.kappa - 0.4).abs() < 1e-9, "{found:?}");
        assert_eq!(
            found.confusion,
            Confusion {
                both_pass: 20,
                judge_only_pass: 10,
                judge_only_fail: 5,
                both_fail: 15
            }
        );
        // A judge that always says pass agrees half the time on a balanced set, and kappa is 0.
        let always = [(true, true), (false, true), (true, true), (false, true)];
        assert!(agreement(&always).expect("pairs").kappa.abs() < 1e-9);
        assert_eq!(agreement(&[(true, true)]).map(|a| a.kappa), Some(1.0));
        assert_eq!(agreement(&[]), None);
    }

    #[test]
    fn labelled_sets_are_read_with_the_line_of_each_problem() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("labels.jsonl");
        std::fs::write(
            &path,
            "{\"question\": \"q\", \"answer\": \"a\", \"passages\": [\"p\"], \"label\": \"pass\"}\n\n{\"id\": \"x\", \"question\": \"q\", \"answer\": \"b\", \"label\": 0}\n",
        )
        .expect("write");
        let cases = load(&path).expect("loads");
        assert_eq!(
            cases
                .iter()
                .map(|c| (c.case.id.as_str(), c.label))
                .collect::<Vec<_>>(),
            [("line-1", true), ("x", false)]
        );
        std::fs::write(
            &path,
            "{\"question\": \"q\", \"answer\": \"a\", \"label\": \"maybe\"}\n",
        )
        .expect("write");
        let refused = load(&path).expect_err("refused").to_string();
        assert!(
            refused.contains("labels.jsonl:1") && refused.contains("maybe"),
            "{refused}"
        );
    }
}
