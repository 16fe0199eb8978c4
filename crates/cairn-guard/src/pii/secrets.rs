//! Secrets: credentials with a known shape (cloud keys, tokens, private keys) and high-entropy
//! values assigned to key-like names.

use std::ops::Range;
use std::sync::LazyLock;

use regex::Regex;

/// Credentials recognisable by their shape alone.
static SHAPED: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    [
        // AWS access key ids.
        r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[0-9A-Z]{16}\b",
        // GitHub tokens, classic and fine-grained.
        r"\bgh[pousr]_[A-Za-z0-9]{36,255}\b",
        r"\bgithub_pat_[A-Za-z0-9_]{22,255}\b",
        // Slack tokens.
        r"\bxox[abposr]-[A-Za-z0-9-]{10,100}",
        // OpenAI and Anthropic style keys.
        r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,200}",
        // Google API keys.
        r"\bAIza[0-9A-Za-z_-]{35}",
        // Stripe keys.
        r"\b[rsp]k_(?:live|test)_[0-9A-Za-z]{16,99}\b",
        // JSON Web Tokens.
        r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
        // PEM private keys, to their end or to the end of the text.
        r"-----BEGIN [A-Z ]{0,20}PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]{0,20}PRIVATE KEY-----|\z)",
    ]
    .iter()
    .map(|p| Regex::new(p).expect("built-in pattern compiles"))
    .collect()
});

/// A value assigned to a key-like name: `api_key = "…"`, `password: …`, `token=…`.
static ASSIGNED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)\b(?:[a-z0-9_]*(?:api[_-]?key|secret|token|passwd|password|pwd|access[_-]?key|private[_-]?key|credentials?))\b["']?\s*(?:[:=]|is)\s*["']?([A-Za-z0-9/+_.~!@#$%^&*-]{8,200})"#,
    )
    .expect("built-in pattern compiles")
});

/// Calls `found` with the range of every secret in `text`.
pub fn find(text: &str, found: &mut impl FnMut(Range<usize>)) {
    for pattern in SHAPED.iter() {
        pattern.find_iter(text).for_each(|m| found(m.range()));
    }
    for c in ASSIGNED.captures_iter(text) {
        let value = c.get(1).expect("value group");
        if looks_random(value.as_str()) {
            found(value.range());
        }
    }
}

/// Whether `value` looks like a generated secret rather than a word: at least three kinds of
/// character, or a high Shannon entropy per character.
fn looks_random(value: &str) -> bool {
    let kinds = [
        value.chars().any(|c| c.is_ascii_lowercase()),
        value.chars().any(|c| c.is_ascii_uppercase()),
        value.chars().any(|c| c.is_ascii_digit()),
        value.chars().any(|c| !c.is_ascii_alphanumeric()),
    ]
    .iter()
    .filter(|k| **k)
    .count();
    kinds >= 3 || entropy(value) >= 3.5
}

/// Shannon entropy of `value`'s characters, in bits per character.
fn entropy(value: &str) -> f64 {
    let mut counts = std::collections::HashMap::new();
    for c in value.chars() {
        *counts.entry(c).or_insert(0u32) += 1;
    }
    let n = value.chars().count() as f64;
    counts
        .values()
        .map(|&k| {
            let p = f64::from(k) / n;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(text: &str) -> Vec<&str> {
        let mut out = Vec::new();
        find(text, &mut |r| out.push(&text[r]));
        out
    }

    #[test]
    fn shaped_and_assigned_secrets_are_found_and_words_are_not() {
        assert_eq!(
            secrets("key AKIAIOSFODNN7EXAMPLE here"),
            ["AKIAIOSFODNN7EXAMPLE"]
        );
        assert_eq!(
            secrets("use ghp_0123456789abcdefghijABCDEFGHIJ012345 now"),
            ["ghp_0123456789abcdefghijABCDEFGHIJ012345"]
        );
        assert_eq!(secrets("password: Tr0ub4dor&3x"), ["Tr0ub4dor&3x"]);
        assert_eq!(
            secrets("api_key = \"q8Zr2LmX9vKw4TnB\""),
            ["q8Zr2LmX9vKw4TnB"]
        );
        let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEabc\n-----END RSA PRIVATE KEY-----";
        assert_eq!(secrets(&format!("x {pem} y")), [pem]);
        assert!(secrets("the password is required for every account").is_empty());
        assert!(secrets("see the token bucket algorithm").is_empty());
    }
}
