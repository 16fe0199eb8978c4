//! qdrant-edge shared between processes. `flock`s belong to an open file description, so two
//! `EdgeIndex` instances on one directory exclude each other exactly as two processes do; one test
//! also runs a real second process (this test binary re-running that same test in its child mode).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use cairn_core::index::{IndexError, IndexPoint, IndexQuery, IndexSpec, Probe, VectorIndex};
use cairn_qdrant::EdgeIndex;
use uuid::Uuid;

/// Set in the child process of [`a_second_process_writes_while_this_one_holds_the_collection`] (the
/// same test, re-run by it in a second process): the index directory the child writes to.
const CHILD_ROOT: &str = "CAIRN_QDRANT_TEST_CHILD_ROOT";
/// Ids the child process writes: `CHILD_BASE + i` for `i` in `0..CHILD_POINTS`.
const CHILD_BASE: u128 = 1 << 64;
const CHILD_POINTS: u128 = 20;
/// What the child prints once its writes are done.
const CHILD_DONE: &str = "child: wrote its points";
/// The id of the point the parent writes before starting the child.
const PARENT_FIRST: u128 = 7;

fn spec(model: &str) -> IndexSpec {
    IndexSpec {
        collection: "kb".into(),
        embedding_model: model.into(),
        dimension: 3,
    }
}

fn point(id: u128, vector: [f32; 3]) -> IndexPoint {
    IndexPoint {
        chunk_id: Uuid::from_u128(id),
        document_id: Uuid::from_u128(id),
        vector: vector.to_vec(),
        text: format!("chunk {id}"),
        metadata: Default::default(),
    }
}

fn dense(vector: [f32; 3]) -> IndexQuery {
    IndexQuery {
        collection: "kb".into(),
        probe: Probe::Dense(vector.to_vec()),
        filter: None,
        top_k: 10,
        with_vectors: false,
    }
}

async fn ids(index: &EdgeIndex) -> BTreeSet<Uuid> {
    index
        .point_ids("kb")
        .await
        .expect("point_ids")
        .into_iter()
        .collect()
}

fn uuids(ids: impl IntoIterator<Item = u128>) -> BTreeSet<Uuid> {
    ids.into_iter().map(Uuid::from_u128).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_instance_sees_writes_deletes_drops_and_creations() {
    let dir = tempfile::tempdir().expect("temp dir");
    let a = EdgeIndex::open(dir.path()).expect("open a");
    let b = EdgeIndex::open(dir.path()).expect("open b");

    a.ensure_collection(&spec("m")).await.expect("ensure a");
    a.upsert("kb", vec![point(1, [1.0, 0.0, 0.0])])
        .await
        .expect("upsert a");
    // A now has the shard open.
    let hits = a.search(&dense([0.0, 1.0, 0.0])).await.expect("search a");
    assert_eq!(hits.len(), 1);

    // B writes: A's next calls see it.
    b.ensure_collection(&spec("m")).await.expect("ensure b");
    b.upsert("kb", vec![point(2, [0.0, 1.0, 0.0])])
        .await
        .expect("upsert b");
    let hits = a.search(&dense([0.0, 1.0, 0.0])).await.expect("search a");
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[0].chunk_id, Uuid::from_u128(2));
    assert_eq!(ids(&a).await, uuids([1, 2]));

    // B deletes: A sees the deletion.
    b.delete("kb", &[Uuid::from_u128(1)])
        .await
        .expect("delete b");
    assert_eq!(ids(&a).await, uuids([2]));
    let hits = a.search(&dense([1.0, 0.0, 0.0])).await.expect("search a");
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].chunk_id, Uuid::from_u128(2));

    // B optimises: A still reads the same points.
    b.optimize("kb").await.expect("optimize b");
    assert_eq!(ids(&a).await, uuids([2]));

    // B drops the collection: A finds it gone.
    assert!(b.drop_collection("kb").await.expect("drop b"));
    assert!(matches!(
        a.point_ids("kb").await,
        Err(IndexError::UnknownCollection(_))
    ));
    assert!(matches!(
        a.search(&dense([1.0, 0.0, 0.0])).await,
        Err(IndexError::UnknownCollection(_))
    ));
    assert!(matches!(
        a.upsert("kb", vec![point(3, [1.0, 0.0, 0.0])]).await,
        Err(IndexError::UnknownCollection(_))
    ));
    assert!(!a.drop_collection("kb").await.expect("drop a"));

    // A creates it again, with another model: B finds it, with its new spec.
    a.ensure_collection(&spec("other"))
        .await
        .expect("recreate a");
    a.upsert("kb", vec![point(3, [0.0, 0.0, 1.0])])
        .await
        .expect("upsert a");
    assert_eq!(ids(&b).await, uuids([3]));
    assert!(matches!(
        b.ensure_collection(&spec("m")).await,
        Err(IndexError::ModelMismatch { .. })
    ));
    b.ensure_collection(&spec("other"))
        .await
        .expect("same spec");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_from_two_instances_lose_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let a = EdgeIndex::open(dir.path()).expect("open a");
    let b = EdgeIndex::open(dir.path()).expect("open b");
    a.ensure_collection(&spec("m")).await.expect("ensure");

    let writer = |index: EdgeIndex, base: u128| {
        tokio::spawn(async move {
            for i in 0..50 {
                index
                    .upsert("kb", vec![point(base + i, [1.0, i as f32, 0.0])])
                    .await
                    .expect("upsert");
                if i % 10 == 0 {
                    index.search(&dense([1.0, 0.0, 0.0])).await.expect("search");
                }
            }
        })
    };
    let from_a = writer(a.clone(), 1_000);
    let from_b = writer(b.clone(), 2_000);
    from_a.await.expect("writer a");
    from_b.await.expect("writer b");

    let expected = uuids((1_000..1_050).chain(2_000..2_050));
    assert_eq!(ids(&a).await, expected);
    assert_eq!(ids(&b).await, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_of_one_instance_share_the_collection_while_another_waits() {
    let dir = tempfile::tempdir().expect("temp dir");
    let a = EdgeIndex::open(dir.path()).expect("open a");
    let b = EdgeIndex::open(dir.path()).expect("open b");
    a.ensure_collection(&spec("m")).await.expect("ensure");
    a.upsert("kb", vec![point(1, [1.0, 0.0, 0.0])])
        .await
        .expect("upsert");

    // Many overlapping searches on A while B writes: all succeed, and B's write lands.
    let searches: Vec<_> = (0..16)
        .map(|_| {
            let a = a.clone();
            tokio::spawn(async move { a.search(&dense([1.0, 0.0, 0.0])).await })
        })
        .collect();
    b.upsert("kb", vec![point(2, [0.0, 1.0, 0.0])])
        .await
        .expect("upsert b");
    for search in searches {
        let hits = search.await.expect("task").expect("search");
        assert!(!hits.is_empty());
    }
    assert_eq!(ids(&a).await, uuids([1, 2]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_writes_while_this_one_holds_the_collection() {
    if let Some(root) = std::env::var_os(CHILD_ROOT) {
        child_writes(Path::new(&root)).await;
        println!("{CHILD_DONE}");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let index = EdgeIndex::open(dir.path()).expect("open");
    index.ensure_collection(&spec("m")).await.expect("ensure");
    index
        .upsert("kb", vec![point(PARENT_FIRST, [1.0, 0.0, 0.0])])
        .await
        .expect("upsert");
    // This process now holds the collection, shard open.
    index.search(&dense([1.0, 0.0, 0.0])).await.expect("search");

    let exe = std::env::current_exe().expect("test binary");
    let root = dir.path().to_owned();
    let child = tokio::task::spawn_blocking(move || {
        Command::new(exe)
            .args([
                "--exact",
                "multi_process::a_second_process_writes_while_this_one_holds_the_collection",
                "--test-threads=1",
                "--nocapture",
            ])
            .env(CHILD_ROOT, &root)
            .output()
    });
    // Meanwhile, this process keeps writing.
    for i in 0..CHILD_POINTS {
        index
            .upsert("kb", vec![point(100 + i, [0.0, 1.0, i as f32])])
            .await
            .expect("upsert while the child runs");
    }
    let output = child.await.expect("task").expect("run the child process");
    assert!(
        output.status.success(),
        "child failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(CHILD_DONE) && stdout.contains("1 passed"),
        "the child did not write: {stdout}"
    );

    let expected = uuids(
        std::iter::once(PARENT_FIRST)
            .chain(100..100 + CHILD_POINTS)
            .chain(CHILD_BASE..CHILD_BASE + CHILD_POINTS),
    );
    assert_eq!(ids(&index).await, expected);
}

async fn child_writes(root: &Path) {
    let index = EdgeIndex::open(root).expect("open in the child");
    // The parent's first write is visible here.
    assert!(ids(&index).await.contains(&Uuid::from_u128(PARENT_FIRST)));
    for i in 0..CHILD_POINTS {
        index
            .upsert(
                "kb",
                vec![point(CHILD_BASE + i, [0.0, 0.0, 1.0 + i as f32])],
            )
            .await
            .expect("upsert in the child");
    }
    let seen = ids(&index).await;
    assert!(uuids(CHILD_BASE..CHILD_BASE + CHILD_POINTS).is_subset(&seen));
}
