//! Cairn types to and from the Qdrant gRPC API's.

use std::collections::HashMap;

use cairn_core::index::{IndexError, IndexPoint, IndexSpec, ScoredPoint};
use qdrant_client::Payload;
use qdrant_client::qdrant::r#match::MatchValue;
use qdrant_client::qdrant::point_id::PointIdOptions;
use qdrant_client::qdrant::vector_output::Vector as OutputVector;
use qdrant_client::qdrant::vectors_config::Config;
use qdrant_client::qdrant::vectors_output::VectorsOptions;
use qdrant_client::qdrant::{
    CollectionInfo, Condition, CreateCollection, Distance, Filter, Modifier, NamedVectors, PointId,
    PointStruct, RepeatedStrings, SparseVectorConfig, SparseVectorParams, Value, Vector,
    VectorParams, VectorParamsMap, VectorsConfig,
};
use serde_json::Map;
use uuid::Uuid;

use crate::filter::TermFilter;
use crate::layout::{
    DENSE_VECTOR, FILTER_TERMS, HIT_PAYLOAD_KEYS, HitFields, LEXICAL_VECTOR, chunk_id,
    point_payload,
};
use crate::lexical::Lexical;
use crate::spec::StoredSpec;

/// Collection metadata key of the embedding model.
pub const META_MODEL: &str = "cairn_embedding_model";
/// Collection metadata key of the dimension.
pub const META_DIMENSION: &str = "cairn_dimension";
/// Collection metadata key of the point layout version.
pub const META_LAYOUT: &str = "cairn_layout";

/// The request that creates a Cairn collection named `qdrant_name`, its spec in the metadata.
pub fn create_collection(qdrant_name: &str, spec: &IndexSpec) -> CreateCollection {
    let stored = StoredSpec::new(spec);
    let dense = VectorParams {
        size: spec.dimension as u64,
        distance: Distance::Cosine.into(),
        ..VectorParams::default()
    };
    let lexical = SparseVectorParams {
        index: None,
        modifier: Some(Modifier::Idf.into()),
    };
    CreateCollection {
        collection_name: qdrant_name.to_owned(),
        vectors_config: Some(VectorsConfig {
            config: Some(Config::ParamsMap(VectorParamsMap {
                map: HashMap::from([(DENSE_VECTOR.to_owned(), dense)]),
            })),
        }),
        sparse_vectors_config: Some(SparseVectorConfig {
            map: HashMap::from([(LEXICAL_VECTOR.to_owned(), lexical)]),
        }),
        metadata: HashMap::from([
            (META_MODEL.to_owned(), Value::from(stored.embedding_model)),
            (
                META_DIMENSION.to_owned(),
                Value::from(stored.dimension as i64),
            ),
            (
                META_LAYOUT.to_owned(),
                Value::from(i64::from(stored.layout)),
            ),
        ]),
        ..CreateCollection::default()
    }
}

/// The spec stored in a collection's metadata; `None` when it has none (not created by Cairn, or a
/// server older than 1.16, which drops collection metadata).
pub fn stored_spec(info: &CollectionInfo) -> Option<StoredSpec> {
    let metadata = &info.config.as_ref()?.metadata;
    // Numbers are written as integers; accept them read back as doubles too.
    let integer = |key: &str| {
        let value = metadata.get(key)?;
        value.as_integer().or_else(|| {
            value
                .as_double()
                .filter(|d| d.fract() == 0.0 && *d >= 0.0)
                .map(|d| d as i64)
        })
    };
    let embedding_model = metadata.get(META_MODEL)?.as_str()?.clone();
    let dimension = usize::try_from(integer(META_DIMENSION)?).ok()?;
    let layout = u32::try_from(integer(META_LAYOUT)?).ok()?;
    Some(StoredSpec {
        embedding_model,
        dimension,
        layout,
    })
}

/// A chunk as a Qdrant point.
pub fn point(point: &IndexPoint, lexical: &Lexical) -> PointStruct {
    let mut vectors = HashMap::from([(
        DENSE_VECTOR.to_owned(),
        Vector::new_dense(point.vector.clone()),
    )]);
    let terms = lexical.document(&point.text);
    if !terms.is_empty() {
        vectors.insert(
            LEXICAL_VECTOR.to_owned(),
            Vector::new_sparse(terms.indices, terms.values),
        );
    }
    PointStruct::new(
        point.chunk_id,
        NamedVectors { vectors },
        Payload::from(point_payload(point)),
    )
}

/// A term filter as a Qdrant filter. Keyword matches are built explicitly: the client turns a
/// `String` with whitespace into a full-text match.
pub fn filter(filter: &TermFilter) -> Filter {
    let condition = |group: &Vec<String>| {
        let value = match group.as_slice() {
            [one] => MatchValue::Keyword(one.clone()),
            many => MatchValue::Keywords(RepeatedStrings {
                strings: many.to_vec(),
            }),
        };
        Condition::matches(FILTER_TERMS, value)
    };
    Filter {
        must: filter.must.iter().map(condition).collect(),
        must_not: filter.must_not.iter().map(condition).collect(),
        ..Filter::default()
    }
}

/// A point id as a chunk id.
pub fn point_uuid(collection: &str, id: Option<PointId>) -> Result<Uuid, IndexError> {
    match id.and_then(|id| id.point_id_options) {
        Some(PointIdOptions::Uuid(uuid)) => chunk_id(collection, &uuid),
        Some(PointIdOptions::Num(n)) => chunk_id(collection, &n.to_string()),
        None => chunk_id(collection, ""),
    }
}

/// A Qdrant hit as a Cairn hit.
pub fn hit(
    collection: &str,
    point: qdrant_client::qdrant::ScoredPoint,
    with_vectors: bool,
) -> Result<ScoredPoint, IndexError> {
    let chunk_id = point_uuid(collection, point.id)?;
    let mut payload = point.payload;
    let fields: Map<String, serde_json::Value> = HIT_PAYLOAD_KEYS
        .iter()
        .filter_map(|key| {
            payload
                .remove(*key)
                .map(|value| ((*key).to_owned(), value.into_json()))
        })
        .collect();
    let fields = HitFields::from_payload(collection, chunk_id, &fields)?;
    let vector = if with_vectors {
        let dense = match point.vectors.and_then(|v| v.vectors_options) {
            Some(VectorsOptions::Vectors(mut named)) => named
                .vectors
                .remove(DENSE_VECTOR)
                .map(|output| output.into_vector()),
            _ => None,
        };
        match dense {
            Some(OutputVector::Dense(dense)) => Some(fields.restore(dense.data)),
            _ => {
                return Err(IndexError::Backend(format!(
                    "point {chunk_id} in collection `{collection}` came back without its `{DENSE_VECTOR}` vector"
                )));
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_core::index::{Condition as PortCondition, Filter as PortFilter};
    use qdrant_client::qdrant::CollectionConfig;
    use qdrant_client::qdrant::condition::ConditionOneOf;
    use serde_json::json;

    #[test]
    fn the_spec_round_trips_through_collection_metadata() {
        let spec = IndexSpec {
            collection: "kb".into(),
            embedding_model: "all-minilm".into(),
            dimension: 384,
        };
        let request = create_collection("cairn_kb", &spec);
        let info = CollectionInfo {
            config: Some(CollectionConfig {
                metadata: request.metadata.clone(),
                ..CollectionConfig::default()
            }),
            ..CollectionInfo::default()
        };
        assert_eq!(stored_spec(&info), Some(StoredSpec::new(&spec)));
        assert_eq!(stored_spec(&CollectionInfo::default()), None);
        assert!(request.sparse_vectors_config.is_some());
    }

    #[test]
    fn filters_are_keyword_matches_even_with_whitespace() {
        let port = PortFilter {
            must: vec![PortCondition::Equals {
                field: "title".into(),
                value: json!("two words"),
            }],
            must_not: vec![PortCondition::AnyOf {
                field: "lang".into(),
                values: vec![json!("en"), json!("fr")],
            }],
        };
        let filter = filter(&TermFilter::from_filter(&port).expect("filter"));
        let matched = |condition: &Condition| match &condition.condition_one_of {
            Some(ConditionOneOf::Field(field)) => {
                assert_eq!(field.key, FILTER_TERMS);
                field.r#match.clone().and_then(|m| m.match_value)
            }
            _ => None,
        };
        assert_eq!(
            matched(&filter.must[0]),
            Some(MatchValue::Keyword(r#""title"="two words""#.into()))
        );
        assert!(matches!(
            matched(&filter.must_not[0]),
            Some(MatchValue::Keywords(RepeatedStrings { strings })) if strings.len() == 2
        ));
    }

    #[test]
    fn points_carry_both_vectors_and_the_payload() {
        let lexical = Lexical::new().expect("bm25");
        let chunk = IndexPoint {
            chunk_id: Uuid::new_v4(),
            document_id: Uuid::new_v4(),
            vector: vec![0.5, 0.5],
            text: "quokkas smile".into(),
            metadata: Map::new(),
        };
        let point = point(&chunk, &lexical);
        assert_eq!(
            point_uuid("kb", point.id.clone()).expect("id"),
            chunk.chunk_id
        );
        assert!(point.payload.contains_key(FILTER_TERMS));
        let json: Map<String, serde_json::Value> = point
            .payload
            .into_iter()
            .map(|(k, v)| (k, v.into_json()))
            .collect();
        let fields = HitFields::from_payload("kb", chunk.chunk_id, &json).expect("fields");
        assert_eq!(fields.document_id, chunk.document_id);
    }
}
