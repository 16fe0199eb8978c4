//! Pairwise judging in both orders against scripted judges: a fair one, one that always prefers
//! the first answer shown, and one that answers in prose.

use async_trait::async_trait;
use cairn_core::eval::{Answerer, EvalAnswer, EvalCall, EvalCallError, EvalTarget};
use serde_json::{Map, json};

use super::*;

#[derive(Debug)]
enum Judge {
    /// Prefers the answer that mentions "empties"; a tie when both or neither do.
    Fair,
    /// Always "1".
    FirstShown,
    Prose,
}

#[async_trait]
impl Answerer for Judge {
    async fn answer(&self, _: &EvalTarget, call: &EvalCall) -> Result<EvalAnswer, EvalCallError> {
        let one = call.variables["answer_1"]
            .as_str()
            .unwrap_or_default()
            .contains("empties");
        let two = call.variables["answer_2"]
            .as_str()
            .unwrap_or_default()
            .contains("empties");
        let text = match self {
            Judge::Prose => "Both are fine, really.".to_owned(),
            Judge::FirstShown => json!({"better": "1", "reason": "first"}).to_string(),
            Judge::Fair => {
                let better = match (one, two) {
                    (true, false) => "1",
                    (false, true) => "2",
                    _ => "tie",
                };
                json!({"better": better, "reason": "mentions empties"}).to_string()
            }
        };
        Ok(EvalAnswer {
            text,
            ..EvalAnswer::default()
        })
    }

    async fn check(&self, _: &EvalTarget, _: &EvalCall) -> Result<(), EvalCallError> {
        Ok(())
    }
}

fn case(id: &str) -> Case {
    Case {
        id: id.into(),
        question: "What is TRUNCATE?".into(),
        variables: Map::new(),
        reference: None,
        gold: Vec::new(),
        tags: Vec::new(),
        origin: "suite.yaml:1".into(),
        given: None,
    }
}

fn answer(text: &str) -> EvalAnswer {
    EvalAnswer {
        text: text.into(),
        ..EvalAnswer::default()
    }
}

async fn judged(judge: &Judge) -> PairwiseReport {
    let cases = [
        case("a-better"),
        case("b-better"),
        case("same"),
        case("missing"),
    ];
    let good = answer("It empties tables.");
    let bad = answer("It deletes some rows.");
    let pairs = [
        Pair {
            case: &cases[0],
            first: Some(&good),
            second: Some(&bad),
        },
        Pair {
            case: &cases[1],
            first: Some(&bad),
            second: Some(&good),
        },
        Pair {
            case: &cases[2],
            first: Some(&bad),
            second: Some(&bad),
        },
        Pair {
            case: &cases[3],
            first: Some(&good),
            second: None,
        },
    ];
    let settings = Pairwise::build(PairwiseFile {
        criteria: None,
        prompt: None,
    });
    let judge_settings = JudgeSettings {
        route: "judge".into(),
        max_tokens: None,
    };
    compare(
        judge,
        &judge_settings,
        &settings,
        ("app:a", "app:b"),
        &pairs,
        2,
    )
    .await
    .expect("judged")
}

#[tokio::test]
async fn a_fair_judge_agrees_with_itself_in_both_orders() {
    let report = judged(&Judge::Fair).await;
    assert_eq!(
        (
            report.first_wins,
            report.second_wins,
            report.ties,
            report.unmeasured
        ),
        (1, 1, 1, 1)
    );
    assert_eq!(report.position_consistency, Some(1.0));
    assert_eq!(report.judge_calls, 6, "two calls per pair with two answers");
    assert_eq!(report.cases[1].outcome, Some(Outcome::Second));
}

#[tokio::test]
async fn a_judge_that_prefers_the_first_answer_shown_decides_nothing() {
    let report = judged(&Judge::FirstShown).await;
    assert_eq!(
        (report.first_wins, report.second_wins, report.ties),
        (0, 0, 3)
    );
    assert_eq!(report.position_consistency, Some(0.0));
    assert!(
        report.describe().contains("agreed on 0%"),
        "{}",
        report.describe()
    );
}

#[tokio::test]
async fn prose_leaves_pairs_unmeasured() {
    let report = judged(&Judge::Prose).await;
    assert_eq!(report.unmeasured, 4);
    assert_eq!(report.position_consistency, None);
    assert!(
        report.cases[0].reasons[0].contains("no preference"),
        "{:?}",
        report.cases[0]
    );
}
