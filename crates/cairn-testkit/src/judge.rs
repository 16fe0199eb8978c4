//! The `judge` model: a deterministic stand-in for an LLM judge that reads Cairn's built-in judge
//! prompts and answers in their JSON shapes, so eval verdicts can be asserted exactly.
//!
//! - Claims prompts (faithfulness, context recall): the judged text (after `Answer:` or
//!   `Reference answer:`) is split into sentences; a sentence is supported when some passage
//!   contains it, ignoring case, citation markers and the final full stop.
//! - Pairwise prompts: the answer that contains the reference answer is better, whichever order
//!   they are shown in; a tie when both or neither do.
//! - Verdict prompts (answer relevance, correctness): `no` when the answer says it does not know or
//!   is empty; for correctness, `yes` when the answer contains the reference, else `partly`.

use serde_json::{Value, json};

/// The judge's answer to a rendered judge prompt (the last user message).
pub fn answer(prompt: &str) -> String {
    if prompt.contains("\nAnswer 1:\n") && prompt.contains("\nAnswer 2:\n") {
        return pairwise(prompt);
    }
    if prompt.contains("Passages:") && prompt.contains("\nReference answer:\n") {
        let passages = between(prompt, "Passages:\n", "\nReference answer:\n").unwrap_or_default();
        return claims(after(prompt, "Reference answer:\n"), passages);
    }
    if prompt.contains("Passages:") {
        let passages = between(prompt, "Passages:\n", "\nAnswer:\n").unwrap_or_default();
        return claims(after(prompt, "Answer:\n"), passages);
    }
    let answer = after(prompt, "Answer:\n").trim().to_lowercase();
    let evasive =
        answer.is_empty() || answer.contains("do not know") || answer.contains("don't know");
    let verdict = match between(prompt, "Reference answer:\n", "\n\n") {
        _ if evasive => "no",
        Some(reference)
            if answer.contains(reference.trim().to_lowercase().trim_end_matches('.')) =>
        {
            "yes"
        }
        Some(_) => "partly",
        None => "yes",
    };
    json!({"verdict": verdict, "reason": format!("scripted judge: {verdict}")}).to_string()
}

fn pairwise(prompt: &str) -> String {
    let reference = between(prompt, "Reference answer:\n", "\n")
        .map(|r| normalise(r.trim().trim_end_matches('.')))
        .unwrap_or_default();
    let one = normalise(between(prompt, "\nAnswer 1:\n", "\n\nAnswer 2:\n").unwrap_or_default());
    let two = normalise(after(prompt, "\nAnswer 2:\n"));
    let has = |answer: &str| !reference.is_empty() && answer.contains(&reference);
    let better = match (has(&one), has(&two)) {
        (true, false) => "1",
        (false, true) => "2",
        _ => "tie",
    };
    json!({"better": better, "reason": format!("scripted judge: {better}")}).to_string()
}

fn claims(text: &str, passages: &str) -> String {
    let passages = normalise(passages);
    let claims: Vec<Value> = text
        .split(". ")
        .map(|s| s.trim().trim_end_matches('.').trim())
        .filter(|s| !s.is_empty())
        .map(|claim| {
            let supported = passages.contains(&normalise(claim));
            json!({"claim": claim, "supported": supported,
                   "reason": if supported { "found in the passages" } else { "not in the passages" }})
        })
        .collect();
    json!({"claims": claims}).to_string()
}

/// Lower case, citation markers like `[1]` removed, whitespace collapsed.
fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_marker = false;
    for c in text.chars() {
        match c {
            '[' => in_marker = true,
            ']' if in_marker => in_marker = false,
            _ if in_marker && c.is_ascii_digit() => {}
            _ => {
                in_marker = false;
                out.extend(c.to_lowercase());
            }
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn after<'a>(text: &'a str, marker: &str) -> &'a str {
    text.rfind(marker).map_or("", |i| &text[i + marker.len()..])
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let rest = &text[from..];
    Some(rest.find(end).map_or(rest, |i| &rest[..i]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scripted_judge_follows_its_rules() {
        let faithfulness = "Question: q\n\nPassages:\n[1] TRUNCATE is fast. It skips triggers.\n\nAnswer:\nTRUNCATE is fast [1]. It fires triggers.";
        let reply: Value = serde_json::from_str(&answer(faithfulness)).expect("json");
        let supported: Vec<bool> = reply["claims"]
            .as_array()
            .expect("claims")
            .iter()
            .map(|c| c["supported"].as_bool().unwrap_or_default())
            .collect();
        assert_eq!(supported, [true, false]);
        let recall = "Question: q\n\nPassages:\n[1] Sixteen weeks of leave.\n\nReference answer:\nSixteen weeks of leave. Paid in full.";
        let reply: Value = serde_json::from_str(&answer(recall)).expect("json");
        assert_eq!(reply["claims"][0]["supported"], true, "{reply}");
        assert_eq!(reply["claims"][1]["supported"], false, "{reply}");
        let relevance = "Question: q\n\nAnswer:\nI do not know.";
        assert!(answer(relevance).contains("\"no\""));
        let correct =
            "Question: q\n\nReference answer:\nSixteen weeks\n\nAnswer:\nIt is sixteen weeks.";
        assert!(answer(correct).contains("\"yes\""));
        let partly = "Question: q\n\nReference answer:\nSixteen weeks\n\nAnswer:\nTwelve weeks.";
        assert!(answer(partly).contains("\"partly\""));
        let pair = |one: &str, two: &str| {
            let prompt = format!(
                "Criteria: c\n\nQuestion: q\n\nReference answer:\nSixteen weeks.\n\nAnswer 1:\n{one}\n\nAnswer 2:\n{two}"
            );
            let reply: Value = serde_json::from_str(&answer(&prompt)).expect("json");
            reply["better"].as_str().unwrap_or_default().to_owned()
        };
        assert_eq!(pair("Sixteen weeks [1].", "Twelve weeks."), "1");
        assert_eq!(pair("Twelve weeks.", "It is sixteen weeks."), "2");
        assert_eq!(pair("Twelve weeks.", "Ten weeks."), "tie");
    }
}
