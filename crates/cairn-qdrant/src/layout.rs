//! How a Cairn chunk is laid out as a Qdrant point, the same in both adapters.
//!
//! - Point id: the chunk's uuid.
//! - Vectors: [`DENSE_VECTOR`] (cosine, the collection's dimension) and [`LEXICAL_VECTOR`] (sparse
//!   BM25 term weights with the IDF modifier; absent when the text has no terms).
//! - Payload, with fixed top-level keys so that metadata can never collide with them:
//!   - [`DOCUMENT_ID`]: the document's uuid as a string;
//!   - [`VECTOR_NORM`]: the dense vector's Euclidean norm (Qdrant stores cosine vectors normalised;
//!     the norm restores the vector as it was given);
//!   - [`METADATA`]: the chunk's metadata object as given, for people browsing the collection;
//!   - [`FILTER_TERMS`]: one keyword per metadata field (see [`crate::filter`]), which is what
//!     filters match, through a keyword payload index.

use cairn_core::index::{IndexError, IndexPoint};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::filter::filter_terms;

/// Name of the dense vector in every Cairn collection.
pub const DENSE_VECTOR: &str = "dense";
/// Name of the sparse BM25 vector in every Cairn collection.
pub const LEXICAL_VECTOR: &str = "bm25";

/// Payload key of the document id.
pub const DOCUMENT_ID: &str = "document_id";
/// Payload key of the dense vector's norm.
pub const VECTOR_NORM: &str = "vector_norm";
/// Payload key of the metadata object.
pub const METADATA: &str = "metadata";
/// Payload key of the filter keywords (a keyword payload index covers it).
pub const FILTER_TERMS: &str = "filter_terms";

/// The payload keys a search reads back.
pub const HIT_PAYLOAD_KEYS: [&str; 2] = [DOCUMENT_ID, VECTOR_NORM];

/// The Euclidean norm of a vector.
pub fn norm(vector: &[f32]) -> f32 {
    vector.iter().map(|x| x * x).sum::<f32>().sqrt()
}

/// The payload stored with a point.
pub fn point_payload(point: &IndexPoint) -> Map<String, Value> {
    let mut payload = Map::new();
    payload.insert(
        DOCUMENT_ID.to_owned(),
        Value::String(point.document_id.to_string()),
    );
    payload.insert(VECTOR_NORM.to_owned(), Value::from(norm(&point.vector)));
    payload.insert(METADATA.to_owned(), Value::Object(point.metadata.clone()));
    payload.insert(
        FILTER_TERMS.to_owned(),
        Value::Array(
            filter_terms(&point.metadata)
                .into_iter()
                .map(Value::String)
                .collect(),
        ),
    );
    payload
}

/// What a hit carries besides its id and score, read back from the payload.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HitFields {
    pub document_id: Uuid,
    pub vector_norm: f32,
}

impl HitFields {
    /// Reads the hit fields from a point's payload (only [`HIT_PAYLOAD_KEYS`] are needed).
    pub fn from_payload(
        collection: &str,
        chunk_id: Uuid,
        payload: &Map<String, Value>,
    ) -> Result<Self, IndexError> {
        let document_id = payload
            .get(DOCUMENT_ID)
            .and_then(Value::as_str)
            .and_then(|s| Uuid::parse_str(s).ok())
            .ok_or_else(|| foreign_point(collection, chunk_id, DOCUMENT_ID))?;
        let vector_norm = payload
            .get(VECTOR_NORM)
            .and_then(Value::as_f64)
            .ok_or_else(|| foreign_point(collection, chunk_id, VECTOR_NORM))?;
        Ok(Self {
            document_id,
            // Stored from an f32, so the narrowing is exact.
            vector_norm: vector_norm as f32,
        })
    }

    /// The vector as it was given: Qdrant returns cosine vectors scaled to unit length.
    pub fn restore(&self, mut unit: Vec<f32>) -> Vec<f32> {
        let stored_norm = norm(&unit);
        if stored_norm > 0.0 {
            let scale = self.vector_norm / stored_norm;
            unit.iter_mut().for_each(|x| *x *= scale);
        }
        unit
    }
}

fn foreign_point(collection: &str, chunk_id: Uuid, key: &str) -> IndexError {
    IndexError::Backend(format!(
        "point {chunk_id} in collection `{collection}` has no valid `{key}` in its payload; it was not written by Cairn: drop the collection and ingest again"
    ))
}

/// Parses a point id as a chunk id.
pub fn chunk_id(collection: &str, id: &str) -> Result<Uuid, IndexError> {
    Uuid::parse_str(id).map_err(|_| {
        IndexError::Backend(format!(
            "point `{id}` in collection `{collection}` does not have a uuid id; it was not written by Cairn: drop the collection and ingest again"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn point() -> IndexPoint {
        IndexPoint {
            chunk_id: Uuid::new_v4(),
            document_id: Uuid::new_v4(),
            vector: vec![3.0, 4.0],
            text: "hello".into(),
            metadata: json!({"lang": "en", "document_id": "spoofed"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        }
    }

    #[test]
    fn metadata_cannot_shadow_reserved_keys() {
        let point = point();
        let payload = point_payload(&point);
        assert_eq!(
            payload[DOCUMENT_ID],
            Value::String(point.document_id.to_string())
        );
        assert_eq!(payload[METADATA]["document_id"], json!("spoofed"));
        assert_eq!(payload[VECTOR_NORM], json!(5.0));
    }

    #[test]
    fn hits_restore_the_given_vector() {
        let point = point();
        let payload = point_payload(&point);
        let fields = HitFields::from_payload("c", point.chunk_id, &payload).expect("fields");
        assert_eq!(fields.document_id, point.document_id);
        assert_eq!(fields.restore(vec![0.6, 0.8]), vec![3.0, 4.0]);
        assert_eq!(fields.restore(vec![0.0, 0.0]), vec![0.0, 0.0]);
    }

    #[test]
    fn foreign_payloads_are_reported() {
        let err = HitFields::from_payload("c", Uuid::nil(), &Map::new()).expect_err("foreign");
        assert!(err.to_string().contains("not written by Cairn"), "{err}");
    }
}
