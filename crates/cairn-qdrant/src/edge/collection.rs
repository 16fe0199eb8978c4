//! One collection on disk: a qdrant-edge shard and the spec file beside it.
//!
//! ```text
//! <root>/<collection>/cairn-index.json   the spec (model, dimension, layout), written last
//! <root>/<collection>/shard/             the qdrant-edge shard
//! ```
//!
//! The spec file is the commit marker: a directory without it is an interrupted creation, which
//! `ensure_collection` clears and starts again, and which every other call treats as absent.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use cairn_core::index::{IndexError, IndexSpec};
use qdrant_edge::{
    CreateIndex, Distance, EdgeConfig, EdgeOptimizersConfig, EdgeShard, EdgeSparseVectorParams,
    EdgeVectorParams, FieldIndexOperations, Modifier, PayloadFieldSchema, PayloadSchemaType,
    UpdateOperation,
};

use super::EdgeOptions;
use super::convert::path;
use crate::layout::{DENSE_VECTOR, FILTER_TERMS, LEXICAL_VECTOR};
use crate::spec::StoredSpec;

const SPEC_FILE: &str = "cairn-index.json";
const SHARD_DIR: &str = "shard";

/// An open collection. The shard is `None` once the collection has been dropped; calls that still
/// hold the collection then report it unknown.
#[derive(Debug)]
pub struct EdgeCollection {
    pub name: String,
    pub spec: StoredSpec,
    shard: RwLock<Option<EdgeShard>>,
    /// Serialises writes, optimisation and flushes: qdrant-edge's `flush` panics when another
    /// thread holds the write-ahead log.
    writes: Mutex<()>,
}

impl EdgeCollection {
    /// Runs `f` on the shard, alongside other readers and writers.
    pub fn read<T>(
        &self,
        f: impl FnOnce(&EdgeShard) -> Result<T, IndexError>,
    ) -> Result<T, IndexError> {
        let guard = self.shard.read().unwrap_or_else(PoisonError::into_inner);
        let shard = guard
            .as_ref()
            .ok_or_else(|| IndexError::UnknownCollection(self.name.clone()))?;
        f(shard)
    }

    /// Runs `f` on the shard, one writer at a time.
    pub fn write<T>(
        &self,
        f: impl FnOnce(&EdgeShard) -> Result<T, IndexError>,
    ) -> Result<T, IndexError> {
        let _writer = lock(&self.writes);
        self.read(f)
    }

    /// Closes the shard (qdrant-edge flushes it), once running calls are done.
    fn close(&self) {
        let _writer = lock(&self.writes);
        let mut guard = self.shard.write().unwrap_or_else(PoisonError::into_inner);
        drop(guard.take());
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The collections under one root directory, opened on first use and kept open.
#[derive(Debug)]
pub struct Registry {
    root: PathBuf,
    options: EdgeOptions,
    open: Mutex<HashMap<String, Arc<EdgeCollection>>>,
}

impl Registry {
    pub fn new(root: PathBuf, options: EdgeOptions) -> Self {
        Self {
            root,
            options,
            open: Mutex::new(HashMap::new()),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn options(&self) -> &EdgeOptions {
        &self.options
    }

    fn dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// The open collection, opening it from disk if needed.
    pub fn get(&self, name: &str) -> Result<Arc<EdgeCollection>, IndexError> {
        if cairn_core::catalog::validate_name("collection", name).is_err() {
            return Err(IndexError::UnknownCollection(name.to_owned()));
        }
        let mut open = lock(&self.open);
        if let Some(collection) = open.get(name) {
            return Ok(collection.clone());
        }
        let dir = self.dir(name);
        let Some(spec) = read_spec(&dir)? else {
            return Err(IndexError::UnknownCollection(name.to_owned()));
        };
        spec.check_layout(name)?;
        let collection = Arc::new(self.load(name, &dir, spec)?);
        open.insert(name.to_owned(), collection.clone());
        Ok(collection)
    }

    /// Creates the collection, or checks the existing one against `requested`.
    pub fn ensure(&self, requested: &IndexSpec) -> Result<(), IndexError> {
        let name = requested.collection.as_str();
        cairn_core::catalog::validate_name("collection", name)
            .map_err(|err| IndexError::Backend(err.to_string()))?;
        let mut open = lock(&self.open);
        if let Some(collection) = open.get(name) {
            return collection.spec.check(requested);
        }
        let dir = self.dir(name);
        let collection = match read_spec(&dir)? {
            Some(stored) => {
                stored.check(requested)?;
                self.load(name, &dir, stored)?
            }
            None => self.create(name, &dir, StoredSpec::new(requested))?,
        };
        open.insert(name.to_owned(), Arc::new(collection));
        Ok(())
    }

    /// Closes and deletes the collection; whether it existed.
    pub fn drop_collection(&self, name: &str) -> Result<bool, IndexError> {
        if cairn_core::catalog::validate_name("collection", name).is_err() {
            return Ok(false);
        }
        let mut open = lock(&self.open);
        let dir = self.dir(name);
        let loaded = open.remove(name);
        if let Some(collection) = &loaded {
            collection.close();
        }
        let existed = loaded.is_some() || dir.join(SPEC_FILE).exists();
        if dir.exists() {
            fs::remove_dir_all(&dir).map_err(|err| {
                IndexError::Backend(format!(
                    "cannot delete the index of collection `{name}` at `{}`: {err}; check the directory's permissions",
                    dir.display()
                ))
            })?;
        }
        Ok(existed)
    }

    fn config(&self, spec: &StoredSpec) -> EdgeConfig {
        EdgeConfig {
            vectors: HashMap::from([(
                DENSE_VECTOR.to_owned(),
                EdgeVectorParams {
                    size: spec.dimension,
                    distance: Distance::Cosine,
                    on_disk: None,
                    multivector_config: None,
                    datatype: None,
                    quantization_config: None,
                    hnsw_config: None,
                },
            )]),
            sparse_vectors: HashMap::from([(
                LEXICAL_VECTOR.to_owned(),
                EdgeSparseVectorParams {
                    full_scan_threshold: None,
                    on_disk: None,
                    modifier: Some(Modifier::Idf),
                    datatype: None,
                },
            )]),
            optimizers: self.optimizers(),
            ..EdgeConfig::default()
        }
    }

    fn optimizers(&self) -> EdgeOptimizersConfig {
        EdgeOptimizersConfig {
            indexing_threshold: self.options.indexing_threshold_kb,
            ..EdgeOptimizersConfig::default()
        }
    }

    fn create(
        &self,
        name: &str,
        dir: &Path,
        spec: StoredSpec,
    ) -> Result<EdgeCollection, IndexError> {
        if dir.exists() {
            // An interrupted creation: no spec file was written, so nothing in it was acknowledged.
            tracing::warn!(collection = name, dir = %dir.display(), "clearing an interrupted index creation");
            fs::remove_dir_all(dir).map_err(|err| io_error(name, dir, "clear", &err))?;
        }
        let shard_dir = dir.join(SHARD_DIR);
        fs::create_dir_all(&shard_dir).map_err(|err| io_error(name, &shard_dir, "create", &err))?;
        let shard = EdgeShard::new(&shard_dir, self.config(&spec))
            .map_err(|err| edge_error(name, "create", err))?;
        shard
            .update(UpdateOperation::FieldIndexOperation(
                FieldIndexOperations::CreateIndex(CreateIndex {
                    field_name: path(FILTER_TERMS)?,
                    field_schema: Some(PayloadFieldSchema::FieldType(PayloadSchemaType::Keyword)),
                }),
            ))
            .map_err(|err| edge_error(name, "create the filter index of", err))?;
        shard.flush();
        write_spec(name, dir, &spec)?;
        Ok(EdgeCollection {
            name: name.to_owned(),
            spec,
            shard: RwLock::new(Some(shard)),
            writes: Mutex::new(()),
        })
    }

    fn load(&self, name: &str, dir: &Path, spec: StoredSpec) -> Result<EdgeCollection, IndexError> {
        let shard_dir = dir.join(SHARD_DIR);
        let shard =
            EdgeShard::load(&shard_dir, None).map_err(|err| edge_error(name, "open", err))?;
        let stored_size = shard.config().vectors.get(DENSE_VECTOR).map(|v| v.size);
        if stored_size != Some(spec.dimension) {
            return Err(IndexError::Backend(format!(
                "the shard of collection `{name}` at `{}` does not hold {}-dimensional `{DENSE_VECTOR}` vectors as {SPEC_FILE} says; drop the collection and ingest again",
                shard_dir.display(),
                spec.dimension
            )));
        }
        let optimizers = self.optimizers();
        if shard.config().optimizers != optimizers {
            shard
                .set_optimizers_config(optimizers)
                .map_err(|err| edge_error(name, "configure", err))?;
        }
        Ok(EdgeCollection {
            name: name.to_owned(),
            spec,
            shard: RwLock::new(Some(shard)),
            writes: Mutex::new(()),
        })
    }
}

fn read_spec(dir: &Path) -> Result<Option<StoredSpec>, IndexError> {
    let file = dir.join(SPEC_FILE);
    let text = match fs::read_to_string(&file) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => {
            return Err(IndexError::Backend(format!(
                "cannot read `{}`: {err}; check the index directory's permissions",
                file.display()
            )));
        }
    };
    serde_json::from_str(&text).map(Some).map_err(|err| {
        IndexError::Backend(format!(
            "`{}` is not a valid Cairn index spec ({err}); restore it, or delete the collection's directory and ingest again",
            file.display()
        ))
    })
}

/// Writes the spec file atomically (temporary file, sync, rename).
fn write_spec(name: &str, dir: &Path, spec: &StoredSpec) -> Result<(), IndexError> {
    let file = dir.join(SPEC_FILE);
    let temporary = dir.join(format!("{SPEC_FILE}.tmp"));
    let text = serde_json::to_vec_pretty(spec)
        .map_err(|err| IndexError::Backend(format!("cannot encode the index spec: {err}")))?;
    let write = || -> std::io::Result<()> {
        let mut out = fs::File::create(&temporary)?;
        out.write_all(&text)?;
        out.sync_all()?;
        fs::rename(&temporary, &file)
    };
    write().map_err(|err| io_error(name, &file, "write", &err))
}

fn io_error(name: &str, path: &Path, action: &str, err: &std::io::Error) -> IndexError {
    IndexError::Backend(format!(
        "cannot {action} `{}` for collection `{name}`: {err}; check that the index directory is writable",
        path.display()
    ))
}

/// A qdrant-edge failure on a collection.
pub fn edge_error(name: &str, action: &str, err: impl std::fmt::Display) -> IndexError {
    IndexError::Backend(format!(
        "qdrant-edge could not {action} collection `{name}`: {err}"
    ))
}
