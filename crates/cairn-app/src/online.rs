//! Online evaluation's door: a fresh app answer, once complete, is offered to the configured
//! [`OnlineEvaluator`] with its question and cited passages, as the pipeline keeps them (redacted
//! values as placeholders). The evaluator samples and judges off the request path.

use std::sync::Arc;

use cairn_core::eval::{Answered, EvalPassage, OnlineEvaluator};
use cairn_rag::Citation;
use uuid::Uuid;

/// What an app answer will be offered with.
#[derive(Debug, Clone)]
pub(crate) struct OnlineOffer {
    pub evaluator: Arc<dyn OnlineEvaluator>,
    pub app: String,
    /// The question after the input guards.
    pub question: String,
}

impl OnlineOffer {
    pub fn offer(&self, lineage_id: Uuid, answer: &str, citations: &[Citation]) {
        self.evaluator.observe(Answered {
            lineage_id,
            app: self.app.clone(),
            question: self.question.clone(),
            answer: answer.to_owned(),
            passages: eval_passages(citations),
        });
    }
}

/// Cited passages as the eval harness sees them: source (the URL where there is one), title, text
/// and score, in the order the prompt numbered them.
pub(crate) fn eval_passages(citations: &[Citation]) -> Vec<EvalPassage> {
    citations
        .iter()
        .map(|c| EvalPassage {
            source: c.url.clone().unwrap_or_else(|| c.source.clone()),
            title: c.title.clone(),
            text: c.text.clone(),
            score: c.score,
        })
        .collect()
}
