//! Cairn's guardrails: the built-in implementations of the `Guardrail` port of `cairn-core`,
//! declared in config as `[[guards]]` and run by the answer pipeline (`cairn-app`) on the question,
//! each retrieved passage and the answer, streamed or not.
//!
//! - `pii`: personal data and secrets, confirmed by checksums and libphonenumber, redacted to
//!   placeholders (`<EMAIL_1>`) that the caller's own values can be restored from;
//! - `injection`: prompt-injection and jailbreak rules, for questions and retrieved passages;
//! - `banned`: words, phrases and patterns;
//! - `length`: caps on questions and passages.
//!
//! Every guard says how much of a streamed answer it has settled ([`hold`]), so the pipeline never
//! sends a character of a span a guard will redact or block.

pub mod checks;
pub mod hold;
pub mod injection;
pub mod pii;
pub mod policy;
#[cfg(test)]
mod stream_tests;

pub use policy::{GuardAction, GuardKind, GuardOptions, GuardSection, PolicyError, build_all};
