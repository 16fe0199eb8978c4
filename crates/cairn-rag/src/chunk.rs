//! Splitting documents into chunks: token-aware (with the embedding model's own tokenizer), and
//! structure-aware for Markdown and HTML (splits prefer heading and paragraph boundaries, and each
//! chunk carries the path of headings above it). Every chunk keeps its character offsets in the
//! document's text, for citations.

use std::sync::Arc;

use cairn_core::catalog::NewChunk;
use cairn_loaders::{Format, Heading, LoadedDocument};
use serde_json::Value;
use sha2::{Digest, Sha256};
use text_splitter::{ChunkConfig, ChunkSizer, MarkdownSplitter, TextSplitter};
use tokenizers::Tokenizer;

/// How big chunks are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkingOptions {
    /// The most tokens in a chunk (characters when no tokenizer is given).
    pub max_tokens: usize,
    /// Tokens shared by neighbouring chunks.
    pub overlap: usize,
}

impl Default for ChunkingOptions {
    fn default() -> Self {
        ChunkingOptions {
            max_tokens: 200,
            overlap: 24,
        }
    }
}

/// What chunk sizes are measured in.
#[derive(Debug, Clone)]
pub enum Sizer {
    /// Tokens of the embedding model's tokenizer; `id` names the tokenizer in fingerprints.
    Tokens {
        id: String,
        tokenizer: Arc<Tokenizer>,
    },
    /// Characters divided by four, for remote models whose tokenizer is not at hand.
    ApproximateTokens,
}

struct Measure<'a>(&'a Sizer);

impl ChunkSizer for Measure<'_> {
    fn size(&self, chunk: &str) -> usize {
        count_tokens(self.0, chunk)
    }
}

fn count_tokens(sizer: &Sizer, text: &str) -> usize {
    match sizer {
        Sizer::Tokens { tokenizer, .. } => tokenizer
            .encode_fast(text, false)
            .map(|e| e.len())
            .unwrap_or_else(|_| text.chars().count().div_ceil(4)),
        Sizer::ApproximateTokens => text.chars().count().div_ceil(4),
    }
}

/// Splits documents into chunks.
#[derive(Debug, Clone)]
pub struct Chunker {
    sizer: Sizer,
    options: ChunkingOptions,
}

impl Chunker {
    /// `options.overlap` is clamped below `options.max_tokens`.
    pub fn new(sizer: Sizer, options: ChunkingOptions) -> Self {
        let max_tokens = options.max_tokens.max(8);
        let overlap = options.overlap.min(max_tokens / 2);
        Chunker {
            sizer,
            options: ChunkingOptions {
                max_tokens,
                overlap,
            },
        }
    }

    pub fn options(&self) -> ChunkingOptions {
        self.options
    }

    /// Identifies how chunks are made: a document whose text is unchanged is re-chunked (and so
    /// re-embedded) only when this changes.
    pub fn fingerprint(&self) -> String {
        let sizer = match &self.sizer {
            Sizer::Tokens { id, .. } => format!("tokens:{id}"),
            Sizer::ApproximateTokens => "approx".to_owned(),
        };
        format!(
            "chunker-v1;{sizer};max={};overlap={}",
            self.options.max_tokens, self.options.overlap
        )
    }

    /// Tokens in `text`, as chunk sizes are measured.
    pub fn count_tokens(&self, text: &str) -> usize {
        count_tokens(&self.sizer, text)
    }

    /// The document's chunks, in order. Empty when the document has no text.
    pub fn chunk(&self, document: &LoadedDocument) -> Vec<NewChunk> {
        let measure = Measure(&self.sizer);
        let config = ChunkConfig::new(self.options.max_tokens)
            .with_sizer(measure)
            .with_overlap(self.options.overlap)
            .unwrap_or_else(|_| {
                ChunkConfig::new(self.options.max_tokens).with_sizer(Measure(&self.sizer))
            });
        let pieces: Vec<(usize, &str)> = match document.format {
            Format::Markdown | Format::Html => MarkdownSplitter::new(config)
                .chunk_char_indices(&document.text)
                .map(|c| (c.char_offset, c.chunk))
                .collect(),
            _ => TextSplitter::new(config)
                .chunk_char_indices(&document.text)
                .map(|c| (c.char_offset, c.chunk))
                .collect(),
        };
        pieces
            .into_iter()
            .enumerate()
            .map(|(index, (start, content))| {
                let heading_path = heading_path(&document.headings, start);
                let end = start + content.chars().count();
                NewChunk {
                    chunk_index: u32::try_from(index).unwrap_or(u32::MAX),
                    content_hash: content_hash(&document.title, &heading_path, content),
                    content: content.to_owned(),
                    char_start: start as u64,
                    char_end: end as u64,
                    token_count: u32::try_from(self.count_tokens(content)).unwrap_or(u32::MAX),
                    heading_path,
                    metadata: Value::Null,
                }
            })
            .collect()
    }
}

/// The headings in force at `offset`, outermost first. A heading that starts exactly at `offset`
/// counts: a chunk that opens with a heading belongs to its section.
pub fn heading_path(headings: &[Heading], offset: usize) -> Vec<String> {
    let mut stack: Vec<&Heading> = Vec::new();
    for heading in headings.iter().take_while(|h| h.char_offset <= offset) {
        while stack.last().is_some_and(|top| top.level >= heading.level) {
            stack.pop();
        }
        stack.push(heading);
    }
    stack.into_iter().map(|h| h.title.clone()).collect()
}

/// The text that is embedded for a chunk: its document title and heading path give a short
/// passage the context a reader of the whole document would have.
pub fn embedding_text(title: &str, heading_path: &[String], content: &str) -> String {
    let mut text = String::with_capacity(title.len() + content.len() + 64);
    if !title.is_empty() {
        text.push_str(title);
        text.push('\n');
    }
    if !heading_path.is_empty() {
        text.push_str(&heading_path.join(" > "));
        text.push('\n');
    }
    if !text.is_empty() {
        text.push('\n');
    }
    text.push_str(content);
    text
}

/// The hash of what is embedded for a chunk: same hash, same vector.
pub fn content_hash(title: &str, heading_path: &[String], content: &str) -> String {
    hex(&Sha256::digest(
        embedding_text(title, heading_path, content).as_bytes(),
    ))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heading(char_offset: usize, level: u8, title: &str) -> Heading {
        Heading {
            char_offset,
            level,
            title: title.into(),
        }
    }

    fn markdown(text: &str, headings: Vec<Heading>) -> LoadedDocument {
        LoadedDocument {
            source: "/docs/guide.md".into(),
            title: "Guide".into(),
            text: text.into(),
            format: Format::Markdown,
            headings,
            url: None,
            metadata: serde_json::Map::new(),
        }
    }

    #[test]
    fn heading_paths_follow_the_outline() {
        let headings = vec![
            heading(0, 1, "Guide"),
            heading(10, 2, "Install"),
            heading(20, 3, "Linux"),
            heading(30, 2, "Configure"),
        ];
        assert_eq!(heading_path(&headings, 5), ["Guide"]);
        assert_eq!(heading_path(&headings, 20), ["Guide", "Install", "Linux"]);
        assert_eq!(heading_path(&headings, 25), ["Guide", "Install", "Linux"]);
        assert_eq!(heading_path(&headings, 35), ["Guide", "Configure"]);
        assert!(heading_path(&[], 35).is_empty());
    }

    #[test]
    fn chunks_point_back_into_the_text_and_respect_the_size() {
        let mut text = String::from("# Guide\n\nIntro paragraph é.\n\n## Install\n\n");
        for i in 0..40 {
            text.push_str(&format!("Step {i}: run the installer and check the log. "));
        }
        text.push_str("\n\n## Configure\n\nSet the port.\n");
        let install_at = text.find("## Install").expect("install");
        let configure_at = text.find("## Configure").expect("configure");
        let char_at = |byte: usize| text[..byte].chars().count();
        let document = markdown(
            &text,
            vec![
                heading(0, 1, "Guide"),
                heading(char_at(install_at), 2, "Install"),
                heading(char_at(configure_at), 2, "Configure"),
            ],
        );
        let chunker = Chunker::new(
            Sizer::ApproximateTokens,
            ChunkingOptions {
                max_tokens: 60,
                overlap: 0,
            },
        );
        let chunks = chunker.chunk(&document);
        assert!(chunks.len() > 3, "{} chunks", chunks.len());
        let chars: Vec<char> = text.chars().collect();
        for (i, chunk) in chunks.iter().enumerate() {
            assert_eq!(chunk.chunk_index as usize, i);
            let slice: String = chars[chunk.char_start as usize..chunk.char_end as usize]
                .iter()
                .collect();
            assert_eq!(slice, chunk.content, "offsets of chunk {i}");
            assert!(
                chunk.token_count <= 60,
                "chunk {i} has {} tokens",
                chunk.token_count
            );
        }
        let last = chunks.last().expect("chunks");
        assert_eq!(last.heading_path, ["Guide", "Configure"]);
        assert!(
            chunks
                .iter()
                .any(|c| c.heading_path == ["Guide", "Install"])
        );
    }

    #[test]
    fn the_hash_changes_with_the_heading_path_and_the_fingerprint_with_the_settings() {
        let a = content_hash("Guide", &["Install".into()], "run it");
        let b = content_hash("Guide", &["Configure".into()], "run it");
        assert_ne!(a, b);
        let small = Chunker::new(
            Sizer::ApproximateTokens,
            ChunkingOptions {
                max_tokens: 100,
                overlap: 10,
            },
        );
        let large = Chunker::new(
            Sizer::ApproximateTokens,
            ChunkingOptions {
                max_tokens: 200,
                overlap: 10,
            },
        );
        assert_ne!(small.fingerprint(), large.fingerprint());
    }

    #[test]
    fn an_empty_document_has_no_chunks() {
        let chunker = Chunker::new(Sizer::ApproximateTokens, ChunkingOptions::default());
        assert!(chunker.chunk(&markdown("", vec![])).is_empty());
    }
}
