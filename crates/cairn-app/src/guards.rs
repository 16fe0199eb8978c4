//! The guard stages of the pipeline: each configured [`Guardrail`] sees the question, each
//! retrieved passage and the answer, at the stages it declares, and its verdicts go into lineage.
//! With no guardrails configured every stage lets everything through unchanged.

use std::sync::Arc;

use cairn_core::Guardrail;
use cairn_core::guard::{GuardStage, GuardVerdict};
use serde::Serialize;

use crate::error::AnswerError;

/// What one guardrail decided at one stage, as the lineage record keeps it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerdictRecord {
    pub guard: String,
    pub stage: GuardStage,
    /// `allow`, `redact` or `block`.
    pub action: &'static str,
    /// What a redaction replaced (kinds, not the raw values).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What a stage made of a text.
#[derive(Debug, Clone, PartialEq)]
pub enum Checked {
    /// The text to go on with: the original, or a redacted copy.
    Pass(String),
    /// Blocked by this guard, for this reason.
    Blocked { guard: String, reason: String },
}

/// The configured guardrails, in the order they run.
#[derive(Debug, Clone, Default)]
pub struct Guards {
    guards: Vec<Arc<dyn Guardrail>>,
}

impl Guards {
    pub fn new(guards: Vec<Arc<dyn Guardrail>>) -> Guards {
        Guards { guards }
    }

    /// Whether any guard runs at `stage` (else the stage has nothing to read).
    pub fn runs_at(&self, stage: GuardStage) -> bool {
        self.guards.iter().any(|g| g.stages().contains(&stage))
    }

    /// Runs every guard that declares `stage` over `text`, in order; each sees the text the one
    /// before it let through. Stops at the first block.
    pub async fn check(
        &self,
        stage: GuardStage,
        text: String,
        verdicts: &mut Vec<VerdictRecord>,
    ) -> Checked {
        let mut text = text;
        for guard in self.guards.iter().filter(|g| g.stages().contains(&stage)) {
            let verdict = guard.check(stage, &text).await;
            let mut record = VerdictRecord {
                guard: guard.name().to_owned(),
                stage,
                action: "allow",
                findings: Vec::new(),
                reason: None,
            };
            match verdict {
                GuardVerdict::Allow => {}
                GuardVerdict::Redact {
                    text: redacted,
                    findings,
                } => {
                    record.action = "redact";
                    record.findings = findings;
                    text = redacted;
                }
                GuardVerdict::Block { reason } => {
                    record.action = "block";
                    record.reason = Some(reason.clone());
                    verdicts.push(record);
                    return Checked::Blocked {
                        guard: guard.name().to_owned(),
                        reason,
                    };
                }
            }
            verdicts.push(record);
        }
        Checked::Pass(text)
    }

    /// [`Guards::check`] for stages where a block ends the request.
    pub async fn require(
        &self,
        stage: GuardStage,
        text: String,
        verdicts: &mut Vec<VerdictRecord>,
    ) -> Result<String, AnswerError> {
        match self.check(stage, text, verdicts).await {
            Checked::Pass(text) => Ok(text),
            Checked::Blocked { guard, reason } => Err(AnswerError::Blocked {
                guard,
                stage,
                reason,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blocks texts containing `forbidden`, redacts `secret`.
    #[derive(Debug)]
    struct Words;

    #[async_trait::async_trait]
    impl Guardrail for Words {
        fn name(&self) -> &str {
            "words"
        }
        fn stages(&self) -> &[GuardStage] {
            &[GuardStage::Input, GuardStage::Output]
        }
        async fn check(&self, _stage: GuardStage, text: &str) -> GuardVerdict {
            if text.contains("forbidden") {
                GuardVerdict::Block {
                    reason: "a forbidden word".into(),
                }
            } else if text.contains("secret") {
                GuardVerdict::Redact {
                    text: text.replace("secret", "[REDACTED]"),
                    findings: vec!["word".into()],
                }
            } else {
                GuardVerdict::Allow
            }
        }
    }

    async fn check(stage: GuardStage, text: &str) -> (Checked, Vec<VerdictRecord>) {
        let guards = Guards::new(vec![Arc::new(Words)]);
        let mut verdicts = Vec::new();
        let checked = guards.check(stage, text.to_owned(), &mut verdicts).await;
        (checked, verdicts)
    }

    #[tokio::test]
    async fn stages_pass_redact_or_block_and_record_each_verdict() {
        let (checked, verdicts) = check(GuardStage::Input, "hello").await;
        assert_eq!(checked, Checked::Pass("hello".into()));
        assert_eq!(verdicts[0].action, "allow");

        let (checked, verdicts) = check(GuardStage::Input, "my secret").await;
        assert_eq!(checked, Checked::Pass("my [REDACTED]".into()));
        assert_eq!(
            (verdicts[0].action, verdicts[0].findings.as_slice()),
            ("redact", ["word".to_owned()].as_slice())
        );

        let (checked, verdicts) = check(GuardStage::Output, "forbidden").await;
        assert!(matches!(checked, Checked::Blocked { ref guard, .. } if guard == "words"));
        assert_eq!(verdicts[0].reason.as_deref(), Some("a forbidden word"));

        // A guard that does not declare a stage does not run there.
        let (checked, verdicts) = check(GuardStage::RetrievedContext, "forbidden").await;
        assert_eq!(checked, Checked::Pass("forbidden".into()));
        assert!(verdicts.is_empty());
    }

    #[tokio::test]
    async fn no_guards_let_everything_through_and_record_nothing() {
        let mut verdicts = Vec::new();
        let result = Guards::default()
            .require(GuardStage::Input, "forbidden".into(), &mut verdicts)
            .await;
        assert_eq!(result.ok().as_deref(), Some("forbidden"));
        assert!(verdicts.is_empty());
    }
}
