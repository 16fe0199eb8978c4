//! Cairn types to and from qdrant-edge's.

use std::collections::HashMap;

use cairn_core::index::{IndexError, IndexPoint, ScoredPoint};
use qdrant_edge::{
    Condition, FieldCondition, Filter, JsonPath, Match, Payload, PointId, PointStructPersisted,
    SparseVector, VectorInternal, VectorPersisted, VectorStructInternal, VectorStructPersisted,
};
use uuid::Uuid;

use crate::filter::TermFilter;
use crate::layout::{
    DENSE_VECTOR, FILTER_TERMS, HitFields, LEXICAL_VECTOR, chunk_id, point_payload,
};
use crate::lexical::{Lexical, Terms};

/// A payload key as a qdrant-edge path.
pub fn path(key: &str) -> Result<JsonPath, IndexError> {
    key.parse()
        .map_err(|()| IndexError::Backend(format!("`{key}` is not a valid payload path")))
}

/// A sparse vector in qdrant-edge's type.
pub fn sparse(terms: Terms) -> SparseVector {
    SparseVector {
        indices: terms.indices,
        values: terms.values,
    }
}

/// A chunk as a qdrant-edge point.
pub fn point(point: &IndexPoint, lexical: &Lexical) -> PointStructPersisted {
    let mut vectors = HashMap::from([(
        DENSE_VECTOR.to_owned(),
        VectorPersisted::Dense(point.vector.clone()),
    )]);
    let terms = lexical.document(&point.text);
    if !terms.is_empty() {
        vectors.insert(
            LEXICAL_VECTOR.to_owned(),
            VectorPersisted::Sparse(sparse(terms)),
        );
    }
    PointStructPersisted {
        id: PointId::Uuid(point.chunk_id),
        vector: VectorStructPersisted::Named(vectors),
        payload: Some(Payload(point_payload(point))),
    }
}

/// A term filter as a qdrant-edge filter.
pub fn filter(filter: &TermFilter) -> Result<Filter, IndexError> {
    let terms = path(FILTER_TERMS)?;
    let condition = |group: &Vec<String>| {
        let r#match = match group.as_slice() {
            [one] => Match::from(one.clone()),
            many => Match::from(many.to_vec()),
        };
        Condition::Field(FieldCondition::new_match(terms.clone(), r#match))
    };
    let list = |groups: &Vec<Vec<String>>| {
        (!groups.is_empty()).then(|| groups.iter().map(condition).collect())
    };
    Ok(Filter {
        should: None,
        min_should: None,
        must: list(&filter.must),
        must_not: list(&filter.must_not),
    })
}

/// A point id as a chunk id.
pub fn point_uuid(collection: &str, id: PointId) -> Result<Uuid, IndexError> {
    match id {
        PointId::Uuid(uuid) => Ok(uuid),
        PointId::NumId(n) => chunk_id(collection, &n.to_string()),
    }
}

/// A qdrant-edge hit as a Cairn hit.
pub fn hit(
    collection: &str,
    point: qdrant_edge::ScoredPoint,
    with_vectors: bool,
) -> Result<ScoredPoint, IndexError> {
    let chunk_id = point_uuid(collection, point.id)?;
    let payload = point.payload.map(|p| p.0).unwrap_or_default();
    let fields = HitFields::from_payload(collection, chunk_id, &payload)?;
    let vector = if with_vectors {
        let dense = match point.vector {
            Some(VectorStructInternal::Named(mut named)) => match named.remove(DENSE_VECTOR) {
                Some(VectorInternal::Dense(dense)) => Some(dense),
                _ => None,
            },
            _ => None,
        };
        let dense = dense.ok_or_else(|| {
            IndexError::Backend(format!(
                "point {chunk_id} in collection `{collection}` came back without its `{DENSE_VECTOR}` vector"
            ))
        })?;
        Some(fields.restore(dense))
    } else {
        None
    };
    Ok(ScoredPoint {
        chunk_id,
        document_id: fields.document_id,
        score: point.score,
        vector,
    })
}
