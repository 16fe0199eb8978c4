//! The index benchmark every backend runs the same way: clustered unit vectors (as real
//! embeddings are), a bulk load, an index build, then query latency (p50/p99) and recall@k
//! against exact search. Used by `cairn bench index` and the backends' `cargo bench` targets.

use std::future::Future;
use std::time::{Duration, Instant};

use cairn_core::index::{IndexError, IndexPoint, IndexQuery, IndexSpec, Probe, VectorIndex};
use uuid::Uuid;

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Workload {
    pub points: usize,
    pub dimension: usize,
    pub queries: usize,
    pub k: usize,
}

impl Default for Workload {
    fn default() -> Self {
        Workload {
            points: 100_000,
            dimension: 384,
            queries: 200,
            k: 10,
        }
    }
}

/// The figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub load: Duration,
    pub build: Duration,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub recall: f64,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "load {:.1} s, index build {:.1} s, query p50 {:.2} ms, p99 {:.2} ms, recall {:.3}",
            self.load.as_secs_f64(),
            self.build.as_secs_f64(),
            self.p50_ms,
            self.p99_ms,
            self.recall
        )
    }
}

/// A fixed-seed generator, so every run measures the same data.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 11
    }
    fn normal(&mut self) -> f32 {
        let u = ((self.next() as f64 / (1u64 << 53) as f64) as f32).max(1e-7);
        let v = (self.next() as f64 / (1u64 << 53) as f64) as f32;
        (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
    }
}

fn normalized(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

/// Points and queries around 64 centroids.
pub fn data(workload: &Workload) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    let mut rng = Lcg(7);
    let d = workload.dimension;
    let centroids: Vec<Vec<f32>> = (0..64)
        .map(|_| normalized((0..d).map(|_| rng.normal()).collect()))
        .collect();
    let mut sample = |count: usize| -> Vec<Vec<f32>> {
        (0..count)
            .map(|_| {
                let centre = &centroids[(rng.next() % 64) as usize];
                normalized(
                    centre
                        .iter()
                        .map(|c| c + 0.6 * rng.normal() / (d as f32).sqrt())
                        .collect(),
                )
            })
            .collect()
    };
    let points = sample(workload.points);
    let queries = sample(workload.queries);
    (points, queries)
}

fn exact_top(points: &[Vec<f32>], query: &[f32], k: usize) -> Vec<usize> {
    let mut scored: Vec<(f32, usize)> = points
        .iter()
        .enumerate()
        .map(|(i, p)| (p.iter().zip(query).map(|(a, b)| a * b).sum(), i))
        .collect();
    let k = k.min(scored.len());
    if k < scored.len() {
        scored.select_nth_unstable_by(k, |a, b| b.0.total_cmp(&a.0));
    }
    scored.truncate(k);
    scored.into_iter().map(|(_, i)| i).collect()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(rank).copied().unwrap_or(f64::NAN)
}

/// Loads the workload into a fresh collection, measures the queries, and drops the collection.
/// `before_load` and `after_load` get the collection's name: backends that build their index
/// faster after a bulk load drop it in the first and build it in the second (timed as the build).
pub async fn run<B, BF, A, AF>(
    index: &dyn VectorIndex,
    workload: &Workload,
    before_load: B,
    after_load: A,
) -> Result<Report, IndexError>
where
    B: FnOnce(String) -> BF,
    BF: Future<Output = Result<(), IndexError>>,
    A: FnOnce(String) -> AF,
    AF: Future<Output = Result<(), IndexError>>,
{
    let (points, queries) = data(workload);
    let ids: Vec<Uuid> = (0..points.len())
        .map(|i| Uuid::from_u128(i as u128 + 1))
        .collect();
    let collection = format!("bench-{}", Uuid::new_v4().simple());
    index
        .ensure_collection(&IndexSpec {
            collection: collection.clone(),
            embedding_model: "bench".into(),
            dimension: workload.dimension,
        })
        .await?;
    before_load(collection.clone()).await?;
    let started = Instant::now();
    for (batch, ids) in points.chunks(1000).zip(ids.chunks(1000)) {
        let batch: Vec<IndexPoint> = batch
            .iter()
            .zip(ids)
            .map(|(vector, id)| IndexPoint {
                chunk_id: *id,
                document_id: *id,
                vector: vector.clone(),
                text: String::new(),
                metadata: serde_json::Map::new(),
            })
            .collect();
        index.upsert(&collection, batch).await?;
    }
    let load = started.elapsed();
    let started = Instant::now();
    after_load(collection.clone()).await?;
    let build = started.elapsed();
    let mut latencies = Vec::with_capacity(queries.len());
    let mut found = 0usize;
    for query in &queries {
        let started = Instant::now();
        let hits = index
            .search(&IndexQuery {
                collection: collection.clone(),
                probe: Probe::Dense(query.clone()),
                filter: None,
                top_k: workload.k,
                with_vectors: false,
            })
            .await?;
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
        let truth = exact_top(&points, query, workload.k);
        found += hits
            .iter()
            .filter(|h| truth.iter().any(|&i| ids[i] == h.chunk_id))
            .count();
    }
    index.drop_collection(&collection).await?;
    latencies.sort_by(f64::total_cmp);
    Ok(Report {
        load,
        build,
        p50_ms: percentile(&latencies, 0.5),
        p99_ms: percentile(&latencies, 0.99),
        recall: found as f64 / (queries.len() * workload.k).max(1) as f64,
    })
}
