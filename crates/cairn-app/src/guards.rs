//! The guard stages of the pipeline: each configured [`Guardrail`] sees the question, each
//! retrieved passage and the answer, at the stages it declares, and its verdicts go into lineage.
//! With no guardrails configured every stage lets everything through unchanged.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use cairn_core::Guardrail;
use cairn_core::guard::{
    FailureMode, GuardError, GuardScope, GuardStage, GuardVerdict, Settled, settled_cut,
};
use cairn_core::model::{ChatRequest, Role};
use cairn_rag::Passage;
use serde::Serialize;

use crate::error::AnswerError;

/// What one guardrail decided at one stage, as the lineage record keeps it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerdictRecord {
    pub guard: String,
    pub stage: GuardStage,
    /// `allow`, `flag`, `redact`, `block` or `error` (failed open).
    pub action: &'static str,
    /// What was found, by kind (`email`: 2), never the values.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub findings: BTreeMap<String, u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// How long the check took.
    pub latency_ms: f64,
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
        self.at(stage).next().is_some()
    }

    fn at(&self, stage: GuardStage) -> impl Iterator<Item = &Arc<dyn Guardrail>> {
        self.guards
            .iter()
            .filter(move |g| g.stages().contains(&stage))
    }

    /// How much of a streamed answer's unsent tail every output guard has settled (see
    /// [`Guardrail::settled`]).
    pub fn settled(&self, unsent: &str, preceding: &str) -> usize {
        let settled: Vec<Settled> = self
            .at(GuardStage::Output)
            .map(|g| g.settled(unsent, preceding))
            .collect();
        settled_cut(&settled, unsent.len())
    }

    /// Runs every guard that declares `stage` over `text`, in order; each sees the text the one
    /// before it let through. Stops at the first block.
    pub async fn check(
        &self,
        stage: GuardStage,
        text: String,
        scope: &mut GuardScope,
        verdicts: &mut Vec<VerdictRecord>,
    ) -> Checked {
        self.check_as(stage, text, scope, verdicts, true).await
    }

    /// [`Guards::check`], over the guards declared for `stage` or (`declared` false) over all.
    async fn check_as(
        &self,
        stage: GuardStage,
        text: String,
        scope: &mut GuardScope,
        verdicts: &mut Vec<VerdictRecord>,
        declared: bool,
    ) -> Checked {
        let mut text = text;
        let guards = self
            .guards
            .iter()
            .filter(|g| !declared || g.stages().contains(&stage));
        for guard in guards {
            let started = Instant::now();
            let verdict = run(guard.as_ref(), stage, &text, scope).await;
            let mut record = VerdictRecord {
                guard: guard.name().to_owned(),
                stage,
                action: "allow",
                findings: BTreeMap::new(),
                reason: None,
                latency_ms: 0.0,
            };
            let blocked = match verdict {
                Ok(GuardVerdict::Allow) => None,
                Ok(GuardVerdict::Flag { findings }) => {
                    record.action = "flag";
                    record.findings = counts(findings);
                    None
                }
                Ok(GuardVerdict::Redact {
                    text: redacted,
                    findings,
                }) => {
                    record.action = "redact";
                    record.findings = counts(findings);
                    text = redacted;
                    None
                }
                Ok(GuardVerdict::Block { reason }) => Some(reason),
                Err(error) => match guard.failure_mode() {
                    FailureMode::Open => {
                        tracing::warn!(guard = guard.name(), %stage, %error, "guardrail failed open: the text passes unchecked");
                        record.action = "error";
                        record.reason = Some(error.0);
                        None
                    }
                    FailureMode::Closed => Some(format!(
                        "the check failed ({error}) and this guard fails closed"
                    )),
                },
            };
            record.latency_ms = started.elapsed().as_secs_f64() * 1e3;
            if let Some(reason) = &blocked {
                record.action = "block";
                record.reason = Some(reason.clone());
            }
            observe(&record);
            verdicts.push(record);
            if let Some(reason) = blocked {
                return Checked::Blocked {
                    guard: guard.name().to_owned(),
                    reason,
                };
            }
        }
        Checked::Pass(text)
    }

    /// [`Guards::check`] for stages where a block ends the request.
    pub async fn require(
        &self,
        stage: GuardStage,
        text: String,
        scope: &mut GuardScope,
        verdicts: &mut Vec<VerdictRecord>,
    ) -> Result<String, AnswerError> {
        match self.check(stage, text, scope, verdicts).await {
            Checked::Pass(text) => Ok(text),
            Checked::Blocked { guard, reason } => Err(AnswerError::Blocked {
                guard,
                stage,
                reason,
            }),
        }
    }
}

/// The guards of one request, the placeholders they gave out, and their verdicts so far.
pub(crate) struct GuardRun {
    pub(crate) guards: Guards,
    pub(crate) scope: GuardScope,
    pub(crate) verdicts: Vec<VerdictRecord>,
}

impl GuardRun {
    pub(crate) fn new(guards: Guards) -> GuardRun {
        GuardRun {
            guards,
            scope: GuardScope::default(),
            verdicts: Vec::new(),
        }
    }

    /// Input guards over each user message; a block ends the request.
    pub(crate) async fn input(&mut self, chat: &mut ChatRequest) -> Result<(), AnswerError> {
        for message in chat.messages.iter_mut().filter(|m| m.role == Role::User) {
            let text = std::mem::take(&mut message.content);
            message.content = self
                .guards
                .require(GuardStage::Input, text, &mut self.scope, &mut self.verdicts)
                .await?;
        }
        Ok(())
    }

    /// Context guards over each retrieved passage: a blocked passage never reaches the prompt
    /// (its verdict is in lineage), a redacted one goes on redacted.
    pub(crate) async fn context(&mut self, passages: Vec<Passage>) -> Vec<Passage> {
        let mut kept = Vec::with_capacity(passages.len());
        for mut passage in passages {
            let text = std::mem::take(&mut passage.content);
            let checked = self
                .guards
                .check(
                    GuardStage::RetrievedContext,
                    text,
                    &mut self.scope,
                    &mut self.verdicts,
                )
                .await;
            if let Checked::Pass(text) = checked {
                passage.content = text;
                kept.push(passage);
            }
        }
        kept
    }
}

/// Which guards run for which target: an app's (`app:NAME`) or a route's or model's (its name);
/// and every declared guard by name, for checks other services ask for.
#[derive(Debug, Clone, Default)]
pub struct GuardPolicy {
    by_target: HashMap<String, Guards>,
    named: HashMap<String, Arc<dyn Guardrail>>,
}

/// A text checked by named guards at one stage, for another service.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TextCheck {
    /// `allow`, `flag`, `redact` or `block`: what the guards decided together.
    pub action: &'static str,
    /// The text to go on with (redacted where a guard redacts); absent when blocked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub verdicts: Vec<VerdictRecord>,
}

impl GuardPolicy {
    /// `by_target` maps `app:NAME` and route or model names to their guards, in order; `named`
    /// holds every declared guard.
    pub fn new(
        by_target: HashMap<String, Guards>,
        named: HashMap<String, Arc<dyn Guardrail>>,
    ) -> GuardPolicy {
        GuardPolicy { by_target, named }
    }

    /// Every declared guard's name, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.named.keys().cloned().collect();
        names.sort();
        names
    }

    /// Runs the guards named `names`, in order, over `text` as at `stage`, whatever stages they
    /// are declared for.
    pub async fn check_text(
        &self,
        names: &[String],
        stage: GuardStage,
        text: String,
    ) -> Result<TextCheck, AnswerError> {
        let guards = names
            .iter()
            .map(|name| {
                self.named.get(name).cloned().ok_or_else(|| {
                    AnswerError::UnknownGuard(format!(
                        "guard `{name}` is not declared; guards: {}",
                        if self.named.is_empty() {
                            "none (declare them as [[guards]] in the config)".to_owned()
                        } else {
                            self.names().join(", ")
                        }
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if guards.is_empty() {
            return Err(AnswerError::invalid(
                "invalid_request",
                "name at least one guard to run",
            ));
        }
        let mut verdicts = Vec::new();
        let checked = Guards::new(guards)
            .check_as(
                stage,
                text,
                &mut GuardScope::default(),
                &mut verdicts,
                false,
            )
            .await;
        let most = |wanted: &str| verdicts.iter().any(|v| v.action == wanted);
        Ok(match checked {
            Checked::Pass(text) => TextCheck {
                action: if most("redact") {
                    "redact"
                } else if most("flag") {
                    "flag"
                } else {
                    "allow"
                },
                text: Some(text),
                blocked_by: None,
                reason: None,
                verdicts,
            },
            Checked::Blocked { guard, reason } => TextCheck {
                action: "block",
                text: None,
                blocked_by: Some(guard),
                reason: Some(reason),
                verdicts,
            },
        })
    }

    /// The guards of the app, route or model a request names (none when it has none).
    pub fn for_target(&self, target: &str) -> Guards {
        self.by_target.get(target).cloned().unwrap_or_default()
    }
}

/// Folds the verdicts of one more streamed part into one record per guard: the most severe
/// action, findings added up, latency summed.
pub(crate) fn merge_streamed(records: &mut Vec<VerdictRecord>, new: Vec<VerdictRecord>) {
    fn severity(action: &str) -> u8 {
        match action {
            "block" => 4,
            "redact" => 3,
            "flag" => 2,
            "error" => 1,
            _ => 0,
        }
    }
    for record in new {
        match records
            .iter_mut()
            .find(|r| r.guard == record.guard && r.stage == record.stage)
        {
            Some(existing) => {
                if severity(record.action) > severity(existing.action) {
                    existing.action = record.action;
                    existing.reason = record.reason;
                }
                for (kind, n) in record.findings {
                    *existing.findings.entry(kind).or_insert(0) += n;
                }
                existing.latency_ms += record.latency_ms;
            }
            None => records.push(record),
        }
    }
}

/// One guard's check, within its timeout.
async fn run(
    guard: &dyn Guardrail,
    stage: GuardStage,
    text: &str,
    scope: &mut GuardScope,
) -> Result<GuardVerdict, GuardError> {
    let check = guard.check(stage, text, scope);
    match guard.timeout() {
        None => check.await,
        Some(limit) => tokio::time::timeout(limit, check)
            .await
            .unwrap_or_else(|_| {
                Err(GuardError(format!(
                    "no verdict within {} ms",
                    limit.as_millis()
                )))
            }),
    }
}

fn counts(findings: Vec<String>) -> BTreeMap<String, u32> {
    let mut counts = BTreeMap::new();
    for kind in findings {
        *counts.entry(kind).or_insert(0) += 1;
    }
    counts
}

/// `cairn_guard_checks_total` and `cairn_guard_check_duration_seconds`, by guard and stage.
fn observe(record: &VerdictRecord) {
    let guard = record.guard.clone();
    let stage = record.stage.as_str();
    metrics::histogram!("cairn_guard_check_duration_seconds", "guard" => guard.clone(), "stage" => stage)
        .record(record.latency_ms / 1e3);
    metrics::counter!("cairn_guard_checks_total", "guard" => guard, "stage" => stage, "verdict" => record.action)
        .increment(1);
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
        async fn check(
            &self,
            _stage: GuardStage,
            text: &str,
            _scope: &mut GuardScope,
        ) -> Result<GuardVerdict, GuardError> {
            Ok(if text.contains("forbidden") {
                GuardVerdict::Block {
                    reason: "a forbidden word".into(),
                }
            } else if text.contains("secret") {
                GuardVerdict::Redact {
                    text: text.replace("secret", "[REDACTED]"),
                    findings: vec!["word".into()],
                }
            } else if text.contains("broken") {
                return Err(GuardError("the classifier is down".into()));
            } else {
                GuardVerdict::Allow
            })
        }
    }

    async fn check(stage: GuardStage, text: &str) -> (Checked, Vec<VerdictRecord>) {
        let guards = Guards::new(vec![Arc::new(Words)]);
        let mut verdicts = Vec::new();
        let checked = guards
            .check(
                stage,
                text.to_owned(),
                &mut GuardScope::default(),
                &mut verdicts,
            )
            .await;
        (checked, verdicts)
    }

    #[tokio::test]
    async fn stages_pass_redact_or_block_and_record_each_verdict() {
        let (checked, verdicts) = check(GuardStage::Input, "hello").await;
        assert_eq!(checked, Checked::Pass("hello".into()));
        assert_eq!(verdicts[0].action, "allow");

        let (checked, verdicts) = check(GuardStage::Input, "my secret").await;
        assert_eq!(checked, Checked::Pass("my [REDACTED]".into()));
        assert_eq!(verdicts[0].action, "redact");
        assert_eq!(verdicts[0].findings.get("word"), Some(&1));

        let (checked, verdicts) = check(GuardStage::Output, "forbidden").await;
        assert!(matches!(checked, Checked::Blocked { ref guard, .. } if guard == "words"));
        assert_eq!(verdicts[0].reason.as_deref(), Some("a forbidden word"));

        // A guard that does not declare a stage does not run there.
        let (checked, verdicts) = check(GuardStage::RetrievedContext, "forbidden").await;
        assert_eq!(checked, Checked::Pass("forbidden".into()));
        assert!(verdicts.is_empty());

        // A failing guard fails closed unless it says otherwise.
        let (checked, verdicts) = check(GuardStage::Input, "broken").await;
        assert!(
            matches!(checked, Checked::Blocked { ref reason, .. } if reason.contains("the classifier is down"))
        );
        assert_eq!(verdicts[0].action, "block");
    }

    #[tokio::test]
    async fn no_guards_let_everything_through_and_record_nothing() {
        let mut verdicts = Vec::new();
        let result = Guards::default()
            .require(
                GuardStage::Input,
                "forbidden".into(),
                &mut GuardScope::default(),
                &mut verdicts,
            )
            .await;
        assert_eq!(result.ok().as_deref(), Some("forbidden"));
        assert!(verdicts.is_empty());
    }
}
