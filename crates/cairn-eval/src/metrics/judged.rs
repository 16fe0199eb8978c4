//! LLM-judged RAG metrics. Each asks a judge (a model or route) through a registered prompt and
//! parses a JSON verdict validated against a schema; the pipeline asks the judge again while its
//! answer does not match. A judge that fails, or whose answer still does not parse, leaves the score
//! unmeasured, with the reason.
//!
//! - faithfulness: the answer split into claims, each supported by the retrieved passages or not;
//!   score = supported / claims.
//! - context recall: the same over the reference answer's claims: the share the passages support.
//! - answer relevance and answer correctness: a verdict (yes, partly, no) scored 1, 0.5, 0.
//! - rubric: the suite's criteria, each scored on a scale with a reason (`rubric.rs`).

use cairn_core::eval::{Answerer, EvalAnswer, EvalCall, EvalCallError, EvalTarget};
use cairn_core::model::{ResponseFormat, unfenced_json};
use serde::Deserialize;
use serde_json::{Value, json};

use super::rubric::Rubric;
use super::{MetricKind, Score};
use crate::dataset::Case;

/// Which judge answers, for every judged metric of a suite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JudgeSettings {
    /// The model or route the judge prompts are sent to.
    pub route: String,
    pub max_tokens: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct Judged {
    kind: MetricKind,
    /// The registered judge prompt.
    pub prompt: String,
    /// The criteria of a rubric metric.
    rubric: Option<Rubric>,
}

/// What a judge's call produced: the score and what the call cost.
#[derive(Debug, Clone)]
pub struct Judgement {
    pub score: Score,
    /// Whether the judge was asked (a score can be unmeasured without asking).
    pub called: bool,
    pub cached: bool,
    pub cost_usd: Option<f64>,
    /// The judge prompt version that produced it.
    pub prompt_version: Option<i64>,
}

impl Judged {
    pub fn build(
        kind: MetricKind,
        prompt: Option<String>,
        rubric: Option<Rubric>,
    ) -> Result<Judged, String> {
        let prompt = prompt.unwrap_or_else(|| format!("eval_{}@production", kind.as_str()));
        if prompt.trim().is_empty() {
            return Err(
                "`prompt` is empty; name a registered prompt like eval_faithfulness@production"
                    .into(),
            );
        }
        Ok(Judged {
            kind,
            prompt,
            rubric,
        })
    }

    fn claims_based(&self) -> bool {
        matches!(
            self.kind,
            MetricKind::Faithfulness | MetricKind::ContextRecall
        )
    }

    /// The judge prompt's variables for this case and answer.
    pub fn variables(&self, case: &Case, answer: &EvalAnswer) -> Value {
        let passages: Vec<&str> = answer.passages.iter().map(|p| p.text.as_str()).collect();
        let reference = case.reference.as_deref().unwrap_or_default();
        if let Some(rubric) = &self.rubric {
            return json!({
                "question": case.question,
                "answer": answer.text,
                "reference": reference,
                "passages": passages,
                "criteria": rubric.criteria,
                "scale": rubric.scale,
            });
        }
        match self.kind {
            MetricKind::Faithfulness => {
                json!({"question": case.question, "answer": answer.text, "passages": passages})
            }
            MetricKind::ContextRecall => {
                json!({"question": case.question, "reference": reference, "passages": passages})
            }
            MetricKind::AnswerCorrectness => {
                json!({"question": case.question, "answer": answer.text, "reference": reference})
            }
            _ => json!({"question": case.question, "answer": answer.text}),
        }
    }

    fn schema(&self) -> Value {
        if let Some(rubric) = &self.rubric {
            rubric.schema()
        } else if self.claims_based() {
            json!({
                "type": "object",
                "required": ["claims"],
                "properties": {"claims": {"type": "array", "items": {
                    "type": "object",
                    "required": ["claim", "supported"],
                    "properties": {
                        "claim": {"type": "string"},
                        "supported": {"type": "boolean"},
                        "reason": {"type": "string"}
                    }
                }}}
            })
        } else {
            json!({
                "type": "object",
                "required": ["verdict"],
                "properties": {
                    "verdict": {"enum": ["yes", "partly", "no"]},
                    "reason": {"type": "string"}
                }
            })
        }
    }

    /// Asks the judge and reads its verdict.
    pub async fn score(
        &self,
        answerer: &dyn Answerer,
        judge: &JudgeSettings,
        case: &Case,
        answer: &EvalAnswer,
        use_cache: bool,
    ) -> Result<Judgement, EvalCallError> {
        if self.kind == MetricKind::Faithfulness && answer.passages.is_empty() {
            return Ok(Judgement {
                score: Score::unmeasured("no passages were retrieved: nothing to be faithful to"),
                called: false,
                cached: false,
                cost_usd: None,
                prompt_version: None,
            });
        }
        let call = EvalCall {
            question: String::new(),
            variables: self.variables(case, answer),
            response_format: Some(ResponseFormat::JsonSchema {
                name: format!("eval_{}", self.kind.as_str()),
                schema: self.schema(),
                strict: true,
            }),
            max_tokens: judge.max_tokens,
            temperature: Some(0.0),
            use_cache,
            prompt_pins: Default::default(),
        };
        let target = EvalTarget::Model {
            route: judge.route.clone(),
            prompt: Some(self.prompt.clone()),
        };
        let reply = match answerer.answer(&target, &call).await {
            Ok(reply) => reply,
            Err(EvalCallError::Failed(reason)) => {
                return Ok(Judgement {
                    score: Score::unmeasured(format!("the judge failed: {reason}")),
                    called: true,
                    cached: false,
                    cost_usd: None,
                    prompt_version: None,
                });
            }
            Err(unusable) => return Err(unusable),
        };
        Ok(Judgement {
            score: self.read(&reply.text),
            called: true,
            cached: reply.cached,
            cost_usd: reply.cost_usd,
            prompt_version: reply.prompt.and_then(|(_, version)| version),
        })
    }

    /// The score in a judge's answer, or why it has none.
    pub fn read(&self, text: &str) -> Score {
        let value: Value = match serde_json::from_str(unfenced_json(text)) {
            Ok(value) => value,
            Err(e) => {
                return Score::unmeasured(format!(
                    "the judge's answer is not JSON ({e}): {}",
                    excerpt(text)
                ));
            }
        };
        if let Some(rubric) = &self.rubric {
            rubric.read(&value, &excerpt(text))
        } else if self.claims_based() {
            read_claims(&value, text)
        } else {
            read_verdict(&value, text)
        }
    }
}

#[derive(Deserialize)]
struct Claim {
    claim: String,
    supported: bool,
    #[serde(default)]
    reason: String,
}

fn read_claims(value: &Value, text: &str) -> Score {
    let Some(claims) = value
        .get("claims")
        .and_then(|c| serde_json::from_value::<Vec<Claim>>(c.clone()).ok())
    else {
        return Score::unmeasured(format!(
            "the judge's answer has no list of claims with `claim` and `supported`: {}",
            excerpt(text)
        ));
    };
    if claims.is_empty() {
        return Score::unmeasured("the judge found no claims to check");
    }
    let supported = claims.iter().filter(|c| c.supported).count();
    let unsupported: Vec<String> = claims
        .iter()
        .filter(|c| !c.supported)
        .map(|c| {
            if c.reason.is_empty() {
                format!("`{}`", c.claim)
            } else {
                format!("`{}` ({})", c.claim, c.reason)
            }
        })
        .collect();
    let reason = if unsupported.is_empty() {
        format!("all {} claims supported", claims.len())
    } else {
        format!(
            "{supported} of {} claims supported; not supported: {}",
            claims.len(),
            unsupported.join("; ")
        )
    };
    Score::because(supported as f64 / claims.len() as f64, reason)
}

fn read_verdict(value: &Value, text: &str) -> Score {
    let reason = value["reason"].as_str().unwrap_or_default().to_owned();
    let score = match value["verdict"].as_str() {
        Some("yes") => 1.0,
        Some("partly") => 0.5,
        Some("no") => 0.0,
        _ => {
            return Score::unmeasured(format!(
                "the judge's answer has no verdict (yes, partly or no): {}",
                excerpt(text)
            ));
        }
    };
    Score::because(score, reason)
}

fn excerpt(text: &str) -> String {
    let cut: String = text.chars().take(120).collect();
    if cut.len() < text.len() {
        format!("{cut}…")
    } else {
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judge_answers_are_read_or_left_unmeasured() {
        let faithfulness = Judged::build(MetricKind::Faithfulness, None, None).expect("builds");
        assert_eq!(faithfulness.prompt, "eval_faithfulness@production");
        let score = faithfulness.read(
            "```json\n{\"claims\": [{\"claim\": \"a\", \"supported\": true}, {\"claim\": \"b\", \"supported\": false, \"reason\": \"not in [1]\"}]}\n```",
        );
        assert_eq!(score.value(), Some(0.5));
        assert!(
            score
                .reason()
                .is_some_and(|r| r.contains("`b` (not in [1])"))
        );
        assert_eq!(
            faithfulness.read("Sure! Everything is supported.").value(),
            None
        );
        assert_eq!(faithfulness.read("{\"claims\": []}").value(), None);
        assert_eq!(faithfulness.read("{\"verdict\": \"yes\"}").value(), None);

        let relevance = Judged::build(MetricKind::AnswerRelevance, None, None).expect("builds");
        assert_eq!(
            relevance.read("{\"verdict\": \"partly\"}").value(),
            Some(0.5)
        );
        assert_eq!(relevance.read("{\"verdict\": \"maybe\"}").value(), None);
    }
}
