//! Pairwise comparison of two targets on the same cases. The judge sees both answers twice, in both
//! orders; a preference counts only when both orders agree, and anything else is a tie. How often
//! the two orders agree (position consistency) is reported: a judge that mostly prefers whichever
//! answer comes first is not measuring the answers.

use cairn_core::eval::{Answerer, EvalAnswer, EvalCall, EvalCallError, EvalTarget};
use cairn_core::model::{ResponseFormat, unfenced_json};
use futures_util::{StreamExt, stream};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::dataset::Case;
use crate::metrics::JudgeSettings;

/// `pairwise:` in a suite with two targets.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairwiseFile {
    /// What makes one answer better (default: correct, complete and clear).
    #[serde(default)]
    pub criteria: Option<String>,
    /// The registered judge prompt (default `eval_pairwise@production`).
    #[serde(default)]
    pub prompt: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Pairwise {
    pub criteria: Option<String>,
    pub prompt: String,
}

impl Pairwise {
    pub fn build(file: PairwiseFile) -> Pairwise {
        Pairwise {
            criteria: file.criteria,
            prompt: file
                .prompt
                .unwrap_or_else(|| "eval_pairwise@production".to_owned()),
        }
    }
}

/// Which target a case went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The first target's answer, in both orders.
    First,
    /// The second target's answer, in both orders.
    Second,
    Tie,
}

/// One case judged in both orders.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairVerdict {
    pub case: String,
    /// The preference with the first target's answer shown first, then shown second, each mapped
    /// back to targets; `None` when that judgement was unmeasured.
    pub shown_first: Option<Outcome>,
    pub shown_second: Option<Outcome>,
    /// `None` when either judgement was unmeasured.
    pub outcome: Option<Outcome>,
    pub reasons: Vec<String>,
}

/// The comparison of two targets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairwiseReport {
    pub first: String,
    pub second: String,
    pub first_wins: usize,
    pub second_wins: usize,
    pub ties: usize,
    pub unmeasured: usize,
    /// Share of judged cases whose two orders agreed; `None` when none was judged.
    pub position_consistency: Option<f64>,
    pub judge_calls: usize,
    pub cases: Vec<PairVerdict>,
}

impl PairwiseReport {
    /// One line for the terminal.
    pub fn describe(&self) -> String {
        let consistency = self
            .position_consistency
            .map_or_else(|| "-".to_owned(), |c| format!("{:.0}%", c * 100.0));
        format!(
            "pairwise {} vs {}: {} wins {}, {} wins {}, {} ties, {} unmeasured; the two orders agreed on {consistency} of judged cases",
            self.first,
            self.second,
            self.first,
            self.first_wins,
            self.second,
            self.second_wins,
            self.ties,
            self.unmeasured
        )
    }
}

/// A case with both targets' answers (`None` where a target gave none).
#[derive(Debug)]
pub struct Pair<'a> {
    pub case: &'a Case,
    pub first: Option<&'a EvalAnswer>,
    pub second: Option<&'a EvalAnswer>,
}

/// Judges every pair in both orders.
pub async fn compare(
    answerer: &dyn Answerer,
    judge: &JudgeSettings,
    settings: &Pairwise,
    targets: (&str, &str),
    pairs: &[Pair<'_>],
    concurrency: usize,
) -> Result<PairwiseReport, EvalCallError> {
    let verdicts: Vec<Result<(PairVerdict, usize), EvalCallError>> = stream::iter(pairs)
        .map(|pair| judge_pair(answerer, judge, settings, pair))
        .buffered(concurrency.max(1))
        .collect()
        .await;
    let mut report = PairwiseReport {
        first: targets.0.to_owned(),
        second: targets.1.to_owned(),
        first_wins: 0,
        second_wins: 0,
        ties: 0,
        unmeasured: 0,
        position_consistency: None,
        judge_calls: 0,
        cases: Vec::new(),
    };
    let mut consistent = 0;
    for verdict in verdicts {
        let (verdict, calls) = verdict?;
        report.judge_calls += calls;
        match verdict.outcome {
            Some(Outcome::First) => report.first_wins += 1,
            Some(Outcome::Second) => report.second_wins += 1,
            Some(Outcome::Tie) => report.ties += 1,
            None => report.unmeasured += 1,
        }
        if verdict.outcome.is_some() && verdict.shown_first == verdict.shown_second {
            consistent += 1;
        }
        report.cases.push(verdict);
    }
    let judged = report.cases.len() - report.unmeasured;
    report.position_consistency = (judged > 0).then(|| consistent as f64 / judged as f64);
    Ok(report)
}

async fn judge_pair(
    answerer: &dyn Answerer,
    judge: &JudgeSettings,
    settings: &Pairwise,
    pair: &Pair<'_>,
) -> Result<(PairVerdict, usize), EvalCallError> {
    let id = pair.case.id.clone();
    let (Some(first), Some(second)) = (pair.first, pair.second) else {
        return Ok((
            PairVerdict {
                case: id,
                shown_first: None,
                shown_second: None,
                outcome: None,
                reasons: vec!["a target gave no answer".to_owned()],
            },
            0,
        ));
    };
    let mut reasons = Vec::new();
    let ask = |one: &str, two: &str| {
        let call = EvalCall {
            variables: json!({
                "question": pair.case.question,
                "answer_1": one,
                "answer_2": two,
                "reference": pair.case.reference.clone().unwrap_or_default(),
                "criteria": settings.criteria.clone().unwrap_or_else(|| {
                    "Which answer answers the question more correctly, completely and clearly?".to_owned()
                }),
            }),
            response_format: Some(ResponseFormat::JsonSchema {
                name: "eval_pairwise".into(),
                schema: json!({
                    "type": "object",
                    "required": ["better"],
                    "properties": {
                        "better": {"enum": ["1", "2", "tie"]},
                        "reason": {"type": "string"}
                    }
                }),
                strict: true,
            }),
            max_tokens: judge.max_tokens,
            temperature: Some(0.0),
            use_cache: true,
            ..EvalCall::default()
        };
        let target = EvalTarget::Model {
            route: judge.route.clone(),
            prompt: Some(settings.prompt.clone()),
        };
        async move { answerer.answer(&target, &call).await }
    };
    let reply = ask(&first.text, &second.text).await;
    let shown_first = read(reply, &mut reasons, false)?;
    let reply = ask(&second.text, &first.text).await;
    let shown_second = read(reply, &mut reasons, true)?;
    let outcome = match (shown_first, shown_second) {
        (Some(a), Some(b)) if a == b => Some(a),
        (Some(_), Some(_)) => Some(Outcome::Tie),
        _ => None,
    };
    Ok((
        PairVerdict {
            case: id,
            shown_first,
            shown_second,
            outcome,
            reasons,
        },
        2,
    ))
}

/// The preference in one reply, mapped back to targets (`swapped`: the second target's answer
/// was shown first).
fn read(
    reply: Result<EvalAnswer, EvalCallError>,
    reasons: &mut Vec<String>,
    swapped: bool,
) -> Result<Option<Outcome>, EvalCallError> {
    let order = if swapped {
        "second target shown first"
    } else {
        "first target shown first"
    };
    let text = match reply {
        Ok(answer) => answer.text,
        Err(EvalCallError::Failed(reason)) => {
            reasons.push(format!("{order}: the judge failed: {reason}"));
            return Ok(None);
        }
        Err(unusable) => return Err(unusable),
    };
    let value: Value = serde_json::from_str(unfenced_json(&text)).unwrap_or(Value::Null);
    let shown = match value["better"].as_str() {
        Some("1") => Outcome::First,
        Some("2") => Outcome::Second,
        Some("tie") => Outcome::Tie,
        _ => {
            reasons.push(format!("{order}: no preference in the judge's answer"));
            return Ok(None);
        }
    };
    reasons.push(format!(
        "{order}: {} ({})",
        value["better"].as_str().unwrap_or_default(),
        value["reason"].as_str().unwrap_or_default()
    ));
    Ok(Some(match (shown, swapped) {
        (Outcome::Tie, _) => Outcome::Tie,
        (shown, false) => shown,
        (Outcome::First, true) => Outcome::Second,
        (Outcome::Second, true) => Outcome::First,
    }))
}

#[cfg(test)]
mod tests;
