//! A document's text, rebuilt from its stored chunks (which carry their character offsets), and
//! character ranges of it: what citation panels and document tools show.

use cairn_core::catalog::Chunk;

/// The document's text: each chunk placed at its character offsets. Overlapping chunks agree on
/// the characters they share; a gap between chunks (whitespace the chunker dropped) becomes spaces.
pub fn document_text(chunks: &[Chunk]) -> String {
    let mut ordered: Vec<&Chunk> = chunks.iter().collect();
    ordered.sort_by_key(|c| (c.char_start, c.chunk_index));
    let mut text: Vec<char> = Vec::new();
    for chunk in ordered {
        let start = usize::try_from(chunk.char_start).unwrap_or(usize::MAX);
        if start > text.len() {
            text.resize(start, ' ');
        }
        let already = text.len() - start;
        text.extend(chunk.content.chars().skip(already));
    }
    text.into_iter().collect()
}

/// Characters `start..end` of `text` (clamped), and the range actually returned.
pub fn text_range(text: &str, start: Option<u64>, end: Option<u64>) -> (String, u64, u64) {
    let total = text.chars().count() as u64;
    let end = end.unwrap_or(total).min(total);
    let start = start.unwrap_or(0).min(end);
    let piece = text
        .chars()
        .skip(start as usize)
        .take((end - start) as usize)
        .collect();
    (piece, start, end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(index: u32, text: &str, at: usize, piece: &str) -> Chunk {
        let start = text[..text.find(piece).unwrap_or(at)].chars().count() as u64;
        Chunk {
            id: uuid::Uuid::now_v7(),
            document_id: uuid::Uuid::nil(),
            chunk_index: index,
            content: piece.to_owned(),
            content_hash: String::new(),
            char_start: start,
            char_end: start + piece.chars().count() as u64,
            heading_path: vec![],
            token_count: 0,
            metadata: serde_json::Value::Null,
        }
    }

    #[test]
    fn overlapping_chunks_rebuild_the_text_once() {
        let text = "Überschrift: the quick brown fox jumps over the lazy dog";
        let chunks = vec![
            chunk(1, text, 0, "brown fox jumps over the lazy dog"),
            chunk(0, text, 0, "Überschrift: the quick brown fox"),
        ];
        assert_eq!(document_text(&chunks), text);
    }

    #[test]
    fn gaps_become_spaces_and_slices_clamp() {
        let text = "alpha\n\nbeta";
        let chunks = vec![chunk(0, text, 0, "alpha"), chunk(1, text, 0, "beta")];
        assert_eq!(document_text(&chunks), "alpha  beta");
        assert_eq!(
            text_range("alpha beta", Some(6), Some(99)),
            ("beta".into(), 6, 10)
        );
        assert_eq!(
            text_range("alpha beta", Some(20), None),
            (String::new(), 10, 10)
        );
    }
}
