//! The pgvector index against the real server: the shared index contract, and what is specific to
//! pgvector (iterative scans under selective filters, tsquery construction, jsonb filters on array
//! and null values, the registry migration, concurrent creation, error mapping).

use std::sync::Arc;

use cairn_core::VectorIndex;
use cairn_core::index::{
    Condition, Filter, IndexError, IndexPoint, IndexQuery, IndexSpec, Probe, ScoredPoint,
};
use cairn_postgres::testing::TestDatabase;
use cairn_postgres::{PgVectorIndex, PgVectorOptions};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

async fn fresh_index() -> (Arc<PgVectorIndex>, TestDatabase) {
    fresh_index_with(PgVectorOptions::default()).await
}

async fn contract_index() -> (Arc<dyn VectorIndex>, TestDatabase) {
    let (index, database) = fresh_index().await;
    (index, database)
}

cairn_index_contract::index_contract_tests!(contract_index);

async fn fresh_index_with(options: PgVectorOptions) -> (Arc<PgVectorIndex>, TestDatabase) {
    let database = TestDatabase::create().await;
    let pool = PgPool::connect(&database.url).await.expect("connect");
    let index = PgVectorIndex::with_options(pool, options);
    index.migrate().await.expect("migrate");
    (Arc::new(index), database)
}

fn spec(collection: &str, model: &str, dimension: usize) -> IndexSpec {
    IndexSpec {
        collection: collection.to_owned(),
        embedding_model: model.to_owned(),
        dimension,
    }
}

fn point(vector: Vec<f32>, text: &str, metadata: Value) -> IndexPoint {
    let Value::Object(metadata) = metadata else {
        panic!("metadata must be an object")
    };
    IndexPoint {
        chunk_id: Uuid::new_v4(),
        document_id: Uuid::new_v4(),
        vector,
        text: text.to_owned(),
        metadata,
    }
}

fn dense(collection: &str, vector: Vec<f32>, top_k: usize, filter: Option<Filter>) -> IndexQuery {
    IndexQuery {
        collection: collection.to_owned(),
        probe: Probe::Dense(vector),
        filter,
        top_k,
        with_vectors: false,
    }
}

fn lexical(collection: &str, text: &str, top_k: usize, filter: Option<Filter>) -> IndexQuery {
    IndexQuery {
        collection: collection.to_owned(),
        probe: Probe::Lexical(text.to_owned()),
        filter,
        top_k,
        with_vectors: false,
    }
}

fn ids(hits: &[ScoredPoint]) -> Vec<Uuid> {
    hits.iter().map(|h| h.chunk_id).collect()
}

fn sorted(mut ids: Vec<Uuid>) -> Vec<Uuid> {
    ids.sort();
    ids
}

/// A small deterministic generator (no `rand` in this crate).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn unit(&mut self) -> f32 {
        (self.next() % 10_000) as f32 / 10_000.0 - 0.5
    }

    fn vector(&mut self, dimension: usize) -> Vec<f32> {
        (0..dimension).map(|_| self.unit()).collect()
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (norm(a) * norm(b))
}

#[tokio::test]
async fn refused_inputs_are_explained() {
    let (index, _db) = fresh_index().await;
    index
        .ensure_collection(&spec("docs", "model-a", 4))
        .await
        .expect("create");
    let error = index
        .search(&dense("docs", vec![1.0; 3], 5, None))
        .await
        .expect_err("query of the wrong dimension");
    assert!(
        matches!(error, IndexError::Backend(ref m) if m.contains("3 dimensions") && m.contains("model-a")),
        "{error:?}"
    );
    let error = index
        .search(&dense("docs", vec![f32::NAN, 0.0, 0.0, 1.0], 5, None))
        .await
        .expect_err("NaN probe");
    assert!(matches!(error, IndexError::Backend(_)), "{error:?}");
    let error = index
        .upsert(
            "docs",
            vec![point(vec![1.0, f32::INFINITY, 0.0, 0.0], "x", json!({}))],
        )
        .await
        .expect_err("infinite component");
    assert!(matches!(error, IndexError::Backend(ref m) if m.contains("NaN or infinity")));
    for dimension in [0, 16_001] {
        let error = index
            .ensure_collection(&spec("wide", "m", dimension))
            .await
            .expect_err("outside pgvector's range");
        assert!(matches!(error, IndexError::Backend(_)), "{error:?}");
    }
    assert_eq!(
        index.build_dense_index("nope").await.err(),
        Some(IndexError::UnknownCollection("nope".into()))
    );
    assert_eq!(
        index.drop_dense_index("nope").await.err(),
        Some(IndexError::UnknownCollection("nope".into()))
    );
}

/// `INSERT … ON CONFLICT DO UPDATE` cannot touch a row twice in one statement: a batch naming a
/// chunk twice keeps the last, as sequential upserts would. Text with NUL, which PostgreSQL text
/// cannot hold, is still indexed.
#[tokio::test]
async fn a_batch_naming_a_chunk_twice_keeps_the_last() {
    let (index, _db) = fresh_index().await;
    index
        .ensure_collection(&spec("docs", "m", 2))
        .await
        .expect("ensure");
    let first = point(vec![1.0, 0.0], "stale apples", json!({"v": 1}));
    let last = IndexPoint {
        vector: vec![0.0, 1.0],
        text: "fresh\0cherries".into(),
        metadata: json!({"v": 2}).as_object().cloned().expect("object"),
        ..first.clone()
    };
    index
        .upsert("docs", vec![first, last.clone()])
        .await
        .expect("upsert");
    assert_eq!(
        index.point_ids("docs").await.expect("ids"),
        vec![last.chunk_id]
    );
    assert!(
        index
            .search(&lexical("docs", "apples", 5, None))
            .await
            .expect("search")
            .is_empty()
    );
    assert_eq!(
        ids(&index
            .search(&lexical("docs", "cherry", 5, None))
            .await
            .expect("search")),
        vec![last.chunk_id]
    );
}

#[tokio::test]
async fn dropping_a_collection_drops_its_table() {
    let (index, db) = fresh_index().await;
    index
        .ensure_collection(&spec("docs", "m", 2))
        .await
        .expect("ensure");
    let pool = PgPool::connect(&db.url).await.expect("connect");
    let tables = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'vectors\\_%'",
        )
        .fetch_one(&pool)
        .await
        .expect("count tables")
    };
    assert_eq!(tables().await, 1);
    assert!(index.drop_collection("docs").await.expect("drop"));
    assert_eq!(tables().await, 0, "the collection's table is dropped");
    pool.close().await;
}

#[tokio::test]
async fn lexical_queries_are_words_not_tsquery_syntax() {
    let (index, _db) = fresh_index().await;
    index
        .ensure_collection(&spec("docs", "m", 2))
        .await
        .expect("ensure");
    let both = point(
        vec![1.0, 0.0],
        "Configuring the connection pool for PostgreSQL replicas.",
        json!({}),
    );
    let one = point(
        vec![1.0, 0.0],
        "A swimming pool is closed on Mondays.",
        json!({}),
    );
    let neither = point(vec![1.0, 0.0], "Bananas are yellow.", json!({}));
    index
        .upsert("docs", vec![both.clone(), one.clone(), neither.clone()])
        .await
        .expect("upsert");

    // A question matches chunks sharing any of its content words (stemmed), best overlap first.
    let hits = index
        .search(&lexical(
            "docs",
            "How do I configure the pool of PostgreSQL connections?",
            10,
            None,
        ))
        .await
        .expect("search");
    assert_eq!(ids(&hits), vec![both.chunk_id, one.chunk_id]);
    assert!(hits[0].score > hits[1].score && hits[1].score > 0.0);

    for nothing in ["   ", "the and of", "is it?"] {
        assert!(
            index
                .search(&lexical("docs", nothing, 10, None))
                .await
                .expect("no lexemes is no error")
                .is_empty(),
            "{nothing:?}"
        );
    }
    // tsquery operators, quotes and backslashes in the text are only text; lexemes such as URLs
    // may contain `&` or `'` themselves.
    for odd in [
        "'pool' | bananas:*",
        "o'reilly\\ http://x.com/a'b&c=|d pool",
        "(((",
        "nul\0pool",
    ] {
        index
            .search(&lexical("docs", odd, 10, None))
            .await
            .unwrap_or_else(|e| panic!("{odd:?}: {e}"));
    }
    let hits = index
        .search(&lexical("docs", "pool & !bananas", 10, None))
        .await
        .expect("search");
    assert_eq!(hits.len(), 3, "pool OR banana, no negation: {hits:?}");
}

fn metadata_fixture() -> Vec<Value> {
    vec![
        json!({"lang": "en", "tier": 1, "public": true}),
        json!({"lang": "en", "tier": 2, "public": false}),
        json!({"lang": "de", "tier": 1}),
        json!({"lang": "fr", "tier": 3, "public": true}),
        json!({"tier": 2}),
        json!({}),
        json!({"lang": "en", "tags": ["a", "b"]}),
        json!({"lang": ["en"], "tier": "1"}),
        json!({"public": null, "tags": {"a": 1}}),
    ]
}

fn filters() -> Vec<Filter> {
    let eq = |f: &str, v: Value| Condition::Equals {
        field: f.into(),
        value: v,
    };
    let any = |f: &str, v: Vec<Value>| Condition::AnyOf {
        field: f.into(),
        values: v,
    };
    let filter = |must: Vec<Condition>, must_not: Vec<Condition>| Filter { must, must_not };
    vec![
        Filter::default(),
        filter(vec![eq("lang", json!("en"))], vec![]),
        filter(vec![eq("tier", json!(1))], vec![]),
        filter(vec![eq("tier", json!("1"))], vec![]),
        filter(vec![eq("public", json!(true))], vec![]),
        filter(vec![eq("missing", json!("x"))], vec![]),
        filter(vec![], vec![eq("lang", json!("en"))]),
        filter(vec![], vec![eq("missing", json!("x"))]),
        filter(vec![any("lang", vec![json!("de"), json!("fr")])], vec![]),
        filter(vec![any("lang", vec![])], vec![]),
        filter(vec![], vec![any("lang", vec![])]),
        filter(vec![], vec![any("tier", vec![json!(1), json!(2)])]),
        filter(
            vec![
                eq("lang", json!("en")),
                any("tier", vec![json!(1), json!(3)]),
            ],
            vec![eq("public", json!(false))],
        ),
        filter(vec![eq("tags", json!("a"))], vec![]),
        filter(vec![eq("tags", json!(["a"]))], vec![]),
        filter(vec![eq("tags", json!(["a", "b"]))], vec![]),
        filter(vec![eq("lang", json!(["en"]))], vec![]),
        filter(vec![any("lang", vec![json!("en")])], vec![]),
        filter(vec![eq("public", json!(null))], vec![]),
        filter(vec![], vec![eq("public", json!(null))]),
        filter(vec![eq("tags", json!({}))], vec![]),
        filter(vec![eq("tags", json!({"a": 1}))], vec![]),
    ]
}

/// The contract's metadata is flat scalars; jsonb containment alone would also let `{"f": ["a"]}`
/// match `["a", "b"]` and `{}` match any object, so the equality check keeps filters exact.
#[tokio::test]
async fn filters_are_exact_for_array_object_and_null_values() {
    let (index, _db) = fresh_index().await;
    index
        .ensure_collection(&spec("docs", "m", 3))
        .await
        .expect("ensure");
    let mut rng = Lcg(7);
    let points: Vec<IndexPoint> = metadata_fixture()
        .into_iter()
        .map(|m| point(rng.vector(3), "shared words here", m))
        .collect();
    index.upsert("docs", points.clone()).await.expect("upsert");
    for filter in filters() {
        let expected = sorted(
            points
                .iter()
                .filter(|p| filter.matches(&p.metadata))
                .map(|p| p.chunk_id)
                .collect(),
        );
        let got = index
            .search(&dense(
                "docs",
                vec![1.0, 0.5, 0.2],
                100,
                Some(filter.clone()),
            ))
            .await
            .expect("dense");
        assert_eq!(sorted(ids(&got)), expected, "dense, {filter:?}");
        let got = index
            .search(&lexical("docs", "words", 100, Some(filter.clone())))
            .await
            .expect("lexical");
        assert_eq!(sorted(ids(&got)), expected, "lexical, {filter:?}");
    }
}

/// A filter that keeps about 1% of the rows cannot use the metadata index (it is a negation), so
/// the planner walks the HNSW graph and filters; without iterative scans pgvector would stop after
/// `ef_search` candidates and return almost nothing.
#[tokio::test]
async fn selective_filters_still_return_top_k_through_iterative_scans() {
    let (index, _db) = fresh_index_with(PgVectorOptions {
        ef_search: 40,
        ..PgVectorOptions::default()
    })
    .await;
    let dimension = 16;
    index
        .ensure_collection(&spec("docs", "m", dimension))
        .await
        .expect("ensure");
    index
        .drop_dense_index("docs")
        .await
        .expect("drop the HNSW index for the bulk load");
    let mut rng = Lcg(42);
    let points: Vec<IndexPoint> = (0..3_000)
        .map(|i| {
            point(
                rng.vector(dimension),
                "text",
                json!({"bucket": i % 100, "n": i}),
            )
        })
        .collect();
    index
        .upsert("docs", points.clone())
        .await
        .expect("upsert in several batches");
    assert_eq!(index.point_ids("docs").await.expect("ids").len(), 3_000);
    index.build_dense_index("docs").await.expect("build HNSW");
    index
        .build_dense_index("docs")
        .await
        .expect("building again is a no-op");

    let filter = Filter {
        must: vec![],
        must_not: vec![Condition::AnyOf {
            field: "bucket".into(),
            values: (0..99).map(|b| json!(b)).collect(),
        }],
    };
    let probe = rng.vector(dimension);
    let hits = index
        .search(&dense("docs", probe.clone(), 10, Some(filter.clone())))
        .await
        .expect("search");
    assert_eq!(hits.len(), 10, "{hits:?}");
    assert!(
        hits.windows(2).all(|w| w[0].score >= w[1].score),
        "best first"
    );
    let mut exact: Vec<(f32, Uuid)> = points
        .iter()
        .filter(|p| filter.matches(&p.metadata))
        .map(|p| (cosine(&p.vector, &probe), p.chunk_id))
        .collect();
    assert_eq!(exact.len(), 30);
    exact.sort_by(|a, b| b.0.total_cmp(&a.0));
    let allowed: Vec<Uuid> = exact.iter().map(|(_, id)| *id).collect();
    assert!(hits.iter().all(|h| allowed.contains(&h.chunk_id)));
    let top: Vec<Uuid> = exact.iter().take(10).map(|(_, id)| *id).collect();
    let recall = hits.iter().filter(|h| top.contains(&h.chunk_id)).count();
    assert!(recall >= 8, "recall {recall}/10 of the exact top 10");

    // Without a filter and with top_k above ef_search, the scan also goes on.
    let hits = index
        .search(&dense("docs", probe, 100, None))
        .await
        .expect("search");
    assert_eq!(hits.len(), 100);
}

#[tokio::test]
async fn collections_wider_than_hnsw_allows_use_exact_scans() {
    let (index, _db) = fresh_index().await;
    let dimension = 2_001;
    index
        .ensure_collection(&spec("wide", "big-model", dimension))
        .await
        .expect("ensure");
    let mut rng = Lcg(3);
    let points: Vec<IndexPoint> = (0..5)
        .map(|_| point(rng.vector(dimension), "wide", json!({})))
        .collect();
    index.upsert("wide", points.clone()).await.expect("upsert");
    index.build_dense_index("wide").await.expect("no-op");
    let hits = index
        .search(&dense("wide", points[2].vector.clone(), 1, None))
        .await
        .expect("search");
    assert_eq!(ids(&hits), vec![points[2].chunk_id]);
    assert!((hits[0].score - 1.0).abs() < 1e-5);
}

#[tokio::test]
async fn migrations_are_idempotent_and_shared_with_the_catalog() {
    let (index, db) = fresh_index().await;
    index.migrate().await.expect("second migration is a no-op");
    let catalog = cairn_postgres::PostgresCatalog::connect(
        &db.url,
        &cairn_postgres::PostgresOptions::default(),
    )
    .await
    .expect("connect");
    catalog
        .migrate()
        .await
        .expect("the catalog sees the same migrations applied");
    index
        .ensure_collection(&spec("docs", "m", 3))
        .await
        .expect("ensure");
    index.ping().await.expect("ping");
    catalog.close().await;
}

#[tokio::test]
async fn concurrent_ensure_collection_creates_one_table() {
    let (index, db) = fresh_index().await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        // Separate pools, as separate replicas would have.
        let pool = PgPool::connect(&db.url).await.expect("connect");
        let replica = PgVectorIndex::new(pool);
        let model = if i == 7 { "other" } else { "m" };
        tasks.push(tokio::spawn(async move {
            replica.ensure_collection(&spec("docs", model, 8)).await
        }));
    }
    let mut created = 0;
    let mut mismatched = 0;
    for task in tasks {
        match task.await.expect("join") {
            Ok(()) => created += 1,
            Err(IndexError::ModelMismatch { .. }) => mismatched += 1,
            Err(e) => panic!("{e}"),
        }
    }
    // Whichever replica wins, the others agree with it or are refused; never two tables.
    assert!(
        (created, mismatched) == (7, 1) || (created, mismatched) == (1, 7),
        "{created} ok, {mismatched} mismatched"
    );
    let pool = PgPool::connect(&db.url).await.expect("connect");
    let (registered, tables): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM vector_collections), \
                (SELECT count(*) FROM pg_tables WHERE tablename LIKE 'vectors\\_%')",
    )
    .fetch_one(&pool)
    .await
    .expect("count");
    assert_eq!((registered, tables), (1, 1));
    pool.close().await;
    index.ping().await.expect("ping");
}

#[tokio::test]
async fn missing_migrations_and_unreachable_servers_are_explained() {
    let database = TestDatabase::create().await;
    let pool = PgPool::connect(&database.url).await.expect("connect");
    let index = PgVectorIndex::new(pool);
    let error = index.ping().await.expect_err("not migrated");
    assert!(
        matches!(error, IndexError::Backend(ref m) if m.contains("cairn migrate")),
        "{error:?}"
    );

    let pool = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(std::time::Duration::from_secs(1))
        .connect_lazy("postgres://postgres@127.0.0.1:1/none")
        .expect("lazy pool");
    let error = PgVectorIndex::new(pool)
        .ping()
        .await
        .expect_err("unreachable");
    assert!(matches!(error, IndexError::Unavailable(_)), "{error:?}");
}
