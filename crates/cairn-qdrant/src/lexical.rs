//! BM25 term vectors, computed in this process for both adapters with qdrant-edge's embedder, so an
//! embedded and a remote index rank lexically the same way.
//!
//! Documents get BM25 term-frequency weights (k1 = 1.2, b = 0.75, average length 256 tokens),
//! queries get weight 1 per distinct term; Qdrant multiplies in the inverse document frequency
//! (the sparse vector's `Idf` modifier), so a score is the BM25 score of the chunk. Tokens are
//! lower-cased, English stop words removed and stemmed (Snowball), hashed to `u32` indices.

use std::fmt;

use cairn_core::index::IndexError;
use qdrant_edge::bm25_embed::{EdgeBm25, EdgeBm25Config};

/// A sparse vector: sorted, distinct term indices and their weights.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Terms {
    pub indices: Vec<u32>,
    pub values: Vec<f32>,
}

impl Terms {
    /// Whether the text had no indexable term (empty, or only stop words and punctuation).
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }
}

/// The BM25 embedder.
pub struct Lexical {
    bm25: EdgeBm25,
}

impl fmt::Debug for Lexical {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lexical").finish_non_exhaustive()
    }
}

impl Lexical {
    /// The embedder with qdrant-edge's defaults (English).
    pub fn new() -> Result<Self, IndexError> {
        let bm25 = EdgeBm25::new(EdgeBm25Config::default())
            .map_err(|err| IndexError::Backend(format!("cannot build the BM25 embedder: {err}")))?;
        Ok(Self { bm25 })
    }

    /// Term weights of a chunk's text.
    pub fn document(&self, text: &str) -> Terms {
        let sparse = self.bm25.embed_document(text);
        Terms {
            indices: sparse.indices,
            values: sparse.values,
        }
    }

    /// Terms of a query.
    pub fn query(&self, text: &str) -> Terms {
        let sparse = self.bm25.embed_query(text);
        Terms {
            indices: sparse.indices,
            values: sparse.values,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_and_queries_share_terms() {
        let lexical = Lexical::new().expect("bm25");
        let doc = lexical.document("The quokkas are smiling at the river");
        let query = lexical.query("quokka");
        assert_eq!(query.indices.len(), 1);
        assert!(doc.indices.contains(&query.indices[0]), "stemmed match");
        assert!(lexical.query("the of and").is_empty(), "stop words only");
        assert!(doc.indices.windows(2).all(|w| w[0] < w[1]), "sorted");
    }
}
