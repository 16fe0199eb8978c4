//! One collection on disk: a qdrant-edge shard and the spec file beside it.
//!
//! ```text
//! <root>/<collection>/cairn-index.json   the spec (model, dimension, layout), written last
//! <root>/<collection>/shard/             the qdrant-edge shard
//! <root>/.locks/<collection>.{lock,wait} the locks between processes (module `lock`)
//! ```
//!
//! The spec file is the commit marker: a directory without it is an interrupted creation, which
//! `ensure_collection` clears and starts again, and which every other call treats as absent.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use cairn_core::index::{IndexError, IndexSpec};
use qdrant_edge::{
    CreateIndex, Distance, EdgeConfig, EdgeOptimizersConfig, EdgeShard, EdgeSparseVectorParams,
    EdgeVectorParams, FieldIndexOperations, Modifier, PayloadFieldSchema, PayloadSchemaType,
    UpdateOperation,
};

use super::EdgeOptions;
use super::convert::path;
use super::lock::LockFiles;
use super::slot::{Lease, Loaded, Shared, Slot};
use crate::layout::{DENSE_VECTOR, FILTER_TERMS, LEXICAL_VECTOR};
use crate::spec::StoredSpec;

const SPEC_FILE: &str = "cairn-index.json";
const SHARD_DIR: &str = "shard";

/// An open collection: its spec and its shard, open while this process holds the collection's
/// lease (see `slot`).
#[derive(Debug)]
pub struct EdgeCollection {
    pub name: String,
    pub spec: StoredSpec,
    shard: EdgeShard,
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
        f(&self.shard)
    }

    /// Runs `f` on the shard, one writer at a time.
    pub fn write<T>(
        &self,
        f: impl FnOnce(&EdgeShard) -> Result<T, IndexError>,
    ) -> Result<T, IndexError> {
        let _writer = self.writes.lock().unwrap_or_else(PoisonError::into_inner);
        f(&self.shard)
    }
}

/// The collections under one root directory. Each is opened on first use and kept open while no
/// other process asks for it (see the module docs of `edge`).
#[derive(Debug)]
pub struct Registry {
    root: PathBuf,
    options: EdgeOptions,
    slots: Mutex<HashMap<String, Arc<Slot>>>,
}

impl Registry {
    pub fn new(root: PathBuf, options: EdgeOptions) -> Self {
        Self {
            root,
            options,
            slots: Mutex::new(HashMap::new()),
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

    /// This process's state of the collection (the name is valid).
    fn slot(&self, name: &str) -> Arc<Slot> {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        slots
            .entry(name.to_owned())
            .or_insert_with(|| Arc::new(Slot::new(name, LockFiles::new(&self.root, name))))
            .clone()
    }

    /// Runs `f` on the collection, opening it from disk if needed; alongside other calls of this
    /// process, and with no other process using the collection.
    pub fn with<T>(
        &self,
        name: &str,
        f: impl FnOnce(&EdgeCollection) -> Result<T, IndexError>,
    ) -> Result<T, IndexError> {
        if cairn_core::catalog::validate_name("collection", name).is_err() {
            return Err(IndexError::UnknownCollection(name.to_owned()));
        }
        let slot = self.slot(name);
        let spec_file = self.dir(name).join(SPEC_FILE);
        match slot.enter_shared(|| !spec_file.exists()) {
            Shared::Open(guard) => f(guard.collection()),
            Shared::Absent => Err(IndexError::UnknownCollection(name.to_owned())),
            // Loads, and runs `f` in the same turn: letting go in between could hand the
            // collection to a waiting process before `f` ran, and the load would be wasted.
            Shared::NotLoaded => slot.exclusive(|lease| {
                self.load_into(name, lease)?;
                match &lease.collection {
                    Loaded::Open(collection) => f(collection),
                    Loaded::Absent | Loaded::Unknown => {
                        Err(IndexError::UnknownCollection(name.to_owned()))
                    }
                }
            }),
        }
    }

    /// Reads the collection from disk into the lease, if not done yet.
    fn load_into(&self, name: &str, lease: &mut Lease) -> Result<(), IndexError> {
        if !matches!(lease.collection, Loaded::Unknown) {
            return Ok(());
        }
        let dir = self.dir(name);
        lease.collection = match read_spec(&dir)? {
            None => Loaded::Absent,
            Some(spec) => {
                spec.check_layout(name)?;
                Loaded::Open(Arc::new(self.load(name, &dir, spec)?))
            }
        };
        Ok(())
    }

    /// Creates the collection, or checks the existing one against `requested`.
    pub fn ensure(&self, requested: &IndexSpec) -> Result<(), IndexError> {
        let name = requested.collection.as_str();
        cairn_core::catalog::validate_name("collection", name)
            .map_err(|err| IndexError::Backend(err.to_string()))?;
        // The common case, an existing collection with the same spec, runs alongside other calls.
        if self
            .with(name, |collection| collection.spec.check(requested))
            .is_ok()
        {
            return Ok(());
        }
        self.slot(name).exclusive(|lease| {
            if let Loaded::Open(collection) = &lease.collection {
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
            lease.collection = Loaded::Open(Arc::new(collection));
            Ok(())
        })
    }

    /// Closes and deletes the collection; whether it existed.
    pub fn drop_collection(&self, name: &str) -> Result<bool, IndexError> {
        if cairn_core::catalog::validate_name("collection", name).is_err() {
            return Ok(false);
        }
        let dir = self.dir(name);
        if !dir.exists() {
            // Not even an interrupted creation: nothing to lock for.
            return Ok(false);
        }
        self.slot(name).exclusive(|lease| {
            // No call of this process holds the collection, so this closes the shard.
            let was_open = matches!(
                std::mem::replace(&mut lease.collection, Loaded::Unknown),
                Loaded::Open(_)
            );
            let existed = was_open || dir.join(SPEC_FILE).exists();
            if dir.exists() {
                fs::remove_dir_all(&dir).map_err(|err| {
                    IndexError::Backend(format!(
                        "cannot delete the index of collection `{name}` at `{}`: {err}; check the directory's permissions",
                        dir.display()
                    ))
                })?;
            }
            lease.collection = Loaded::Absent;
            Ok(existed)
        })
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
            shard,
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
            shard,
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
