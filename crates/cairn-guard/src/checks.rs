//! The built-in guards: each implements the `Guardrail` port of `cairn-core` over one detector.

use std::ops::Range;
use std::time::Duration;

use async_trait::async_trait;
use cairn_core::Guardrail;
use cairn_core::guard::{FailureMode, GuardError, GuardScope, GuardStage, GuardVerdict, Settled};
use regex::{Regex, RegexBuilder};

use crate::hold::{hold_values, hold_words};
use crate::injection;
use crate::pii::{Entity, PiiDetector};
use crate::policy::{GuardAction, Settings};

/// One finding: its kind and where it is in the text the guard was given.
struct Hit {
    kind: &'static str,
    placeholder: &'static str,
    range: Range<usize>,
}

impl Settings {
    /// The verdict of `action` over `hits` in `text`; `restorable` placeholders are given back to
    /// the caller in the answer.
    fn verdict(
        &self,
        text: &str,
        hits: Vec<Hit>,
        scope: &mut GuardScope,
        restorable: bool,
    ) -> GuardVerdict {
        if hits.is_empty() {
            return GuardVerdict::Allow;
        }
        let findings: Vec<String> = hits.iter().map(|h| h.kind.to_owned()).collect();
        match self.action {
            GuardAction::Flag => GuardVerdict::Flag { findings },
            GuardAction::Block => {
                let mut kinds = findings.clone();
                kinds.dedup();
                GuardVerdict::Block {
                    reason: format!("the text contains {}", kinds.join(", ").replace('_', " ")),
                }
            }
            GuardAction::Redact => {
                let mut redacted = String::with_capacity(text.len());
                let mut at = 0;
                for hit in &hits {
                    redacted.push_str(&text[at..hit.range.start]);
                    redacted.push_str(&scope.placeholder(
                        hit.placeholder,
                        &text[hit.range.clone()],
                        restorable,
                    ));
                    at = hit.range.end;
                }
                redacted.push_str(&text[at..]);
                GuardVerdict::Redact {
                    text: redacted,
                    findings,
                }
            }
        }
    }
}

/// What a word-based guard has settled of `unsent`: everything before `hold`, with the values it
/// finds now, which a cut must not split.
fn settled_words(
    unsent: &str,
    preceding: &str,
    hold: usize,
    find: impl Fn(&str) -> Vec<Hit>,
) -> Settled {
    Settled {
        hold,
        spans: after(preceding, unsent, find)
            .into_iter()
            .map(|h| h.range)
            .collect(),
    }
}

/// Finds `hits` in a streamed answer's part with the end of what was sent before it as context,
/// and returns those that reach into the part, relative to it.
fn in_context(
    stage: GuardStage,
    text: &str,
    scope: &GuardScope,
    find: impl Fn(&str) -> Vec<Hit>,
) -> Vec<Hit> {
    let preceding = if stage == GuardStage::Output {
        scope.preceding()
    } else {
        ""
    };
    after(preceding, text, find)
}

/// The hits in `preceding` + `text` that reach into `text`, relative to it.
fn after(preceding: &str, text: &str, find: impl Fn(&str) -> Vec<Hit>) -> Vec<Hit> {
    if preceding.is_empty() {
        return find(text);
    }
    let joined = format!("{preceding}{text}");
    let offset = preceding.len();
    find(&joined)
        .into_iter()
        .filter(|h| h.range.end > offset)
        .map(|h| Hit {
            range: h.range.start.max(offset) - offset..h.range.end - offset,
            ..h
        })
        .collect()
}

macro_rules! settings_accessors {
    () => {
        fn name(&self) -> &str {
            &self.settings.name
        }
        fn stages(&self) -> &[GuardStage] {
            &self.settings.stages
        }
        fn failure_mode(&self) -> FailureMode {
            self.settings.on_error
        }
        fn timeout(&self) -> Option<Duration> {
            self.settings.timeout
        }
    };
}

/// Personal data and secrets.
#[derive(Debug)]
pub struct PiiGuard {
    settings: Settings,
    detector: PiiDetector,
    restore: bool,
}

impl PiiGuard {
    pub fn new(
        settings: Settings,
        entities: Vec<Entity>,
        region: phonenumber::country::Id,
        restore: bool,
    ) -> PiiGuard {
        PiiGuard {
            settings,
            detector: PiiDetector::new(entities, region),
            restore,
        }
    }

    fn hits(&self, text: &str) -> Vec<Hit> {
        self.detector
            .find(text)
            .into_iter()
            .map(|f| Hit {
                kind: f.entity.as_str(),
                placeholder: f.entity.placeholder(),
                range: f.range,
            })
            .collect()
    }
}

#[async_trait]
impl Guardrail for PiiGuard {
    settings_accessors!();

    /// Holds only what may still be part of a value (see [`hold_values`]): the unfinished last
    /// word, number groups, a date's words, an unterminated private key.
    fn settled(&self, unsent: &str, preceding: &str) -> Settled {
        settled_words(unsent, preceding, hold_values(unsent), |t| self.hits(t))
    }

    async fn check(
        &self,
        stage: GuardStage,
        text: &str,
        scope: &mut GuardScope,
    ) -> Result<GuardVerdict, GuardError> {
        let hits = in_context(stage, text, scope, |t| self.hits(t));
        let restorable = self.restore && stage == GuardStage::Input;
        Ok(self.settings.verdict(text, hits, scope, restorable))
    }
}

/// Prompt injection and jailbreak attempts, by rules (see [`injection`]).
#[derive(Debug)]
pub struct InjectionGuard {
    settings: Settings,
    threshold: f32,
}

impl InjectionGuard {
    pub fn new(settings: Settings, threshold: f32) -> InjectionGuard {
        InjectionGuard {
            settings,
            threshold,
        }
    }
}

#[async_trait]
impl Guardrail for InjectionGuard {
    settings_accessors!();

    async fn check(
        &self,
        stage: GuardStage,
        text: &str,
        _scope: &mut GuardScope,
    ) -> Result<GuardVerdict, GuardError> {
        let score = injection::score(text);
        if score.total < self.threshold {
            return Ok(GuardVerdict::Allow);
        }
        let findings = score
            .rules
            .iter()
            .map(|r| format!("injection:{r}"))
            .collect();
        Ok(match self.settings.action {
            GuardAction::Flag | GuardAction::Redact => GuardVerdict::Flag { findings },
            GuardAction::Block => GuardVerdict::Block {
                reason: format!(
                    "the {} reads as a prompt injection ({})",
                    match stage {
                        GuardStage::RetrievedContext => "passage",
                        _ => "text",
                    },
                    score.rules.join(", ")
                ),
            },
        })
    }
}

/// Banned words, phrases and patterns.
#[derive(Debug)]
pub struct BannedGuard {
    settings: Settings,
    patterns: Vec<Regex>,
    /// How many words the longest phrase has, for streamed answers.
    longest: usize,
}

impl BannedGuard {
    pub fn new(
        settings: Settings,
        words: &[String],
        patterns: &[String],
    ) -> Result<BannedGuard, String> {
        let mut compiled = Vec::new();
        if !words.is_empty() {
            let alternation = words
                .iter()
                .map(|w| regex::escape(w.trim()).replace(' ', r"\s+"))
                .collect::<Vec<_>>()
                .join("|");
            compiled.push(
                RegexBuilder::new(&format!(r"\b(?:{alternation})\b"))
                    .case_insensitive(true)
                    .build()
                    .map_err(|e| format!("`words` do not compile: {e}"))?,
            );
        }
        for pattern in patterns {
            compiled.push(Regex::new(pattern).map_err(|e| {
                format!("pattern `{pattern}` is not a valid regular expression: {e}")
            })?);
        }
        let longest = words
            .iter()
            .map(|w| w.split_whitespace().count())
            .chain(patterns.iter().map(|_| 4))
            .max()
            .unwrap_or(1);
        Ok(BannedGuard {
            settings,
            patterns: compiled,
            longest,
        })
    }

    fn hits(&self, text: &str) -> Vec<Hit> {
        let mut hits: Vec<Hit> = self
            .patterns
            .iter()
            .flat_map(|p| p.find_iter(text))
            .map(|m| Hit {
                kind: "banned",
                placeholder: "BANNED",
                range: m.range(),
            })
            .collect();
        hits.sort_by_key(|h| (h.range.start, std::cmp::Reverse(h.range.end)));
        let mut kept: Vec<Hit> = Vec::with_capacity(hits.len());
        for hit in hits {
            if kept.last().is_none_or(|k| hit.range.start >= k.range.end) {
                kept.push(hit);
            }
        }
        kept
    }
}

#[async_trait]
impl Guardrail for BannedGuard {
    settings_accessors!();

    fn settled(&self, unsent: &str, preceding: &str) -> Settled {
        settled_words(unsent, preceding, hold_words(unsent, self.longest), |t| {
            self.hits(t)
        })
    }

    async fn check(
        &self,
        stage: GuardStage,
        text: &str,
        scope: &mut GuardScope,
    ) -> Result<GuardVerdict, GuardError> {
        let hits = in_context(stage, text, scope, |t| self.hits(t));
        Ok(self.settings.verdict(text, hits, scope, false))
    }
}

/// A cap on the characters of a question or passage.
#[derive(Debug)]
pub struct LengthGuard {
    settings: Settings,
    max_chars: usize,
}

impl LengthGuard {
    pub fn new(settings: Settings, max_chars: usize) -> LengthGuard {
        LengthGuard {
            settings,
            max_chars,
        }
    }
}

#[async_trait]
impl Guardrail for LengthGuard {
    settings_accessors!();

    async fn check(
        &self,
        _stage: GuardStage,
        text: &str,
        _scope: &mut GuardScope,
    ) -> Result<GuardVerdict, GuardError> {
        let chars = text.chars().count();
        if chars <= self.max_chars {
            return Ok(GuardVerdict::Allow);
        }
        Ok(match self.settings.action {
            GuardAction::Flag | GuardAction::Redact => GuardVerdict::Flag {
                findings: vec!["too_long".into()],
            },
            GuardAction::Block => GuardVerdict::Block {
                reason: format!(
                    "the text has {chars} characters, more than the {} allowed",
                    self.max_chars
                ),
            },
        })
    }
}
