//! [`EdgeIndex`]: the embedded index, qdrant-edge shards in this process.

mod collection;
mod convert;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use cairn_core::index::{
    IndexError, IndexPoint, IndexQuery, IndexSpec, Probe, ScoredPoint, VectorIndex,
};
use qdrant_edge::{
    EdgeShard, NamedQuery, PointId, PointInsertOperations, PointOperations, QueryEnum,
    QueryRequest, ScoringQuery, ScrollRequest, UpdateOperation, VectorInternal,
    WithPayloadInterface, WithVector,
};
use uuid::Uuid;

use self::collection::{EdgeCollection, Registry, edge_error};
use crate::filter::TermFilter;
use crate::layout::{DENSE_VECTOR, HIT_PAYLOAD_KEYS, LEXICAL_VECTOR};
use crate::lexical::Lexical;
use crate::spec;

/// Points read per page when listing a collection's ids.
const SCROLL_PAGE: usize = 1_000;

/// Options of the embedded index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeOptions {
    /// Run qdrant-edge's optimisers after every upsert and delete (default `true`). qdrant-edge
    /// never optimises on its own: without this, or explicit [`EdgeIndex::optimize`] calls, a
    /// collection stays one unindexed segment searched by full scan, and deleted points are never
    /// vacuumed. Optimising is cheap when nothing is due; when a segment passes the indexing
    /// threshold, the write that crossed it waits for the HNSW graph to be built.
    pub optimize_after_writes: bool,
    /// Size in kilobytes of vectors above which a segment gets an HNSW index; `None` keeps
    /// qdrant-edge's default (10,000 KB, about 6,500 vectors of 384 dimensions). Below it, dense
    /// search is an exact scan.
    pub indexing_threshold_kb: Option<usize>,
}

impl Default for EdgeOptions {
    fn default() -> Self {
        Self {
            optimize_after_writes: true,
            indexing_threshold_kb: None,
        }
    }
}

/// The embedded vector index: one qdrant-edge shard per collection under a root directory.
///
/// Shards are opened on first use and stay open; every call runs on tokio's blocking pool. Data is
/// flushed to disk after each write, so it survives the process (qdrant-edge 0.7 does not replay
/// its write-ahead log on open, so an unflushed write would be lost).
#[derive(Debug, Clone)]
pub struct EdgeIndex {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    registry: Registry,
    lexical: Lexical,
}

impl EdgeIndex {
    /// Opens (creating it if needed) the index directory `root` with default options.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, IndexError> {
        Self::open_with(root, EdgeOptions::default())
    }

    /// Opens the index directory `root` with `options`.
    pub fn open_with(root: impl Into<PathBuf>, options: EdgeOptions) -> Result<Self, IndexError> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(|err| {
            IndexError::Unavailable(format!(
                "cannot create the embedded index directory `{}`: {err}; check the data directory setting and its permissions",
                root.display()
            ))
        })?;
        Ok(Self {
            inner: Arc::new(Inner {
                registry: Registry::new(root, options),
                lexical: Lexical::new()?,
            }),
        })
    }

    /// The index directory.
    pub fn root(&self) -> &Path {
        self.inner.registry.root()
    }

    /// Runs qdrant-edge's optimisers on the collection until nothing is left to do (HNSW indexing
    /// of large segments, merging small ones, vacuuming deleted points); whether anything changed.
    pub async fn optimize(&self, collection: &str) -> Result<bool, IndexError> {
        let inner = self.inner.clone();
        let collection = collection.to_owned();
        blocking(move || {
            let open = inner.registry.get(&collection)?;
            open.write(|shard| {
                let changed = shard
                    .optimize()
                    .map_err(|err| edge_error(&collection, "optimise", err))?;
                shard.flush();
                Ok(changed)
            })
        })
        .await
    }
}

/// Runs a synchronous qdrant-edge call on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, IndexError> + Send + 'static,
) -> Result<T, IndexError> {
    tokio::task::spawn_blocking(f).await.map_err(|err| {
        IndexError::Backend(format!("a qdrant-edge call failed unexpectedly: {err}"))
    })?
}

impl Inner {
    /// Optimises (if configured) and flushes after a write.
    fn after_write(
        &self,
        collection: &EdgeCollection,
        shard: &EdgeShard,
    ) -> Result<(), IndexError> {
        if self.registry.options().optimize_after_writes {
            shard
                .optimize()
                .map_err(|err| edge_error(&collection.name, "optimise", err))?;
        }
        shard.flush();
        Ok(())
    }

    fn upsert(&self, name: &str, points: Vec<IndexPoint>) -> Result<(), IndexError> {
        let collection = self.registry.get(name)?;
        collection.spec.check_points(name, &points)?;
        if points.is_empty() {
            return collection.read(|_| Ok(()));
        }
        let points = points
            .iter()
            .map(|p| convert::point(p, &self.lexical))
            .collect();
        collection.write(|shard| {
            shard
                .update(UpdateOperation::PointOperation(
                    PointOperations::UpsertPoints(PointInsertOperations::PointsList(points)),
                ))
                .map_err(|err| edge_error(name, "upsert into", err))?;
            self.after_write(&collection, shard)
        })
    }

    fn delete(&self, name: &str, chunk_ids: &[Uuid]) -> Result<(), IndexError> {
        let collection = self.registry.get(name)?;
        if chunk_ids.is_empty() {
            return collection.read(|_| Ok(()));
        }
        let ids = chunk_ids.iter().copied().map(PointId::Uuid).collect();
        collection.write(|shard| {
            shard
                .update(UpdateOperation::PointOperation(
                    PointOperations::DeletePoints { ids },
                ))
                .map_err(|err| edge_error(name, "delete from", err))?;
            self.after_write(&collection, shard)
        })
    }

    fn point_ids(&self, name: &str) -> Result<Vec<Uuid>, IndexError> {
        let collection = self.registry.get(name)?;
        collection.read(|shard| {
            let mut ids = Vec::new();
            let mut offset = None;
            loop {
                let (records, next) = shard
                    .scroll(ScrollRequest {
                        offset,
                        limit: Some(SCROLL_PAGE),
                        filter: None,
                        with_payload: Some(WithPayloadInterface::Bool(false)),
                        with_vector: WithVector::Bool(false),
                        order_by: None,
                    })
                    .map_err(|err| edge_error(name, "list the points of", err))?;
                for record in records {
                    ids.push(convert::point_uuid(name, record.id)?);
                }
                match next {
                    Some(next) => offset = Some(next),
                    None => return Ok(ids),
                }
            }
        })
    }

    fn search(&self, query: &IndexQuery) -> Result<Vec<ScoredPoint>, IndexError> {
        let name = query.collection.as_str();
        let collection = self.registry.get(name)?;
        let (vector, using) = match &query.probe {
            Probe::Dense(vector) => {
                collection.spec.check_query(name, vector)?;
                (VectorInternal::Dense(vector.clone()), DENSE_VECTOR)
            }
            Probe::Lexical(text) => {
                let terms = self.lexical.query(text);
                if terms.is_empty() {
                    return collection.read(|_| Ok(Vec::new()));
                }
                (
                    VectorInternal::Sparse(convert::sparse(terms)),
                    LEXICAL_VECTOR,
                )
            }
        };
        if query.top_k == 0 {
            return collection.read(|_| Ok(Vec::new()));
        }
        let filter = query
            .filter
            .as_ref()
            .and_then(TermFilter::from_filter)
            .map(|f| convert::filter(&f))
            .transpose()?;
        let with_payload = HIT_PAYLOAD_KEYS
            .iter()
            .map(|key| convert::path(key))
            .collect::<Result<Vec<_>, _>>()?;
        let request = QueryRequest {
            prefetches: Vec::new(),
            query: Some(ScoringQuery::Vector(QueryEnum::Nearest(NamedQuery::new(
                vector, using,
            )))),
            filter,
            score_threshold: None,
            limit: query.top_k,
            offset: 0,
            params: None,
            with_vector: if query.with_vectors {
                WithVector::Selector(vec![DENSE_VECTOR.to_owned()])
            } else {
                WithVector::Bool(false)
            },
            with_payload: WithPayloadInterface::Fields(with_payload),
        };
        let hits = collection.read(|shard| {
            shard
                .query(request)
                .map_err(|err| edge_error(name, "search", err))
        })?;
        hits.into_iter()
            .map(|hit| convert::hit(name, hit, query.with_vectors))
            .collect()
    }
}

#[async_trait]
impl VectorIndex for EdgeIndex {
    fn backend(&self) -> &'static str {
        "qdrant-edge"
    }

    async fn ping(&self) -> Result<(), IndexError> {
        let root = self.root().to_owned();
        blocking(move || match std::fs::metadata(&root) {
            Ok(meta) if meta.is_dir() => Ok(()),
            Ok(_) => Err(IndexError::Unavailable(format!(
                "the embedded index path `{}` is not a directory",
                root.display()
            ))),
            Err(err) => Err(IndexError::Unavailable(format!(
                "the embedded index directory `{}` is unreadable: {err}; check the data directory setting",
                root.display()
            ))),
        })
        .await
    }

    async fn ensure_collection(&self, spec: &IndexSpec) -> Result<(), IndexError> {
        spec::validate(spec)?;
        let inner = self.inner.clone();
        let spec = spec.clone();
        blocking(move || inner.registry.ensure(&spec)).await
    }

    async fn drop_collection(&self, collection: &str) -> Result<bool, IndexError> {
        let inner = self.inner.clone();
        let name = collection.to_owned();
        blocking(move || inner.registry.drop_collection(&name)).await
    }

    async fn upsert(&self, collection: &str, points: Vec<IndexPoint>) -> Result<(), IndexError> {
        let inner = self.inner.clone();
        let name = collection.to_owned();
        blocking(move || inner.upsert(&name, points)).await
    }

    async fn delete(&self, collection: &str, chunk_ids: &[Uuid]) -> Result<(), IndexError> {
        let inner = self.inner.clone();
        let name = collection.to_owned();
        let chunk_ids = chunk_ids.to_vec();
        blocking(move || inner.delete(&name, &chunk_ids)).await
    }

    async fn point_ids(&self, collection: &str) -> Result<Vec<Uuid>, IndexError> {
        let inner = self.inner.clone();
        let name = collection.to_owned();
        blocking(move || inner.point_ids(&name)).await
    }

    async fn search(&self, query: &IndexQuery) -> Result<Vec<ScoredPoint>, IndexError> {
        let inner = self.inner.clone();
        let query = query.clone();
        blocking(move || inner.search(&query)).await
    }
}
