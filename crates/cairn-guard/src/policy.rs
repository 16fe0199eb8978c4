//! Guards as the configuration declares them (`[[guards]]`), checked and built.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use cairn_core::Guardrail;
use cairn_core::guard::{FailureMode, GuardStage};
use serde::{Deserialize, Serialize};

use crate::checks::{BannedGuard, InjectionGuard, LengthGuard, PiiGuard};
use crate::pii::Entity;

/// One `[[guards]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardSection {
    /// What apps and routes name in their `guards = [...]`, and what verdicts and metrics show.
    pub name: String,
    pub kind: GuardKind,
    /// Where it runs: `input` (each user message), `retrieved_context` (each passage before it
    /// enters a prompt), `output` (the answer, streamed or not).
    pub stages: Vec<GuardStage>,
    pub action: GuardAction,
    /// What happens when the check fails or times out.
    #[serde(default)]
    pub on_error: FailureMode,
    /// How long one check may take; no limit when unset.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    #[serde(default)]
    pub options: GuardOptions,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GuardKind {
    /// Personal data and secrets.
    Pii,
    /// Prompt injection and jailbreak attempts.
    Injection,
    /// Banned words and patterns.
    Banned,
    /// A cap on a text's length.
    Length,
}

impl GuardKind {
    fn as_str(self) -> &'static str {
        match self {
            GuardKind::Pii => "pii",
            GuardKind::Injection => "injection",
            GuardKind::Banned => "banned",
            GuardKind::Length => "length",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GuardAction {
    /// Refuse: the model is not called, the passage is dropped, or the stream stops.
    Block,
    /// Replace what was found with a placeholder and go on.
    Redact,
    /// Go on unchanged; the verdict is recorded.
    Flag,
}

/// Every kind's options; each kind accepts only its own.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GuardOptions {
    /// `pii`: the kinds to find (default: all).
    pub entities: Option<Vec<Entity>>,
    /// `pii`: put the caller's own values back into the answer the caller sees.
    pub restore: Option<bool>,
    /// `pii`: the country phone numbers without a country code belong to (ISO 3166, default `US`).
    pub region: Option<String>,
    /// `injection`: the score at which a text counts as an attack (default 1.0).
    pub threshold: Option<f32>,
    /// `banned`: words and phrases, matched whole and ignoring case.
    pub words: Option<Vec<String>>,
    /// `banned`: regular expressions.
    pub patterns: Option<Vec<String>>,
    /// `length`: the most characters a text may have.
    pub max_chars: Option<usize>,
}

impl GuardOptions {
    /// The options set, by name.
    fn set(&self) -> Vec<&'static str> {
        [
            ("entities", self.entities.is_some()),
            ("restore", self.restore.is_some()),
            ("region", self.region.is_some()),
            ("threshold", self.threshold.is_some()),
            ("words", self.words.is_some()),
            ("patterns", self.patterns.is_some()),
            ("max_chars", self.max_chars.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect()
    }
}

/// A guard the configuration declares wrongly: which, what, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("guard `{guard}`: {problem}")]
pub struct PolicyError {
    pub guard: String,
    pub problem: String,
}

impl GuardSection {
    fn error(&self, problem: impl Into<String>) -> PolicyError {
        PolicyError {
            guard: self.name.clone(),
            problem: problem.into(),
        }
    }

    /// Checks the section and builds its guard.
    pub fn build(&self) -> Result<Arc<dyn Guardrail>, PolicyError> {
        let accepted: &[&str] = match self.kind {
            GuardKind::Pii => &["entities", "restore", "region"],
            GuardKind::Injection => &["threshold"],
            GuardKind::Banned => &["words", "patterns"],
            GuardKind::Length => &["max_chars"],
        };
        if let Some(wrong) = self
            .options
            .set()
            .into_iter()
            .find(|o| !accepted.contains(o))
        {
            return Err(self.error(format!(
                "option `{wrong}` does not apply to kind `{}`; its options: {}",
                self.kind.as_str(),
                accepted.join(", ")
            )));
        }
        if self.stages.is_empty() {
            return Err(
                self.error("no stages; set `stages` to some of input, retrieved_context, output")
            );
        }
        let settings = Settings {
            name: self.name.clone(),
            stages: self
                .stages
                .iter()
                .copied()
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
            action: self.action,
            on_error: self.on_error,
            timeout: self.timeout_ms.map(Duration::from_millis),
        };
        Ok(match self.kind {
            GuardKind::Pii => Arc::new(self.pii(settings)?),
            GuardKind::Injection => Arc::new(self.injection(settings)?),
            GuardKind::Banned => Arc::new(self.banned(settings)?),
            GuardKind::Length => Arc::new(self.length(settings)?),
        })
    }

    fn pii(&self, settings: Settings) -> Result<PiiGuard, PolicyError> {
        let region = self.options.region.as_deref().unwrap_or("US");
        let region: phonenumber::country::Id = region.parse().map_err(|_| {
            self.error(format!(
                "`region = \"{region}\"` is not a country code; use an ISO 3166 code such as US, GB or DE"
            ))
        })?;
        let restore = self.options.restore.unwrap_or(false);
        if restore && self.action != GuardAction::Redact {
            return Err(self.error("`restore = true` needs `action = \"redact\"`"));
        }
        let entities = self
            .options
            .entities
            .clone()
            .unwrap_or_else(|| Entity::ALL.to_vec());
        Ok(PiiGuard::new(settings, entities, region, restore))
    }

    fn injection(&self, settings: Settings) -> Result<InjectionGuard, PolicyError> {
        if settings.stages.contains(&GuardStage::Output) {
            return Err(self.error(
                "kind `injection` checks what reaches a model: use stages input and retrieved_context",
            ));
        }
        if self.action == GuardAction::Redact {
            return Err(self
                .error("kind `injection` cannot redact; use `action = \"block\"` or `\"flag\"`"));
        }
        let threshold = self.options.threshold.unwrap_or(1.0);
        if threshold.is_nan() || threshold <= 0.0 {
            return Err(self.error("`threshold` must be above 0"));
        }
        Ok(InjectionGuard::new(settings, threshold))
    }

    fn banned(&self, settings: Settings) -> Result<BannedGuard, PolicyError> {
        let words = self.options.words.clone().unwrap_or_default();
        let patterns = self.options.patterns.clone().unwrap_or_default();
        if words.is_empty() && patterns.is_empty() {
            return Err(self.error("kind `banned` needs `words` or `patterns` in its options"));
        }
        BannedGuard::new(settings, &words, &patterns).map_err(|e| self.error(e))
    }

    fn length(&self, settings: Settings) -> Result<LengthGuard, PolicyError> {
        let Some(max_chars) = self.options.max_chars.filter(|m| *m > 0) else {
            return Err(self.error("kind `length` needs `max_chars` (above 0) in its options"));
        };
        if settings.stages.contains(&GuardStage::Output) {
            return Err(self.error(
                "kind `length` caps input and retrieved context; cap answers with the model's `max_tokens`",
            ));
        }
        if self.action == GuardAction::Redact {
            return Err(
                self.error("kind `length` cannot redact; use `action = \"block\"` or `\"flag\"`")
            );
        }
        Ok(LengthGuard::new(settings, max_chars))
    }
}

/// What every guard is configured with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub name: String,
    pub stages: Vec<GuardStage>,
    pub action: GuardAction,
    pub on_error: FailureMode,
    pub timeout: Option<Duration>,
}

/// Builds every declared guard; names must be unique.
pub fn build_all(sections: &[GuardSection]) -> Result<Vec<Arc<dyn Guardrail>>, PolicyError> {
    let mut seen = BTreeSet::new();
    sections
        .iter()
        .map(|section| {
            if !seen.insert(section.name.as_str()) {
                return Err(section.error("declared twice; guard names must be unique"));
            }
            section.build()
        })
        .collect()
}
