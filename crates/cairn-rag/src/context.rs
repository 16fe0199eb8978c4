//! Cited context: the top passages assembled into a token budget, each numbered, so that a model
//! can cite `[n]` and the caller can map every marker back to its source.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::retrieve::Passage;

/// Where a numbered passage came from. Its JSON schema describes it to MCP clients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Citation {
    /// The marker number, from 1: the passage is cited as `[index]`.
    pub index: usize,
    pub chunk_id: Uuid,
    pub document_id: Uuid,
    pub title: String,
    pub source: String,
    pub url: Option<String>,
    pub heading_path: Vec<String>,
    pub char_start: u64,
    pub char_end: u64,
    pub score: f32,
    /// The passage text, for showing the cited span.
    pub text: String,
}

impl Citation {
    /// The citation of `passage` as the `index`th source.
    pub fn of(index: usize, passage: &Passage) -> Self {
        Citation {
            index,
            chunk_id: passage.chunk_id,
            document_id: passage.document_id,
            title: passage.title.clone(),
            source: passage.source.clone(),
            url: passage.url.clone(),
            heading_path: passage.heading_path.clone(),
            char_start: passage.char_start,
            char_end: passage.char_end,
            score: passage.score,
            text: passage.content.clone(),
        }
    }
}

/// Passages ready for a prompt, and their citations.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CitedContext {
    /// `[1] Title › Heading\npassage\n\n[2] …`
    pub text: String,
    pub citations: Vec<Citation>,
    /// Tokens of `text`, as counted by the given counter.
    pub tokens: usize,
}

/// Assembles passages, best first, into at most `budget` tokens. A passage that does not fit is
/// skipped (a shorter one after it may still fit); passages that overlap one already taken from the
/// same document are skipped as redundant.
pub fn assemble(
    passages: &[Passage],
    budget: usize,
    count_tokens: impl Fn(&str) -> usize,
) -> CitedContext {
    let mut context = CitedContext::default();
    let mut taken: Vec<&Passage> = Vec::new();
    for passage in passages {
        let overlaps = taken.iter().any(|t| {
            t.document_id == passage.document_id
                && t.char_start < passage.char_end
                && passage.char_start < t.char_end
        });
        if overlaps {
            continue;
        }
        let index = context.citations.len() + 1;
        let block = block(index, passage);
        let cost = count_tokens(&block);
        if context.tokens + cost > budget {
            continue;
        }
        context.tokens += cost;
        context.text.push_str(&block);
        taken.push(passage);
        context.citations.push(Citation::of(index, passage));
    }
    context
}

fn block(index: usize, passage: &Passage) -> String {
    let mut header = passage.title.clone();
    for heading in &passage.heading_path {
        if heading != &passage.title {
            header.push_str(" › ");
            header.push_str(heading);
        }
    }
    format!("[{index}] {header}\n{}\n\n", passage.content.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passage(document: u128, start: u64, end: u64, content: &str) -> Passage {
        Passage {
            chunk_id: Uuid::now_v7(),
            document_id: Uuid::from_u128(document),
            title: "Guide".into(),
            source: "/docs/guide.md".into(),
            url: None,
            heading_path: vec!["Guide".into(), "Install".into()],
            char_start: start,
            char_end: end,
            content: content.into(),
            score: 0.5,
            dense_rank: Some(1),
            lexical_rank: None,
        }
    }

    fn words(text: &str) -> usize {
        text.split_whitespace().count()
    }

    #[test]
    fn passages_are_numbered_in_order_within_the_budget() {
        let passages = vec![
            passage(1, 0, 10, "run the installer"),
            passage(2, 0, 10, &"long ".repeat(100)),
            passage(3, 0, 10, "set the port"),
        ];
        let context = assemble(&passages, 20, words);
        assert_eq!(context.citations.len(), 2, "the long passage does not fit");
        assert_eq!(context.citations[1].index, 2);
        assert_eq!(context.citations[1].text, "set the port");
        assert!(
            context
                .text
                .starts_with("[1] Guide › Install\nrun the installer\n\n[2] ")
        );
        assert!(context.tokens <= 20);
    }

    #[test]
    fn overlapping_passages_of_one_document_are_taken_once() {
        let passages = vec![
            passage(1, 0, 100, "first"),
            passage(1, 80, 180, "overlap"),
            passage(1, 180, 200, "next"),
        ];
        let context = assemble(&passages, 1000, words);
        let texts: Vec<&str> = context.citations.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(texts, ["first", "next"]);
    }
}
