//! [`EdgeIndex`]: the embedded index, qdrant-edge shards on a local directory.
//!
//! # Several processes on one directory
//!
//! `cairn serve` and a `cairn ingest` or `cairn search` started beside it share the index
//! directory, so every collection is guarded by file locks (module `lock`):
//!
//! - qdrant-edge holds an exclusive lock on a shard's write-ahead log while the shard is open, so
//!   a shard can be open in one process at a time, for reading as much as for writing. A process
//!   therefore opens a collection only under the collection's own lock,
//!   `<root>/.locks/<collection>.lock` (an exclusive `flock`), and closes it before unlocking.
//! - The lock is taken on a collection's first use and kept while no other process asks for it,
//!   so a process alone on the directory opens each shard once and then runs at in-memory speed,
//!   as without locking. Within the process, calls share the open shard as before: searches and
//!   listings run side by side, writes are serialised among themselves.
//! - A process that finds the lock held announces itself with a shared lock on
//!   `<root>/.locks/<collection>.wait` and blocks. The holder checks that file every 20 ms; when
//!   someone waits, and the holder is idle or has held the collection for 100 ms, it starts no new
//!   call on the collection, lets the running ones finish, closes the shard (flushing it) and
//!   unlocks. Its next call on the collection waits its turn the same way, behind those already
//!   announced.
//! - Every write is flushed before its call returns, and a shard is closed before its lock is
//!   released; the next holder loads the shard, and reads the spec file, from disk when it takes
//!   the lock. A collection created by another process is found, one it dropped is reported as
//!   [`IndexError::UnknownCollection`], and a changed spec is seen. (So no generation counter is
//!   needed: a process never keeps a shard open across another process's turn; it could not, as
//!   qdrant-edge's lock would stop the other from opening it.)
//!
//! Guaranteed: every call sees every write that another process's call completed before it, and
//! calls of different processes on one collection never overlap (so writers are serialised across
//! processes, and readers never see a write half done). Collections are independent.
//!
//! Not guaranteed:
//! - Fairness: a holder lets go within 20 ms of being idle, or of having held the collection for
//!   100 ms and finished the calls it had started by then (so a single long call, a large upsert
//!   or an optimisation, delays the hand-over accordingly). Which waiter then gets the collection
//!   is up to the kernel, which does not queue `flock` waiters: a former holder queues behind the
//!   waiters already announced, but a newcomer may come first.
//! - Speed under contention: each hand-over closes a shard in one process and loads it in the
//!   other (tens of milliseconds for a small collection, more for a large one), so two processes
//!   alternating on one collection are much slower than one.
//! - Bounded waiting: a call waits for as long as another process holds the collection (a long
//!   optimisation, say); a process that dies releases its locks with it.
//! - Network file systems: `flock` is reliable only on a local file system.
//! - Other writers: Cairn versions without these locks, or anything that deletes files under the
//!   root, are not excluded (an older Cairn fails to open a shard held here, on qdrant-edge's own
//!   lock, rather than corrupting it).
//!
//! The lock files are never deleted (deleting a locked file would break the exclusion); there are
//! two small files per collection ever created.

mod collection;
mod convert;
mod lock;
mod slot;

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
/// Shards are opened on first use and stay open while no other process asks for the collection.
/// Several processes (or several `EdgeIndex` values) may use one directory: file locks under
/// `<root>/.locks/` give each collection to one of them at a time, which closes the shard when
/// another waits (once idle, or after holding it 100 ms while busy), and the next one loads it from
/// disk. So a call sees every write another process completed before it, writes never overlap, and
/// a collection created or dropped elsewhere is found or reported unknown; but waiting is neither
/// bounded nor fair, each hand-over costs a shard load, and the locks need a local file system.
///
/// Every call runs on tokio's blocking pool, where it may wait for another process. Data is
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
            inner.registry.with(&collection, |open| {
                open.write(|shard| {
                    let changed = shard
                        .optimize()
                        .map_err(|err| edge_error(&collection, "optimise", err))?;
                    shard.flush();
                    Ok(changed)
                })
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
        // Converted before taking the collection, so other processes wait less.
        let converted = points
            .iter()
            .map(|p| convert::point(p, &self.lexical))
            .collect();
        self.registry.with(name, |collection| {
            collection.spec.check_points(name, &points)?;
            if points.is_empty() {
                return Ok(());
            }
            collection.write(|shard| {
                shard
                    .update(UpdateOperation::PointOperation(
                        PointOperations::UpsertPoints(PointInsertOperations::PointsList(converted)),
                    ))
                    .map_err(|err| edge_error(name, "upsert into", err))?;
                self.after_write(collection, shard)
            })
        })
    }

    fn delete(&self, name: &str, chunk_ids: &[Uuid]) -> Result<(), IndexError> {
        self.registry.with(name, |collection| {
            if chunk_ids.is_empty() {
                return Ok(());
            }
            let ids = chunk_ids.iter().copied().map(PointId::Uuid).collect();
            collection.write(|shard| {
                shard
                    .update(UpdateOperation::PointOperation(
                        PointOperations::DeletePoints { ids },
                    ))
                    .map_err(|err| edge_error(name, "delete from", err))?;
                self.after_write(collection, shard)
            })
        })
    }

    fn point_ids(&self, name: &str) -> Result<Vec<Uuid>, IndexError> {
        self.registry.with(name, |collection| {
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
        })
    }

    fn search(&self, query: &IndexQuery) -> Result<Vec<ScoredPoint>, IndexError> {
        self.registry.with(&query.collection, |collection| {
            self.search_in(collection, query)
        })
    }

    fn search_in(
        &self,
        collection: &EdgeCollection,
        query: &IndexQuery,
    ) -> Result<Vec<ScoredPoint>, IndexError> {
        let name = query.collection.as_str();
        let (vector, using) = match &query.probe {
            Probe::Dense(vector) => {
                collection.spec.check_query(name, vector)?;
                (VectorInternal::Dense(vector.clone()), DENSE_VECTOR)
            }
            Probe::Lexical(text) => {
                let terms = self.lexical.query(text);
                if terms.is_empty() {
                    return Ok(Vec::new());
                }
                (
                    VectorInternal::Sparse(convert::sparse(terms)),
                    LEXICAL_VECTOR,
                )
            }
        };
        if query.top_k == 0 {
            return Ok(Vec::new());
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
