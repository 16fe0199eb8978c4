//! Running a suite against one target: a preflight that checks the target and the judges without
//! a model call, then every case (times `repeat`) concurrently, bounded by the suite's
//! `concurrency`, each answer scored by every metric; then aggregates, the baseline comparison and
//! the gates.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use cairn_core::eval::{Answerer, EvalAnswer, EvalCall, EvalCallError, EvalTarget};
use futures_util::{StreamExt, stream};

use crate::dataset::Case;
use crate::error::SuiteError;
use crate::metrics::{Check, Score};
use crate::report::{self, Attempt, Baseline, Calls, RunReport};
use crate::suite::Suite;

/// How to run, beyond what the suite file says.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Overrides the suite's `repeat`.
    pub repeat: Option<u32>,
    /// Refuse answers from the answer cache (every call goes to a model).
    pub fresh: bool,
    pub baseline: Option<Baseline>,
    /// Prompt versions the target uses instead of those it names (prompt name → version); judges
    /// keep theirs. Recorded with the run, so a gated label move can name the run that allowed it.
    pub prompt_pins: BTreeMap<String, i64>,
}

/// Told about each finished attempt, to draw progress.
pub trait Observer: Send + Sync {
    /// `done` of `total` attempts are finished; `running` holds each metric's running mean.
    fn attempt_done(&self, done: usize, total: usize, running: &[(String, Option<f64>)]);
}

/// An observer that shows nothing.
#[derive(Debug, Default)]
pub struct Quiet;

impl Observer for Quiet {
    fn attempt_done(&self, _: usize, _: usize, _: &[(String, Option<f64>)]) {}
}

/// Runs `suite` against `target`.
pub async fn run(
    suite: &Suite,
    target: &EvalTarget,
    answerer: &dyn Answerer,
    options: &RunOptions,
    observer: &dyn Observer,
) -> Result<RunReport, SuiteError> {
    let started_at = chrono::Utc::now();
    let clock = Instant::now();
    let unusable = |message: String| SuiteError::Unusable {
        suite: suite.name.clone(),
        message,
    };
    preflight(suite, target, answerer, options)
        .await
        .map_err(|e| unusable(e.to_string()))?;

    let repeat = options.repeat.unwrap_or(suite.repeat).max(1);
    let jobs: Vec<(usize, u32)> = (0..suite.cases.len())
        .flat_map(|case_idx| (0..repeat).map(move |r| (case_idx, r)))
        .collect();
    let total = jobs.len();
    let done = AtomicUsize::new(0);
    let running: Mutex<BTreeMap<String, (f64, usize)>> = Mutex::default();
    let calls = Mutex::new(Calls::default());
    let cost = Mutex::new(0.0_f64);

    let attempts: Vec<Result<(usize, Attempt), EvalCallError>> = stream::iter(jobs)
        .map(|(case_idx, repeat_idx)| {
            let case = &suite.cases[case_idx];
            let (done, running, calls, cost) = (&done, &running, &calls, &cost);
            async move {
                let attempt = attempt(suite, target, answerer, case, repeat_idx, options).await?;
                if let Ok(mut calls) = calls.lock() {
                    calls.target += usize::from(*target != EvalTarget::Given);
                    calls.judge += attempt.judge_calls;
                    calls.cached += attempt.cached_calls;
                }
                if let Ok(mut cost) = cost.lock() {
                    *cost += attempt.cost_usd;
                }
                let snapshot: Vec<(String, Option<f64>)> = match running.lock() {
                    Ok(mut running) => {
                        for (name, score) in &attempt.attempt.scores {
                            if let Some(value) = score.value() {
                                let entry = running.entry(name.clone()).or_default();
                                entry.0 += value;
                                entry.1 += 1;
                            }
                        }
                        suite
                            .metrics
                            .iter()
                            .map(|m| {
                                let mean = running.get(&m.name).map(|(sum, n)| sum / *n as f64);
                                (m.name.clone(), mean)
                            })
                            .collect()
                    }
                    Err(_) => Vec::new(),
                };
                let finished = done.fetch_add(1, Ordering::Relaxed) + 1;
                observer.attempt_done(finished, total, &snapshot);
                Ok((case_idx, attempt.attempt))
            }
        })
        .buffer_unordered(suite.concurrency)
        .collect()
        .await;

    let mut by_case: Vec<Vec<Attempt>> = vec![Vec::new(); suite.cases.len()];
    for result in attempts {
        let (case_idx, attempt) = result.map_err(|e| unusable(e.to_string()))?;
        by_case[case_idx].push(attempt);
    }
    let cases: Vec<_> = suite
        .cases
        .iter()
        .zip(by_case)
        .map(|(case, mut attempts)| {
            attempts.sort_by_key(|a| a.repeat);
            report::combine(case.clone(), attempts, &suite.metrics)
        })
        .collect();
    let metrics = report::summarise(&cases, &suite.metrics, options.baseline.as_ref());
    let gates: Vec<_> = suite
        .gates
        .iter()
        .flat_map(
            |gate| match metrics.iter().find(|m| m.name == gate.metric) {
                Some(summary) => gate.check(summary),
                None => Vec::new(),
            },
        )
        .collect();
    let passed = gates.iter().all(|g| g.passed);
    Ok(RunReport {
        suite: suite.name.clone(),
        target: target.to_string(),
        run_id: None,
        baseline: options.baseline.as_ref().map(|b| b.run_id),
        prompt_pins: options.prompt_pins.clone(),
        started_at,
        seconds: clock.elapsed().as_secs_f64(),
        repeat,
        calls: calls.into_inner().unwrap_or_default(),
        cost_usd: cost.into_inner().unwrap_or_default(),
        metrics,
        gates,
        cases,
        passed,
        calibrations: BTreeMap::new(),
        pairwise: None,
    })
}

/// The target and every judge prompt, checked with the first case, before any model call.
async fn preflight(
    suite: &Suite,
    target: &EvalTarget,
    answerer: &dyn Answerer,
    options: &RunOptions,
) -> Result<(), EvalCallError> {
    let Some(first) = suite.cases.first() else {
        return Ok(());
    };
    for case in &suite.cases {
        answerer
            .check(target, &target_call(suite, case, options))
            .await
            .map_err(|e| match e {
                EvalCallError::Unusable(m) => EvalCallError::Unusable(m),
                EvalCallError::Failed(m) => {
                    EvalCallError::Unusable(format!("case `{}` ({}): {m}", case.id, case.origin))
                }
            })?;
    }
    if suite
        .metrics
        .iter()
        .any(|m| matches!(m.check, Check::Similarity(_)))
    {
        answerer.embed(&[]).await.map_err(|e| {
            EvalCallError::Unusable(format!(
                "a similarity metric needs the embedding model: {e}"
            ))
        })?;
    }
    let Some(judge) = &suite.judge else {
        return Ok(());
    };
    let empty = EvalAnswer::default();
    for metric in &suite.metrics {
        if let Check::Judged(judged) = &metric.check {
            let call = EvalCall {
                variables: judged.variables(first, &empty),
                ..EvalCall::default()
            };
            let judge_target = EvalTarget::Model {
                route: judge.route.clone(),
                prompt: Some(judged.prompt.clone()),
            };
            answerer.check(&judge_target, &call).await.map_err(|e| {
                EvalCallError::Unusable(format!("the judge of metric `{}`: {e}", metric.name))
            })?;
        }
    }
    Ok(())
}

fn target_call(suite: &Suite, case: &Case, options: &RunOptions) -> EvalCall {
    EvalCall {
        question: case.question.clone(),
        variables: serde_json::Value::Object(case.variables.clone()),
        response_format: None,
        max_tokens: suite.max_tokens,
        temperature: suite.temperature,
        use_cache: !options.fresh,
        prompt_pins: options.prompt_pins.clone(),
    }
}

struct Scored {
    attempt: Attempt,
    judge_calls: usize,
    cached_calls: usize,
    cost_usd: f64,
}

/// One answer from the target, scored by every metric.
async fn attempt(
    suite: &Suite,
    target: &EvalTarget,
    answerer: &dyn Answerer,
    case: &Case,
    repeat: u32,
    options: &RunOptions,
) -> Result<Scored, EvalCallError> {
    let use_cache = !options.fresh;
    let call = target_call(suite, case, options);
    let reply = match (target, &case.given) {
        (EvalTarget::Given, Some(given)) => Ok(given_answer(case, given)),
        (EvalTarget::Given, None) => Err(EvalCallError::Failed(
            "the case has no `response` to score".into(),
        )),
        _ => answerer.answer(target, &call).await,
    };
    let answer = match reply {
        Ok(answer) => answer,
        Err(EvalCallError::Failed(reason)) => {
            let scores = suite
                .metrics
                .iter()
                .map(|m| {
                    (
                        m.name.clone(),
                        Score::unmeasured(format!("the target failed: {reason}")),
                    )
                })
                .collect();
            return Ok(Scored {
                attempt: Attempt {
                    repeat,
                    answer: None,
                    error: Some(reason),
                    scores,
                },
                judge_calls: 0,
                cached_calls: 0,
                cost_usd: 0.0,
            });
        }
        Err(unusable) => return Err(unusable),
    };
    let mut scored = Scored {
        attempt: Attempt {
            repeat,
            answer: None,
            error: None,
            scores: BTreeMap::new(),
        },
        judge_calls: 0,
        cached_calls: usize::from(answer.cached),
        cost_usd: answer.cost_usd.unwrap_or_default(),
    };
    for metric in &suite.metrics {
        let score = match (&metric.check, &suite.judge) {
            (Check::Judged(judged), Some(judge)) => {
                let judgement = judged
                    .score(answerer, judge, case, &answer, use_cache)
                    .await?;
                scored.judge_calls += usize::from(judgement.called);
                scored.cached_calls += usize::from(judgement.cached);
                scored.cost_usd += judgement.cost_usd.unwrap_or_default();
                judgement.score
            }
            (Check::Similarity(similarity), _) => similarity.score(answerer, case, &answer).await?,
            _ => metric.score_locally(case, &answer),
        };
        scored.attempt.scores.insert(metric.name.clone(), score);
    }
    scored.attempt.answer = Some(answer);
    Ok(scored)
}

/// A case's given answer as the metrics read answers: its response and its contexts as passages.
fn given_answer(case: &Case, given: &crate::dataset::Given) -> EvalAnswer {
    EvalAnswer {
        text: given.response.clone(),
        question: case.question.clone(),
        passages: given
            .contexts
            .iter()
            .enumerate()
            .map(|(i, text)| cairn_core::eval::EvalPassage {
                source: format!("context {}", i + 1),
                title: String::new(),
                text: text.clone(),
                score: 1.0,
            })
            .collect(),
        ..EvalAnswer::default()
    }
}

#[cfg(test)]
mod tests;
