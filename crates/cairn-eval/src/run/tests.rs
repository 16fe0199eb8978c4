//! Running suites against a scripted answerer: scoring, unmeasured judges, flaky repeats,
//! unusable targets and the baseline comparison.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use cairn_core::eval::EvalPassage;
use serde_json::{Value, json};

use super::*;

/// Answers with the case's question reversed into a fixed answer per question, and judges
/// faithfulness by whether each sentence of the answer appears in a passage.
#[derive(Debug, Default)]
struct Scripted {
    /// The judge answers in prose instead of JSON.
    garbage_judge: bool,
    /// The target does not exist.
    missing_target: bool,
    /// Counts target calls, to make answers alternate.
    target_calls: AtomicUsize,
    /// Alternate answers to `flip`.
    flip: bool,
    /// Always answer `What is TRUNCATE?` with a claim the passage does not support.
    unfaithful: bool,
    /// The prompt pins of each call: (a judge call, its pins).
    pins: std::sync::Mutex<Vec<(bool, BTreeMap<String, i64>)>>,
}

#[async_trait]
impl Answerer for Scripted {
    async fn answer(
        &self,
        target: &EvalTarget,
        call: &EvalCall,
    ) -> Result<EvalAnswer, EvalCallError> {
        let judge =
            matches!(target, EvalTarget::Model { prompt: Some(p), .. } if p.starts_with("eval_"));
        if let Ok(mut pins) = self.pins.lock() {
            pins.push((judge, call.prompt_pins.clone()));
        }
        match target {
            EvalTarget::Model {
                prompt: Some(prompt),
                ..
            } => {
                assert!(prompt.starts_with("eval_"), "{prompt}");
                if self.garbage_judge {
                    return Ok(answer("I think it is mostly fine.", Vec::new()));
                }
                if prompt.starts_with("eval_rubric") {
                    // Every criterion 4 of the scale, named as the suite named it.
                    let scored: Vec<Value> = call.variables["criteria"]
                        .as_array()
                        .map(|c| {
                            c.iter()
                                .map(|c| json!({"criterion": c["name"], "score": 4, "reason": format!("about {}", c["description"])}))
                                .collect()
                        })
                        .unwrap_or_default();
                    return Ok(answer(&json!({"criteria": scored}).to_string(), Vec::new()));
                }
                let passages: Vec<String> = call.variables["passages"]
                    .as_array()
                    .map(|p| {
                        p.iter()
                            .filter_map(|t| t.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                let answer_text = call.variables["answer"].as_str().unwrap_or_default();
                let claims: Vec<Value> = answer_text
                    .split(". ")
                    .map(|claim| {
                        let claim = claim.trim_end_matches('.');
                        json!({"claim": claim, "supported": passages.iter().any(|p| p.contains(claim))})
                    })
                    .collect();
                Ok(answer(&json!({"claims": claims}).to_string(), Vec::new()))
            }
            _ if self.missing_target => Err(EvalCallError::Unusable(
                "model `gone` does not exist; models: fast".into(),
            )),
            _ => {
                let n = self.target_calls.fetch_add(1, Ordering::SeqCst);
                let text = match call.question.as_str() {
                    "What is TRUNCATE?" if self.unfaithful || (self.flip && n % 2 == 1) => {
                        "It deletes rows. It is fast"
                    }
                    "What is TRUNCATE?" => "It empties tables. It is fast",
                    _ => "No idea",
                };
                Ok(answer(
                    text,
                    vec![passage(
                        "docs/sql-truncate.html",
                        "TRUNCATE: It empties tables. It is fast.",
                    )],
                ))
            }
        }
    }

    /// One axis per word of interest: texts that share them point the same way.
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EvalCallError> {
        Ok(texts
            .iter()
            .map(|t| {
                ["empties", "fast", "vacuum"]
                    .iter()
                    .map(|w| f32::from(u8::from(t.to_lowercase().contains(w))))
                    .chain([0.1])
                    .collect()
            })
            .collect())
    }

    async fn check(&self, target: &EvalTarget, _: &EvalCall) -> Result<(), EvalCallError> {
        if self.missing_target
            && !matches!(
                target,
                EvalTarget::Model {
                    prompt: Some(_),
                    ..
                }
            )
        {
            return Err(EvalCallError::Unusable(
                "model `gone` does not exist".into(),
            ));
        }
        Ok(())
    }
}

fn answer(text: &str, passages: Vec<EvalPassage>) -> EvalAnswer {
    EvalAnswer {
        text: text.into(),
        passages,
        latency_ms: 5.0,
        ..EvalAnswer::default()
    }
}

fn passage(source: &str, text: &str) -> EvalPassage {
    EvalPassage {
        source: source.into(),
        title: String::new(),
        text: text.into(),
        score: 1.0,
    }
}

fn suite(extra: &str) -> Suite {
    let source = format!(
        "name: smoke
target: route:fast
dataset:
  cases:
    - id: truncate
      question: What is TRUNCATE?
      file: sql-truncate.html
    - id: vacuum
      question: What is VACUUM?
      file: sql-vacuum.html
judge:
  route: judge
metrics:
  - metric: contains
    value: empties
  - metric: faithfulness
  - metric: recall_at_k
{extra}"
    );
    Suite::parse(&source, Path::new("smoke.yaml")).expect("suite parses")
}

async fn run_with(suite: &Suite, answerer: &Scripted, options: &RunOptions) -> RunReport {
    run(suite, &suite.targets[0], answerer, options, &Quiet)
        .await
        .expect("runs")
}

fn metric<'a>(report: &'a RunReport, name: &str) -> &'a crate::report::MetricSummary {
    report
        .metrics
        .iter()
        .find(|m| m.name == name)
        .expect("metric in report")
}

#[tokio::test]
async fn a_run_scores_every_case_and_gates_on_the_aggregates() {
    let suite = suite(
        "gates:\n  - metric: contains\n    min_pass_rate: 0.5\n  - metric: faithfulness\n    min_mean: 0.9\n",
    );
    let report = run_with(&suite, &Scripted::default(), &RunOptions::default()).await;
    let truncate = &report.cases[0];
    assert_eq!(truncate.scores["contains"].value(), Some(1.0));
    assert_eq!(truncate.scores["faithfulness"].value(), Some(1.0));
    assert_eq!(truncate.scores["recall@5"].value(), Some(1.0));
    let vacuum = &report.cases[1];
    assert_eq!(vacuum.scores["faithfulness"].value(), Some(0.0));
    assert_eq!(vacuum.scores["recall@5"].value(), Some(0.0));
    assert!(!vacuum.passed);
    assert_eq!(
        metric(&report, "faithfulness").mean.map(|m| m.value),
        Some(0.5)
    );
    assert_eq!(report.calls.target, 2);
    assert_eq!(report.calls.judge, 2);
    // contains: 1 of 2 passes (gate holds); faithfulness mean 0.5 < 0.9 (gate fails).
    assert!(report.gates[0].passed, "{:?}", report.gates);
    assert!(!report.gates[1].passed);
    assert!(
        report.gates[1].detail.contains("0.500 is below 0.9"),
        "{:?}",
        report.gates[1]
    );
    assert!(!report.passed);
    let xml = crate::report::junit::render(std::slice::from_ref(&report)).expect("junit");
    assert!(xml.contains("faithfulness 0.000 &lt; 0.5"), "{xml}");
}

#[tokio::test]
async fn a_judge_answering_garbage_leaves_scores_unmeasured_and_the_gate_says_so() {
    let suite = suite("gates:\n  - metric: faithfulness\n    min_mean: 0.1\n");
    let judge = Scripted {
        garbage_judge: true,
        ..Scripted::default()
    };
    let report = run_with(&suite, &judge, &RunOptions::default()).await;
    let faithfulness = metric(&report, "faithfulness");
    assert_eq!((faithfulness.measured, faithfulness.unmeasured), (0, 2));
    assert_eq!(faithfulness.mean, None, "unmeasured is not zero");
    let reason = report.cases[0].scores["faithfulness"]
        .reason()
        .unwrap_or_default();
    assert!(reason.contains("not JSON"), "{reason}");
    assert!(!report.gates[0].passed);
    assert!(
        report.gates[0].detail.contains("2 of 2 cases unmeasured"),
        "{:?}",
        report.gates
    );
    // The deterministic metrics are still measured.
    assert_eq!(metric(&report, "contains").measured, 2);
}

#[tokio::test]
async fn verdicts_that_change_between_repeats_are_flaky() {
    let suite = suite("");
    let flipping = Scripted {
        flip: true,
        ..Scripted::default()
    };
    let options = RunOptions {
        repeat: Some(2),
        ..RunOptions::default()
    };
    let mut report = run(&suite, &suite.targets[0], &flipping, &options, &Quiet)
        .await
        .expect("runs");
    report.cases.sort_by(|a, b| a.case.id.cmp(&b.case.id));
    assert_eq!(report.calls.target, 4);
    let truncate = report
        .cases
        .iter()
        .find(|c| c.case.id == "truncate")
        .expect("case");
    assert_eq!(truncate.attempts.len(), 2);
    assert!(
        truncate.flaky.contains(&"contains".to_owned()),
        "{:?}",
        truncate.flaky
    );
    assert_eq!(truncate.scores["contains"].value(), Some(0.5));
    assert_eq!(report.flaky_cases().len(), 1);
}

#[tokio::test]
async fn a_target_that_does_not_exist_stops_the_suite_before_any_call() {
    let suite = suite("");
    let missing = Scripted {
        missing_target: true,
        ..Scripted::default()
    };
    let err = run(
        &suite,
        &suite.targets[0],
        &missing,
        &RunOptions::default(),
        &Quiet,
    )
    .await
    .expect_err("unusable");
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert_eq!(missing.target_calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_significant_drop_against_the_baseline_fails_the_regression_gate() {
    let suite = suite("gates:\n  - metric: faithfulness\n    no_regression: true\n");
    let baseline_run = run_with(&suite, &Scripted::default(), &RunOptions::default()).await;
    let mut baseline = Baseline {
        run_id: uuid::Uuid::now_v7(),
        ..Baseline::default()
    };
    for case in &baseline_run.cases {
        let scores = case
            .scores
            .iter()
            .filter_map(|(name, score)| score.value().map(|v| (name.clone(), v)))
            .collect();
        baseline.scores.insert(case.case.id.clone(), scores);
    }
    let same = run_with(
        &suite,
        &Scripted::default(),
        &RunOptions {
            baseline: Some(baseline.clone()),
            ..RunOptions::default()
        },
    )
    .await;
    assert!(same.passed, "{:?}", same.gates);

    // Every case was perfect in the baseline; now every case is less faithful.
    for scores in baseline.scores.values_mut() {
        scores.insert("faithfulness".into(), 1.0);
    }
    let worse = run_with(
        &suite,
        &Scripted {
            unfaithful: true,
            ..Scripted::default()
        },
        &RunOptions {
            baseline: Some(baseline),
            ..RunOptions::default()
        },
    )
    .await;
    let comparison = metric(&worse, "faithfulness")
        .versus_baseline
        .clone()
        .expect("compared");
    assert_eq!(comparison.pairs, 2);
    assert_eq!(comparison.worse, ["truncate", "vacuum"], "{comparison:?}");
    assert!(!worse.passed, "{:?}", worse.gates);
}

#[tokio::test]
async fn pinned_prompt_versions_reach_the_target_and_not_the_judge() {
    let suite = suite("");
    let scripted = Scripted::default();
    let pins = BTreeMap::from([("rag_answer".to_owned(), 3)]);
    let report = run_with(
        &suite,
        &scripted,
        &RunOptions {
            prompt_pins: pins.clone(),
            ..RunOptions::default()
        },
    )
    .await;
    assert_eq!(report.prompt_pins, pins);
    let calls = scripted.pins.lock().expect("calls").clone();
    assert!(calls.iter().any(|(judge, _)| *judge), "{calls:?}");
    for (judge, seen) in calls {
        if judge {
            assert!(seen.is_empty(), "a judge call carried pins: {seen:?}");
        } else {
            assert_eq!(seen, pins);
        }
    }
}

#[tokio::test]
async fn similarity_compares_answer_and_reference_vectors() {
    let source = "name: similar
target: route:fast
dataset:
  cases:
    - id: truncate
      question: What is TRUNCATE?
      answer: TRUNCATE empties tables, and is fast.
    - id: vacuum
      question: What is VACUUM?
      answer: VACUUM reclaims storage.
metrics:
  - metric: similarity
";
    let suite = Suite::parse(source, Path::new("similar.yaml")).expect("suite parses");
    assert_eq!(suite.metrics[0].threshold, 0.8);
    let report = run_with(&suite, &Scripted::default(), &RunOptions::default()).await;
    let score = |id: &str| {
        report
            .cases
            .iter()
            .find(|c| c.case.id == id)
            .and_then(|c| c.scores["similarity"].value())
    };
    // "It empties tables. It is fast" against the reference: the same words of interest.
    assert!(
        (score("truncate").unwrap_or_default() - 1.0).abs() < 1e-6,
        "{report:?}"
    );
    // "No idea" shares none of VACUUM's.
    assert!(score("vacuum").unwrap_or(1.0) < 0.2, "{report:?}");
    assert_eq!(report.calls.judge, 0);

    // Without a reference the suite is refused before anything runs.
    let missing = source.replace("      answer: VACUUM reclaims storage.\n", "");
    let refused = Suite::parse(&missing, Path::new("similar.yaml")).expect_err("refused");
    assert!(
        refused.to_string().contains("needs a reference answer"),
        "{refused}"
    );
}

#[tokio::test]
async fn rubric_criteria_reach_the_judge_and_come_back_scored() {
    let suite = suite(
        "  - metric: rubric
    name: style
    scale: 5
    criteria:
      - name: cites
        description: Every claim cites a passage.
      - Answers in two sentences at most.
",
    );
    let report = run_with(&suite, &Scripted::default(), &RunOptions::default()).await;
    let style = metric(&report, "style");
    assert_eq!(style.measured, 2);
    let case = &report.cases[0];
    assert_eq!(case.scores["style"].value(), Some(0.75));
    assert!(
        case.scores["style"].reason().is_some_and(|r| r
            .contains("cites 4/5: about \"Every claim cites a passage.\"")
            && r.contains("criterion 2 4/5")),
        "{:?}",
        case.scores["style"]
    );
}

#[tokio::test]
async fn given_answers_are_scored_as_they_are_without_a_target_call() {
    let source = "name: logged
target: given
dataset:
  cases:
    - id: faithful
      question: What is TRUNCATE?
      response: It empties tables. It is fast
      contexts: [\"TRUNCATE: It empties tables. It is fast.\"]
    - id: made-up
      question: What is TRUNCATE?
      response: It deletes rows
      contexts: [\"TRUNCATE: It empties tables. It is fast.\"]
judge:
  route: judge
metrics:
  - metric: faithfulness
";
    let suite = Suite::parse(source, Path::new("logged.yaml")).expect("suite parses");
    let scripted = Scripted::default();
    let report = run_with(&suite, &scripted, &RunOptions::default()).await;
    let score = |id: &str| {
        report
            .cases
            .iter()
            .find(|c| c.case.id == id)
            .and_then(|c| c.scores["faithfulness"].value())
    };
    assert_eq!(score("faithful"), Some(1.0), "{report:?}");
    assert_eq!(score("made-up"), Some(0.0), "{report:?}");
    assert_eq!(
        scripted.target_calls.load(Ordering::SeqCst),
        0,
        "no target was called"
    );
    assert_eq!(report.calls.judge, 2);

    let missing = source.replace("      response: It deletes rows\n", "");
    let refused = Suite::parse(&missing, Path::new("logged.yaml")).expect_err("refused");
    assert!(
        refused
            .to_string()
            .contains("case `made-up` has no `response`"),
        "{refused}"
    );
}
