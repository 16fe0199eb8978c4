//! The contract every vector index backend must honour, as one suite of async checks.
//!
//! Each backend's integration tests expand [`index_contract_tests!`] with a function that returns an
//! index (and a guard that cleans up when dropped). The checks use only the `cairn-core` port, and
//! every check names its collections uniquely (`<check>-<random>`), so the suite can run in
//! parallel against one shared server.
//!
//! Where a backend has latitude, the checks allow it: scores are compared with a tolerance, a
//! returned vector may differ from the stored one by rounding.

pub mod bench;

use std::collections::BTreeSet;
use std::sync::Arc;

use cairn_core::index::{
    Condition, Filter, IndexError, IndexPoint, IndexQuery, IndexSpec, Probe, ScoredPoint,
    VectorIndex,
};
use serde_json::{Map, Value, json};
use uuid::Uuid;

/// Expands to one `#[tokio::test]` per contract check.
///
/// `$setup` is an async fn returning `(Arc<dyn VectorIndex>, G)`, where `G` cleans up when dropped.
/// A backend that needs a server the environment may not have expands the tests in a module of their
/// own, has `$setup` fail with the fix when the server is not configured, and leaves that module out
/// of the default test run with a nextest filter (see `.config/nextest.toml`): a check that did not
/// run never counts as passed.
#[macro_export]
macro_rules! index_contract_tests {
    ($setup:path) => {
        $crate::index_contract_tests!(@tests $setup;
            ping, ensure_collection_binds_the_model, upsert_refuses_wrong_dimension,
            upsert_replaces_by_chunk_id, delete_is_idempotent, dense_search_ranks_by_cosine,
            lexical_search_ranks_rare_terms_first, filters_match_the_reference_semantics,
            with_vectors_returns_stored_vectors, top_k_is_respected,
            unknown_collections_are_reported, drop_collection_removes_it,
            collections_are_isolated);
    };
    (@tests $setup:path; $($check:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let (index, _guard) = $setup().await;
                $crate::$check(index).await;
            }
        )*
    };
}

/// A collection name unique to this run: `<check>-<12 hex digits>`.
pub fn unique_name(check: &str) -> String {
    let suffix = Uuid::new_v4().simple().to_string();
    format!("{check}-{}", &suffix[..12])
}

fn spec(collection: &str, model: &str, dimension: usize) -> IndexSpec {
    IndexSpec {
        collection: collection.to_owned(),
        embedding_model: model.to_owned(),
        dimension,
    }
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("metadata must be an object, got {other}"),
    }
}

fn point(vector: Vec<f32>, text: &str, metadata: Value) -> IndexPoint {
    IndexPoint {
        chunk_id: Uuid::new_v4(),
        document_id: Uuid::new_v4(),
        vector,
        text: text.to_owned(),
        metadata: object(metadata),
    }
}

fn query(collection: &str, probe: Probe, top_k: usize) -> IndexQuery {
    IndexQuery {
        collection: collection.to_owned(),
        probe,
        filter: None,
        top_k,
        with_vectors: false,
    }
}

async fn ensure(index: &dyn VectorIndex, collection: &str, dimension: usize) {
    index
        .ensure_collection(&spec(collection, "model-a", dimension))
        .await
        .expect("ensure_collection");
}

async fn search(index: &dyn VectorIndex, query: &IndexQuery) -> Vec<ScoredPoint> {
    index.search(query).await.expect("search")
}

async fn ids(index: &dyn VectorIndex, collection: &str) -> BTreeSet<Uuid> {
    let ids = index.point_ids(collection).await.expect("point_ids");
    let set: BTreeSet<Uuid> = ids.iter().copied().collect();
    assert_eq!(set.len(), ids.len(), "point_ids has duplicates: {ids:?}");
    set
}

fn hit_ids(hits: &[ScoredPoint]) -> Vec<Uuid> {
    hits.iter().map(|h| h.chunk_id).collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (norm(a) * norm(b))
}

/// Deterministic pseudo-random vectors (a 64-bit LCG), components in [-1, 1).
fn vectors(seed: u64, count: usize, dimension: usize) -> Vec<Vec<f32>> {
    let mut state = seed;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    };
    (0..count)
        .map(|_| (0..dimension).map(|_| next()).collect())
        .collect()
}

fn assert_unknown<T: std::fmt::Debug>(result: Result<T, IndexError>, collection: &str, what: &str) {
    match result {
        Err(IndexError::UnknownCollection(name)) => assert_eq!(name, collection, "{what}"),
        other => panic!("{what}: expected UnknownCollection({collection}), got {other:?}"),
    }
}

pub async fn ping(index: Arc<dyn VectorIndex>) {
    index.ping().await.expect("ping");
    assert!(
        ["pgvector", "qdrant", "qdrant-edge"].contains(&index.backend()),
        "unexpected backend name {}",
        index.backend()
    );
}

pub async fn ensure_collection_binds_the_model(index: Arc<dyn VectorIndex>) {
    let name = unique_name("ensure");
    let bound = spec(&name, "model-a", 3);
    index.ensure_collection(&bound).await.expect("create");
    index.ensure_collection(&bound).await.expect("idempotent");
    for (model, dimension) in [("model-b", 3), ("model-a", 4), ("model-b", 5)] {
        match index
            .ensure_collection(&spec(&name, model, dimension))
            .await
        {
            Err(IndexError::ModelMismatch {
                collection,
                indexed_model,
                indexed_dimension,
                requested_model,
                requested_dimension,
            }) => {
                assert_eq!(collection, name);
                assert_eq!((indexed_model.as_str(), indexed_dimension), ("model-a", 3));
                assert_eq!(
                    (requested_model.as_str(), requested_dimension),
                    (model, dimension)
                );
            }
            other => panic!("{model}/{dimension}: expected ModelMismatch, got {other:?}"),
        }
    }
    // The refused specs changed nothing.
    index
        .upsert(&name, vec![point(vec![1.0, 0.0, 0.0], "kept", json!({}))])
        .await
        .expect("upsert after refusals");
    assert_eq!(ids(&*index, &name).await.len(), 1);
    index.ensure_collection(&bound).await.expect("still bound");
}

pub async fn upsert_refuses_wrong_dimension(index: Arc<dyn VectorIndex>) {
    let name = unique_name("dimension");
    ensure(&*index, &name, 3).await;
    let good = point(vec![1.0, 0.0, 0.0], "good", json!({}));
    let bad = point(vec![1.0, 0.0], "bad", json!({}));
    match index.upsert(&name, vec![good, bad.clone()]).await {
        Err(IndexError::DimensionMismatch {
            collection,
            chunk_id,
            expected,
            got,
        }) => {
            assert_eq!(collection, name);
            assert_eq!(chunk_id, bad.chunk_id);
            assert_eq!((expected, got), (3, 2));
        }
        other => panic!("expected DimensionMismatch, got {other:?}"),
    }
    assert!(
        ids(&*index, &name).await.is_empty(),
        "a batch with a bad vector writes nothing"
    );
}

pub async fn upsert_replaces_by_chunk_id(index: Arc<dyn VectorIndex>) {
    let name = unique_name("replace");
    ensure(&*index, &name, 3).await;
    let mut points = vec![
        point(vec![1.0, 0.0, 0.0], "alpine meadow", json!({"v": 1})),
        point(vec![0.0, 1.0, 0.0], "coastal dunes", json!({"v": 1})),
        point(vec![0.0, 0.0, 1.0], "boreal forest", json!({"v": 1})),
    ];
    index.upsert(&name, points.clone()).await.expect("upsert");
    let expected: BTreeSet<Uuid> = points.iter().map(|p| p.chunk_id).collect();
    assert_eq!(ids(&*index, &name).await, expected);

    // Replace the first point's vector, text, metadata and document; upsert twice.
    let replaced = &mut points[0];
    replaced.vector = vec![0.0, -1.0, 0.0];
    replaced.text = "volcanic crater".into();
    replaced.metadata = object(json!({"v": 2}));
    replaced.document_id = Uuid::new_v4();
    let replaced = replaced.clone();
    index
        .upsert(&name, vec![replaced.clone()])
        .await
        .expect("replace");
    index
        .upsert(&name, vec![replaced.clone()])
        .await
        .expect("replace again");
    assert_eq!(ids(&*index, &name).await, expected, "no duplicates");

    let hits = search(
        &*index,
        &query(&name, Probe::Dense(vec![0.0, -1.0, 0.0]), 1),
    )
    .await;
    assert_eq!(hit_ids(&hits), [replaced.chunk_id]);
    assert_eq!(hits[0].document_id, replaced.document_id);
    assert!(
        (hits[0].score - 1.0).abs() < 1e-4,
        "score {}",
        hits[0].score
    );

    let old_text = search(&*index, &query(&name, Probe::Lexical("alpine".into()), 10)).await;
    assert!(old_text.is_empty(), "the old text is gone: {old_text:?}");
    let new_text = search(
        &*index,
        &query(&name, Probe::Lexical("volcanic".into()), 10),
    )
    .await;
    assert_eq!(hit_ids(&new_text), [replaced.chunk_id]);

    let mut by_v2 = query(&name, Probe::Dense(vec![1.0, 1.0, 1.0]), 10);
    by_v2.filter = Some(Filter {
        must: vec![Condition::Equals {
            field: "v".into(),
            value: json!(2),
        }],
        must_not: vec![],
    });
    assert_eq!(hit_ids(&search(&*index, &by_v2).await), [replaced.chunk_id]);
}

pub async fn delete_is_idempotent(index: Arc<dyn VectorIndex>) {
    let name = unique_name("delete");
    ensure(&*index, &name, 2).await;
    let points = vec![
        point(vec![1.0, 0.0], "one", json!({})),
        point(vec![0.0, 1.0], "two", json!({})),
        point(vec![1.0, 1.0], "three", json!({})),
    ];
    index.upsert(&name, points.clone()).await.expect("upsert");
    let gone = [points[0].chunk_id, Uuid::new_v4()];
    index.delete(&name, &gone).await.expect("delete");
    index.delete(&name, &gone).await.expect("delete again");
    index.delete(&name, &[]).await.expect("delete nothing");
    let expected: BTreeSet<Uuid> = points[1..].iter().map(|p| p.chunk_id).collect();
    assert_eq!(ids(&*index, &name).await, expected);
    let hits = search(&*index, &query(&name, Probe::Dense(vec![1.0, 0.0]), 10)).await;
    assert!(!hit_ids(&hits).contains(&points[0].chunk_id));
    assert_eq!(hits.len(), 2);
}

pub async fn dense_search_ranks_by_cosine(index: Arc<dyn VectorIndex>) {
    let name = unique_name("dense");
    let dimension = 8;
    ensure(&*index, &name, dimension).await;
    let mut generated = vectors(7, 25, dimension);
    let probe = generated.pop().expect("probe");
    let points: Vec<IndexPoint> = generated
        .into_iter()
        .enumerate()
        .map(|(i, v)| point(v, &format!("chunk {i}"), json!({})))
        .collect();
    index.upsert(&name, points.clone()).await.expect("upsert");

    let mut expected: Vec<(Uuid, f32)> = points
        .iter()
        .map(|p| (p.chunk_id, cosine(&p.vector, &probe)))
        .collect();
    expected.sort_by(|a, b| b.1.total_cmp(&a.1));
    assert!(
        expected.windows(2).all(|w| w[0].1 - w[1].1 > 1e-4),
        "the fixture has near ties; change the seed"
    );

    let hits = search(&*index, &query(&name, Probe::Dense(probe.clone()), 5)).await;
    assert_eq!(
        hit_ids(&hits),
        expected[..5].iter().map(|e| e.0).collect::<Vec<_>>()
    );
    let all = search(&*index, &query(&name, Probe::Dense(probe), 100)).await;
    assert_eq!(all.len(), points.len());
    for (hit, (id, score)) in all.iter().zip(&expected) {
        assert_eq!(hit.chunk_id, *id);
        assert!(
            (hit.score - score).abs() < 1e-4,
            "score {} is not the cosine {score}",
            hit.score
        );
        assert!(hit.vector.is_none(), "vectors only when asked");
    }
    let documents: BTreeSet<Uuid> = points.iter().map(|p| p.document_id).collect();
    assert!(all.iter().all(|h| documents.contains(&h.document_id)));
}

pub async fn lexical_search_ranks_rare_terms_first(index: Arc<dyn VectorIndex>) {
    let name = unique_name("lexical");
    ensure(&*index, &name, 2).await;
    let texts = [
        "The river runs through the valley past the old mill.",
        "Fishing on the river at dawn is quiet.",
        "A river delta spreads into many channels.",
        "The quokka rests near a river bank on the island.",
        "Mountain snow melts slowly in spring.",
    ];
    let points: Vec<IndexPoint> = texts
        .iter()
        .map(|t| point(vec![1.0, 0.0], t, json!({})))
        .collect();
    index.upsert(&name, points.clone()).await.expect("upsert");

    let hits = search(
        &*index,
        &query(&name, Probe::Lexical("quokka river".into()), 10),
    )
    .await;
    assert_eq!(hits.first().map(|h| h.chunk_id), Some(points[3].chunk_id));
    let found: BTreeSet<Uuid> = hit_ids(&hits).into_iter().collect();
    let sharing: BTreeSet<Uuid> = points[..4].iter().map(|p| p.chunk_id).collect();
    assert_eq!(
        found, sharing,
        "every chunk with a query term, and no other"
    );
    assert!(hits.iter().all(|h| h.score > 0.0), "{hits:?}");
    assert!(
        hits.windows(2).all(|w| w[0].score >= w[1].score),
        "best first"
    );
    assert_eq!(hits[0].document_id, points[3].document_id);

    let none = search(
        &*index,
        &query(&name, Probe::Lexical("zeppelin".into()), 10),
    )
    .await;
    assert!(none.is_empty(), "{none:?}");
    let empty = search(&*index, &query(&name, Probe::Lexical(String::new()), 10)).await;
    assert!(empty.is_empty(), "an empty query has no terms: {empty:?}");
}

pub async fn filters_match_the_reference_semantics(index: Arc<dyn VectorIndex>) {
    let name = unique_name("filters");
    ensure(&*index, &name, 3).await;
    let metadata = [
        json!({"lang": "en", "year": 2021, "draft": false}),
        json!({"lang": "en", "year": 2022, "draft": true}),
        json!({"lang": "fr", "year": 2021, "draft": false, "team": "search"}),
        json!({"lang": "fr", "year": 2023}),
        json!({"lang": "de", "year": 2022, "draft": true, "team": "ml"}),
        json!({"lang": "2021", "draft": false}),
        json!({"year": "2021", "team": "search"}),
        json!({"lang": "en fr", "year": 2021.5}),
        json!({}),
    ];
    let points: Vec<IndexPoint> = metadata
        .iter()
        .zip(vectors(11, metadata.len(), 3))
        .map(|(m, v)| point(v, "shared words in every chunk", m.clone()))
        .collect();
    index.upsert(&name, points.clone()).await.expect("upsert");

    let eq = |field: &str, value: Value| Condition::Equals {
        field: field.into(),
        value,
    };
    let any = |field: &str, values: Vec<Value>| Condition::AnyOf {
        field: field.into(),
        values,
    };
    let filters = [
        Filter {
            must: vec![eq("lang", json!("en"))],
            must_not: vec![],
        },
        Filter {
            must: vec![eq("year", json!(2021))],
            must_not: vec![],
        },
        Filter {
            must: vec![eq("draft", json!(true))],
            must_not: vec![],
        },
        Filter {
            must: vec![eq("draft", json!(false))],
            must_not: vec![],
        },
        Filter {
            must: vec![eq("lang", json!("en fr"))],
            must_not: vec![],
        },
        Filter {
            must: vec![eq("year", json!(2021.5))],
            must_not: vec![],
        },
        Filter {
            must: vec![any("lang", vec![json!("fr"), json!("de")])],
            must_not: vec![],
        },
        Filter {
            must: vec![any("year", vec![json!(2022), json!(2023), json!("2021")])],
            must_not: vec![],
        },
        Filter {
            must: vec![any("lang", vec![json!(2021), json!(true)])],
            must_not: vec![],
        },
        Filter {
            must: vec![],
            must_not: vec![eq("lang", json!("en"))],
        },
        Filter {
            must: vec![],
            must_not: vec![any("team", vec![json!("search"), json!("ml")])],
        },
        Filter {
            must: vec![any("lang", vec![json!("en"), json!("fr")])],
            must_not: vec![eq("draft", json!(true)), eq("year", json!(2023))],
        },
        Filter {
            must: vec![eq("lang", json!("fr")), eq("year", json!(2021))],
            must_not: vec![],
        },
        Filter {
            must: vec![eq("missing", json!("x"))],
            must_not: vec![],
        },
        Filter {
            must: vec![],
            must_not: vec![eq("missing", json!("x"))],
        },
        Filter {
            must: vec![any("lang", vec![])],
            must_not: vec![],
        },
        Filter {
            must: vec![],
            must_not: vec![any("lang", vec![])],
        },
        Filter::default(),
    ];
    for filter in filters {
        let expected: BTreeSet<Uuid> = points
            .iter()
            .filter(|p| filter.matches(&p.metadata))
            .map(|p| p.chunk_id)
            .collect();
        let probes = [
            Probe::Dense(vec![1.0, 0.5, -0.25]),
            Probe::Lexical("shared words".into()),
        ];
        for probe in probes {
            let mut filtered = query(&name, probe.clone(), points.len() + 5);
            filtered.filter = Some(filter.clone());
            let got: BTreeSet<Uuid> = hit_ids(&search(&*index, &filtered).await)
                .into_iter()
                .collect();
            assert_eq!(got, expected, "filter {filter:?} with {probe:?}");
        }
    }
}

pub async fn with_vectors_returns_stored_vectors(index: Arc<dyn VectorIndex>) {
    let name = unique_name("vectors");
    ensure(&*index, &name, 4).await;
    let points: Vec<IndexPoint> = vectors(3, 6, 4)
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            // Vectors of various lengths: the index must not hand back a normalised copy.
            let scale = 0.5 + i as f32;
            let v = v.into_iter().map(|x| x * scale).collect();
            point(v, "vectors", json!({}))
        })
        .collect();
    index.upsert(&name, points.clone()).await.expect("upsert");
    for probe in [
        Probe::Dense(vec![0.1, 0.2, 0.3, 0.4]),
        Probe::Lexical("vectors".into()),
    ] {
        let mut with = query(&name, probe, 10);
        with.with_vectors = true;
        let hits = search(&*index, &with).await;
        assert_eq!(hits.len(), points.len());
        for hit in hits {
            let stored = points
                .iter()
                .find(|p| p.chunk_id == hit.chunk_id)
                .expect("a stored point");
            let vector = hit.vector.expect("vector requested");
            assert_eq!(vector.len(), stored.vector.len());
            for (got, want) in vector.iter().zip(&stored.vector) {
                assert!(
                    (got - want).abs() <= 1e-5 * want.abs().max(1.0),
                    "{vector:?} != {:?}",
                    stored.vector
                );
            }
        }
    }
}

pub async fn top_k_is_respected(index: Arc<dyn VectorIndex>) {
    let name = unique_name("topk");
    ensure(&*index, &name, 3).await;
    let points: Vec<IndexPoint> = vectors(5, 10, 3)
        .into_iter()
        .map(|v| point(v, "the same words everywhere", json!({})))
        .collect();
    index.upsert(&name, points).await.expect("upsert");
    for top_k in [0, 1, 3, 10, 50] {
        for probe in [
            Probe::Dense(vec![0.3, -0.2, 0.9]),
            Probe::Lexical("words".into()),
        ] {
            let hits = search(&*index, &query(&name, probe.clone(), top_k)).await;
            assert_eq!(hits.len(), top_k.min(10), "top_k {top_k} with {probe:?}");
        }
    }
}

pub async fn unknown_collections_are_reported(index: Arc<dyn VectorIndex>) {
    let name = unique_name("unknown");
    for probe in [
        Probe::Dense(vec![1.0, 0.0]),
        Probe::Lexical("anything".into()),
    ] {
        assert_unknown(index.search(&query(&name, probe, 5)).await, &name, "search");
    }
    assert_unknown(
        index
            .upsert(&name, vec![point(vec![1.0, 0.0], "x", json!({}))])
            .await,
        &name,
        "upsert",
    );
    assert_unknown(index.upsert(&name, vec![]).await, &name, "empty upsert");
    assert_unknown(index.point_ids(&name).await, &name, "point_ids");
}

pub async fn drop_collection_removes_it(index: Arc<dyn VectorIndex>) {
    let name = unique_name("drop");
    ensure(&*index, &name, 2).await;
    index
        .upsert(&name, vec![point(vec![1.0, 0.0], "doomed", json!({}))])
        .await
        .expect("upsert");
    assert!(index.drop_collection(&name).await.expect("drop"), "existed");
    assert!(!index.drop_collection(&name).await.expect("drop again"));
    assert_unknown(index.point_ids(&name).await, &name, "point_ids after drop");
    assert_unknown(
        index
            .search(&query(&name, Probe::Dense(vec![1.0, 0.0]), 5))
            .await,
        &name,
        "search after drop",
    );
    // The name is free again, for any model.
    index
        .ensure_collection(&spec(&name, "model-b", 3))
        .await
        .expect("recreate with another model");
    assert!(ids(&*index, &name).await.is_empty());
    assert!(index.drop_collection(&name).await.expect("clean up"));
    assert!(
        !index
            .drop_collection(&unique_name("never"))
            .await
            .expect("drop unknown")
    );
}

pub async fn collections_are_isolated(index: Arc<dyn VectorIndex>) {
    let a = unique_name("isolated-a");
    let b = unique_name("isolated-b");
    ensure(&*index, &a, 2).await;
    index
        .ensure_collection(&spec(&b, "model-b", 3))
        .await
        .expect("ensure b");
    let shared = Uuid::new_v4();
    let mut in_a = point(vec![1.0, 0.0], "apple orchard", json!({"c": "a"}));
    in_a.chunk_id = shared;
    let mut in_b = point(vec![0.0, 0.0, 1.0], "banana plantation", json!({"c": "b"}));
    in_b.chunk_id = shared;
    let only_a = point(vec![0.0, 1.0], "apple cider", json!({"c": "a"}));
    index
        .upsert(&a, vec![in_a.clone(), only_a.clone()])
        .await
        .expect("upsert a");
    index
        .upsert(&b, vec![in_b.clone()])
        .await
        .expect("upsert b");

    assert_eq!(
        ids(&*index, &a).await,
        BTreeSet::from([shared, only_a.chunk_id])
    );
    assert_eq!(ids(&*index, &b).await, BTreeSet::from([shared]));
    let apple = search(&*index, &query(&b, Probe::Lexical("apple".into()), 10)).await;
    assert!(apple.is_empty(), "b sees a's text: {apple:?}");
    let banana = search(&*index, &query(&b, Probe::Lexical("banana".into()), 10)).await;
    assert_eq!(hit_ids(&banana), [shared]);
    assert_eq!(banana[0].document_id, in_b.document_id);

    index.delete(&a, &[shared]).await.expect("delete in a");
    assert_eq!(ids(&*index, &b).await, BTreeSet::from([shared]));
    assert!(index.drop_collection(&a).await.expect("drop a"));
    assert_eq!(ids(&*index, &b).await, BTreeSet::from([shared]));
    let hits = search(&*index, &query(&b, Probe::Dense(vec![0.0, 0.0, 1.0]), 10)).await;
    assert_eq!(hit_ids(&hits), [shared]);
}
