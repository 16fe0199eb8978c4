//! The spec a collection is bound to (embedding model and dimension), and the checks on it.

use cairn_core::index::{IndexError, IndexPoint, IndexSpec};
use serde::{Deserialize, Serialize};

/// Version of the point layout and lexical encoding; a collection written with another one must be
/// reindexed.
pub const LAYOUT_VERSION: u32 = 1;

/// What is stored beside a collection (a JSON file for qdrant-edge, collection metadata for a
/// remote Qdrant) so that a later `ensure_collection` can refuse another model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSpec {
    pub embedding_model: String,
    pub dimension: usize,
    pub layout: u32,
}

impl StoredSpec {
    /// The spec to store for a new collection.
    pub fn new(spec: &IndexSpec) -> Self {
        Self {
            embedding_model: spec.embedding_model.clone(),
            dimension: spec.dimension,
            layout: LAYOUT_VERSION,
        }
    }

    /// Checks that an existing collection can serve `requested`.
    pub fn check(&self, requested: &IndexSpec) -> Result<(), IndexError> {
        if self.embedding_model != requested.embedding_model
            || self.dimension != requested.dimension
        {
            return Err(IndexError::ModelMismatch {
                collection: requested.collection.clone(),
                indexed_model: self.embedding_model.clone(),
                indexed_dimension: self.dimension,
                requested_model: requested.embedding_model.clone(),
                requested_dimension: requested.dimension,
            });
        }
        self.check_layout(&requested.collection)
    }

    /// Checks that the collection was written with this version's point layout.
    pub fn check_layout(&self, collection: &str) -> Result<(), IndexError> {
        if self.layout != LAYOUT_VERSION {
            return Err(IndexError::Backend(format!(
                "collection `{collection}` was indexed with point layout {} and this Cairn uses layout {LAYOUT_VERSION}; reindex the collection",
                self.layout
            )));
        }
        Ok(())
    }

    /// Checks every point's vector before anything is written, so a bad batch writes nothing.
    pub fn check_points(&self, collection: &str, points: &[IndexPoint]) -> Result<(), IndexError> {
        for point in points {
            if point.vector.len() != self.dimension {
                return Err(IndexError::DimensionMismatch {
                    collection: collection.to_owned(),
                    chunk_id: point.chunk_id,
                    expected: self.dimension,
                    got: point.vector.len(),
                });
            }
            if point.vector.iter().any(|x| !x.is_finite()) {
                return Err(IndexError::Backend(format!(
                    "vector for chunk {} has NaN or infinite components; check the embedding model `{}`",
                    point.chunk_id, self.embedding_model
                )));
            }
        }
        Ok(())
    }

    /// Checks a dense query vector.
    pub fn check_query(&self, collection: &str, vector: &[f32]) -> Result<(), IndexError> {
        if vector.len() != self.dimension {
            return Err(IndexError::Backend(format!(
                "query vector has {} dimensions; collection `{collection}` holds {} from `{}`: embed the query with that model",
                vector.len(),
                self.dimension,
                self.embedding_model
            )));
        }
        Ok(())
    }
}

/// Refuses specs no collection can be created with.
pub fn validate(spec: &IndexSpec) -> Result<(), IndexError> {
    if spec.dimension == 0 {
        return Err(IndexError::Backend(format!(
            "cannot index collection `{}` with 0-dimensional vectors; check the embedding model `{}`",
            spec.collection, spec.embedding_model
        )));
    }
    if spec.embedding_model.trim().is_empty() {
        return Err(IndexError::Backend(format!(
            "cannot index collection `{}` without an embedding model name",
            spec.collection
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn spec(model: &str, dimension: usize) -> IndexSpec {
        IndexSpec {
            collection: "kb".into(),
            embedding_model: model.into(),
            dimension,
        }
    }

    #[test]
    fn another_model_or_dimension_is_a_mismatch() {
        let stored = StoredSpec::new(&spec("m", 3));
        stored.check(&spec("m", 3)).expect("same spec");
        for other in [spec("n", 3), spec("m", 4)] {
            match stored.check(&other) {
                Err(IndexError::ModelMismatch {
                    indexed_model,
                    indexed_dimension: 3,
                    ..
                }) => assert_eq!(indexed_model, "m"),
                other => panic!("expected ModelMismatch, got {other:?}"),
            }
        }
    }

    #[test]
    fn points_are_checked_before_writing() {
        let stored = StoredSpec::new(&spec("m", 2));
        let point = |vector: Vec<f32>| IndexPoint {
            chunk_id: Uuid::new_v4(),
            document_id: Uuid::new_v4(),
            vector,
            text: String::new(),
            metadata: Default::default(),
        };
        let bad = point(vec![1.0]);
        match stored.check_points("kb", &[point(vec![1.0, 0.0]), bad.clone()]) {
            Err(IndexError::DimensionMismatch {
                chunk_id,
                expected: 2,
                got: 1,
                ..
            }) => assert_eq!(chunk_id, bad.chunk_id),
            other => panic!("expected DimensionMismatch, got {other:?}"),
        }
        assert!(
            stored
                .check_points("kb", &[point(vec![f32::NAN, 0.0])])
                .is_err()
        );
        assert!(validate(&spec("m", 0)).is_err());
    }
}
