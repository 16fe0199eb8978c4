//! qdrant-edge: the contract on a temporary directory, and data surviving a reopen.

use std::sync::Arc;

use cairn_core::index::{
    Condition, Filter, IndexError, IndexPoint, IndexQuery, IndexSpec, Probe, VectorIndex,
};
use cairn_qdrant::{EdgeIndex, EdgeOptions};
use serde_json::json;
use tempfile::TempDir;
use uuid::Uuid;

async fn fresh_index() -> (Arc<dyn VectorIndex>, TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let index = EdgeIndex::open(dir.path().join("index")).expect("open");
    (Arc::new(index), dir)
}

cairn_index_contract::index_contract_tests!(fresh_index);

fn spec(model: &str, dimension: usize) -> IndexSpec {
    IndexSpec {
        collection: "kb".into(),
        embedding_model: model.into(),
        dimension,
    }
}

fn point(vector: Vec<f32>, text: &str, lang: &str) -> IndexPoint {
    IndexPoint {
        chunk_id: Uuid::new_v4(),
        document_id: Uuid::new_v4(),
        vector,
        text: text.into(),
        metadata: json!({ "lang": lang })
            .as_object()
            .cloned()
            .expect("object"),
    }
}

fn query(probe: Probe) -> IndexQuery {
    IndexQuery {
        collection: "kb".into(),
        probe,
        filter: None,
        top_k: 10,
        with_vectors: true,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_and_spec_survive_reopening() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("index");
    let points = vec![
        point(vec![1.0, 0.0, 0.0], "granite quarry", "en"),
        point(vec![0.0, 2.0, 0.0], "limestone cave", "fr"),
        point(vec![0.0, 0.0, 1.0], "basalt columns", "en"),
    ];
    {
        let index = EdgeIndex::open(&root).expect("open");
        index
            .ensure_collection(&spec("m", 3))
            .await
            .expect("ensure");
        index.upsert("kb", points.clone()).await.expect("upsert");
        index
            .delete("kb", &[points[2].chunk_id])
            .await
            .expect("delete");
    }

    let index = EdgeIndex::open(&root).expect("reopen");
    let mut ids = index.point_ids("kb").await.expect("point_ids");
    ids.sort();
    let mut expected = vec![points[0].chunk_id, points[1].chunk_id];
    expected.sort();
    assert_eq!(ids, expected);

    let dense = index
        .search(&query(Probe::Dense(vec![0.0, 1.0, 0.0])))
        .await
        .expect("dense");
    assert_eq!(dense[0].chunk_id, points[1].chunk_id);
    assert_eq!(dense[0].document_id, points[1].document_id);
    assert_eq!(dense[0].vector.as_deref(), Some(&[0.0, 2.0, 0.0][..]));

    let lexical = index
        .search(&query(Probe::Lexical("granite".into())))
        .await
        .expect("lexical");
    assert_eq!(lexical.len(), 1);
    assert_eq!(lexical[0].chunk_id, points[0].chunk_id);

    let mut filtered = query(Probe::Dense(vec![1.0, 1.0, 1.0]));
    filtered.filter = Some(Filter {
        must: vec![Condition::Equals {
            field: "lang".into(),
            value: json!("fr"),
        }],
        must_not: vec![],
    });
    let hits = index.search(&filtered).await.expect("filtered");
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].chunk_id, points[1].chunk_id);

    // The spec was persisted: a new process still refuses another model.
    assert!(matches!(
        index.ensure_collection(&spec("other", 3)).await,
        Err(IndexError::ModelMismatch { .. })
    ));
    index
        .ensure_collection(&spec("m", 3))
        .await
        .expect("same spec");

    // Dropping removes the files: a reopened index does not see the collection.
    assert!(index.drop_collection("kb").await.expect("drop"));
    drop(index);
    let index = EdgeIndex::open(&root).expect("reopen after drop");
    assert!(matches!(
        index.point_ids("kb").await,
        Err(IndexError::UnknownCollection(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn optimisation_builds_an_index_and_search_stays_right() {
    let dir = tempfile::tempdir().expect("temp dir");
    // A 1 KB indexing threshold makes 300 vectors of 16 dimensions (19 KB) worth an HNSW graph.
    let options = EdgeOptions {
        optimize_after_writes: false,
        indexing_threshold_kb: Some(1),
    };
    let index = EdgeIndex::open_with(dir.path(), options).expect("open");
    index
        .ensure_collection(&spec("m", 16))
        .await
        .expect("ensure");
    let mut state: u64 = 42;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let points: Vec<IndexPoint> = (0..300)
        .map(|i| {
            let vector = (0..16).map(|_| next()).collect();
            point(
                vector,
                &format!("chunk number {i}"),
                if i % 2 == 0 { "en" } else { "fr" },
            )
        })
        .collect();
    index.upsert("kb", points.clone()).await.expect("upsert");
    assert!(index.optimize("kb").await.expect("optimize"), "indexed");
    assert!(!index.optimize("kb").await.expect("optimize again"), "idle");

    for target in [&points[7], &points[150], &points[299]] {
        let hits = index
            .search(&query(Probe::Dense(target.vector.clone())))
            .await
            .expect("search");
        assert_eq!(hits[0].chunk_id, target.chunk_id);
        assert!((hits[0].score - 1.0).abs() < 1e-4);
    }
    let ids = index.point_ids("kb").await.expect("point_ids");
    assert_eq!(ids.len(), 300);

    // Survives a reopen with the optimised segments.
    drop(index);
    let index = EdgeIndex::open(dir.path()).expect("reopen");
    let hits = index
        .search(&query(Probe::Dense(points[42].vector.clone())))
        .await
        .expect("search after reopen");
    assert_eq!(hits[0].chunk_id, points[42].chunk_id);
}

#[tokio::test]
async fn invalid_names_are_refused_or_unknown() {
    let dir = tempfile::tempdir().expect("temp dir");
    let index = EdgeIndex::open(dir.path()).expect("open");
    let mut bad = spec("m", 3);
    bad.collection = "../escape".into();
    let err = index.ensure_collection(&bad).await.expect_err("refused");
    assert!(err.to_string().contains("invalid collection name"), "{err}");
    assert!(matches!(
        index.point_ids("../escape").await,
        Err(IndexError::UnknownCollection(_))
    ));
    assert!(!index.drop_collection("../escape").await.expect("drop"));
}
