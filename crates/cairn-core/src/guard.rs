//! The guardrail port: checks on user input, retrieved context and model output.
//!
//! A [`Guardrail`] reads one text at a time and says what to do with it. What it learns during one
//! request (the placeholders it gave personal data, the answer text already streamed) lives in the
//! request's [`GuardScope`], so that a placeholder means the same value in every message of a
//! request and a streamed check can read what came before the part it is shown.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// Where in the chat flow a guardrail runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GuardStage {
    Input,
    RetrievedContext,
    Output,
}

impl GuardStage {
    pub fn as_str(self) -> &'static str {
        match self {
            GuardStage::Input => "input",
            GuardStage::RetrievedContext => "retrieved_context",
            GuardStage::Output => "output",
        }
    }
}

impl fmt::Display for GuardStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a guardrail decided about a text. `findings` name kinds (`email`, `injection`), never the
/// values found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum GuardVerdict {
    Allow,
    /// Let the text through unchanged and record what was found.
    Flag {
        findings: Vec<String>,
    },
    /// Let the text through with these replacements applied (PII redaction, for example).
    Redact {
        text: String,
        findings: Vec<String>,
    },
    /// Stop the request (or drop the retrieved passage); `reason` is shown to the user.
    Block {
        reason: String,
    },
}

/// A guardrail that could not decide; the pipeline then applies the guard's failure mode.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct GuardError(pub String);

/// What happens to a text when its guard fails or times out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureMode {
    /// Let the text through; the failure is recorded.
    Open,
    /// Treat the text as blocked.
    #[default]
    Closed,
}

/// One placeholder handed out during a request.
#[derive(Debug, Clone, PartialEq)]
struct Placeholder {
    placeholder: String,
    original: String,
    /// Given to a value the caller sent, so the caller may see it again in the answer.
    restorable: bool,
}

/// The guards' state for one request.
#[derive(Debug, Clone, Default)]
pub struct GuardScope {
    placeholders: Vec<Placeholder>,
    /// The end of the streamed answer already sent (at most [`GuardScope::PRECEDING_BYTES`]).
    preceding: String,
}

impl GuardScope {
    /// How much of the already-sent answer a streamed check can read before its part.
    pub const PRECEDING_BYTES: usize = 256;

    /// The placeholder for `original` of `kind` (`EMAIL`): `<EMAIL_1>`, the same one every time
    /// the same value is seen in this request. A `restorable` value (one the caller sent, redacted
    /// by a guard that restores) is put back in the answer the caller sees.
    pub fn placeholder(&mut self, kind: &str, original: &str, restorable: bool) -> String {
        if let Some(existing) = self
            .placeholders
            .iter_mut()
            .find(|p| p.original == original)
        {
            existing.restorable |= restorable;
            return existing.placeholder.clone();
        }
        let prefix = format!("<{kind}_");
        let number = 1 + self
            .placeholders
            .iter()
            .filter(|p| p.placeholder.starts_with(&prefix))
            .count();
        let placeholder = format!("<{kind}_{number}>");
        self.placeholders.push(Placeholder {
            placeholder: placeholder.clone(),
            original: original.to_owned(),
            restorable,
        });
        placeholder
    }

    /// Whether any placeholder may be restored.
    pub fn restores(&self) -> bool {
        self.placeholders.iter().any(|p| p.restorable)
    }

    /// `text` with every restorable placeholder replaced by the caller's original value.
    pub fn restore(&self, text: &str) -> String {
        let mut restored = text.to_owned();
        for p in self.placeholders.iter().filter(|p| p.restorable) {
            if restored.contains(&p.placeholder) {
                restored = restored.replace(&p.placeholder, &p.original);
            }
        }
        restored
    }

    /// `text` with every value a guard redacted in this request replaced by its placeholder again:
    /// for what a front door stores of a question or an answer it showed restored.
    pub fn conceal(&self, text: &str) -> String {
        let mut by_length: Vec<&Placeholder> = self.placeholders.iter().collect();
        by_length.sort_by_key(|p| std::cmp::Reverse(p.original.len()));
        let mut concealed = text.to_owned();
        for p in by_length {
            if !p.original.is_empty() && concealed.contains(&p.original) {
                concealed = concealed.replace(&p.original, &p.placeholder);
            }
        }
        concealed
    }

    /// The end of the answer already sent, for checks that read what precedes their part.
    pub fn preceding(&self) -> &str {
        &self.preceding
    }

    /// Records `sent` as sent, keeping the last [`GuardScope::PRECEDING_BYTES`].
    pub fn sent(&mut self, sent: &str) {
        self.preceding.push_str(sent);
        if self.preceding.len() > Self::PRECEDING_BYTES {
            let mut cut = self.preceding.len() - Self::PRECEDING_BYTES;
            while !self.preceding.is_char_boundary(cut) {
                cut += 1;
            }
            self.preceding.drain(..cut);
        }
    }
}

/// The offset of a trailing `<` that may begin a placeholder not yet complete (`<EMAIL_`), or the
/// length of `text`.
pub fn hold_placeholder(text: &str) -> usize {
    match text.rfind('<') {
        Some(open)
            if text.len() - open <= 24
                && text[open + 1..]
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_') =>
        {
            open
        }
        _ => text.len(),
    }
}

/// What a guard has settled of a streamed answer's unsent tail.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settled {
    /// Nothing this guard acts on can begin before this byte offset any more, whatever follows.
    pub hold: usize,
    /// The spans it would act on now, which a cut must not split.
    pub spans: Vec<std::ops::Range<usize>>,
}

/// Where a stream may cut its unsent tail for every guard at once: at or before each guard's
/// `hold`, and never inside a span any guard would act on.
pub fn settled_cut(settled: &[Settled], len: usize) -> usize {
    let mut cut = settled.iter().map(|s| s.hold).min().unwrap_or(len).min(len);
    loop {
        let inside = settled
            .iter()
            .flat_map(|s| &s.spans)
            .filter(|span| span.start < cut && span.end > cut)
            .map(|span| span.start)
            .min();
        match inside {
            Some(start) => cut = start,
            None => return cut,
        }
    }
}

/// A check applied to text at one or more stages.
#[async_trait]
pub trait Guardrail: Send + Sync + fmt::Debug {
    fn name(&self) -> &str;
    fn stages(&self) -> &[GuardStage];

    /// For a streamed answer: how much of `unsent` (the answer's tail not yet sent, after
    /// `preceding`, the end of what was sent) this guard has settled. See [`Settled`]; the
    /// default holds the answer back until it ends, for checks that need the whole of it.
    fn settled(&self, _unsent: &str, _preceding: &str) -> Settled {
        Settled::default()
    }

    /// What to do when the check fails or times out.
    fn failure_mode(&self) -> FailureMode {
        FailureMode::Closed
    }

    /// How long one check may take before it counts as failed; `None`: no limit.
    fn timeout(&self) -> Option<Duration> {
        None
    }

    async fn check(
        &self,
        stage: GuardStage,
        text: &str,
        scope: &mut GuardScope,
    ) -> Result<GuardVerdict, GuardError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_consistent_and_restore_only_what_the_caller_sent() {
        let mut scope = GuardScope::default();
        let a = scope.placeholder("EMAIL", "a@example.com", true);
        let b = scope.placeholder("EMAIL", "b@example.com", false);
        assert_eq!((a.as_str(), b.as_str()), ("<EMAIL_1>", "<EMAIL_2>"));
        assert_eq!(
            scope.placeholder("EMAIL", "a@example.com", false),
            "<EMAIL_1>"
        );
        assert_eq!(
            scope.placeholder("PHONE", "+1 202 555 0143", true),
            "<PHONE_1>"
        );
        assert_eq!(
            scope.restore("mail <EMAIL_1>, not <EMAIL_2>, call <PHONE_1>"),
            "mail a@example.com, not <EMAIL_2>, call +1 202 555 0143"
        );
        assert_eq!(
            scope.conceal("mail a@example.com, b@example.com, call +1 202 555 0143"),
            "mail <EMAIL_1>, <EMAIL_2>, call <PHONE_1>"
        );
    }

    #[test]
    fn preceding_keeps_the_end_of_what_was_sent() {
        let mut scope = GuardScope::default();
        scope.sent(&"é".repeat(200));
        scope.sent("tail");
        assert!(scope.preceding().len() <= GuardScope::PRECEDING_BYTES);
        assert!(scope.preceding().ends_with("étail"));
    }

    #[test]
    fn a_cut_splits_no_guards_span() {
        let words = Settled {
            hold: 16,
            spans: vec![],
        };
        let phrase = Settled {
            hold: 23,
            spans: std::iter::once(8..22).collect(),
        };
        assert_eq!(settled_cut(&[words.clone(), phrase.clone()], 30), 8);
        assert_eq!(settled_cut(&[phrase], 30), 23);
        assert_eq!(settled_cut(&[], 30), 30);
        assert_eq!(settled_cut(&[words, Settled::default()], 30), 0);
    }

    #[test]
    fn a_placeholder_being_written_is_held() {
        assert_eq!(hold_placeholder("mail <EMAI"), 5);
        assert_eq!(hold_placeholder("mail <EMAIL_1>"), 14);
        assert_eq!(hold_placeholder("a < b"), 5);
    }
}
