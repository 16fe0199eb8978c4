//! Ingest and sync: source → loader → chunker → content hashes → embed only what changed → index,
//! with documents that disappeared from the source removed.
//!
//! Crash safety: the catalog is the source of truth. A document's new hash and its new chunks are
//! committed together ([`DocumentRepo::sync_documents`], a file's documents in batches); the
//! vectors follow. Every ingest starts by
//! reconciling the index with the catalog (embedding chunks that have no vector, deleting vectors
//! whose chunk is gone), so a run killed at any point and run again ends with no duplicate, missing
//! or orphaned chunk.
//!
//! [`DocumentRepo::sync_documents`]: cairn_core::catalog::DocumentRepo::sync_documents

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_core::catalog::{
    Catalog, Chunk, Collection, Document, NewChunk, NewCollection, NewDocument, UpsertOutcome,
};
use cairn_core::index::{IndexPoint, IndexSpec, VectorIndex};
use cairn_core::{CatalogError, EmbeddingModel};
use cairn_loaders::{DiscoverOptions, DocumentError, FetchOptions, LoadOptions, LoadedDocument};
use futures_util::{StreamExt, stream};
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::RagError;
use crate::chunk::{Chunker, embedding_text, hex};

/// Where documents come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A file or a directory (walked, skipping hidden and ignored files).
    Path(PathBuf),
    /// An http(s) URL.
    Url(String),
    /// Files sent through the API in one request, ingested together (one reconcile, one sync).
    Uploads(Vec<Upload>),
}

/// One uploaded file: its name (whose extension picks the format) and its bytes, shared rather
/// than copied while it is loaded.
#[derive(Debug, Clone)]
pub struct Upload {
    pub name: String,
    pub bytes: Arc<Vec<u8>>,
}

/// Ingest settings.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    pub load: LoadOptions,
    pub discover: DiscoverOptions,
    pub fetch: FetchOptions,
    /// Chunks per embedding call.
    pub embed_batch: usize,
    /// Documents processed at once.
    pub concurrency: usize,
    /// A file's changed documents stored per catalog transaction (and embedded together).
    pub sync_batch: usize,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            load: LoadOptions::default(),
            discover: DiscoverOptions::default(),
            fetch: FetchOptions::default(),
            embed_batch: 64,
            concurrency: 2,
            sync_batch: 64,
        }
    }
}

/// What happened to one document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentOutcome {
    Added,
    Updated,
    Unchanged,
    Removed,
    Failed,
}

/// Receives progress as documents are processed (the CLI draws a progress bar with it).
pub trait Progress: Send + Sync {
    /// The number of files or URLs found.
    fn discovered(&self, _count: usize) {}
    /// One file or URL was processed (it may hold several documents).
    fn processed(&self, _source: &str, _outcome: DocumentOutcome) {}
    /// Chunks and tokens embedded so far in this ingest (after each file).
    fn embedded(&self, _chunks: usize, _tokens: usize) {}
}

/// Reports nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}

/// The summary of an ingest.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IngestReport {
    pub collection: String,
    pub added: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub removed: usize,
    /// Documents that could not be loaded; each names the document and the reason.
    pub failed: Vec<DocumentFailure>,
    /// Chunks embedded in this run (new or changed content).
    pub chunks_embedded: usize,
    /// Chunks whose content was already embedded and were kept.
    pub chunks_kept: usize,
    /// Tokens of the embedded chunks.
    pub tokens_embedded: usize,
    /// Bytes of text loaded.
    pub bytes: usize,
    /// Chunks found without a vector (an earlier run was interrupted) and embedded now.
    pub repaired_missing: usize,
    /// Vectors without a chunk (an earlier run was interrupted) deleted now.
    pub repaired_orphans: usize,
    #[serde(with = "millis")]
    pub elapsed: Duration,
}

impl IngestReport {
    /// Adds another ingest's counts to this one (several uploads answered as one report).
    pub fn absorb(&mut self, other: IngestReport) {
        self.collection = other.collection;
        self.added += other.added;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
        self.removed += other.removed;
        self.failed.extend(other.failed);
        self.chunks_embedded += other.chunks_embedded;
        self.chunks_kept += other.chunks_kept;
        self.tokens_embedded += other.tokens_embedded;
        self.bytes += other.bytes;
        self.repaired_missing += other.repaired_missing;
        self.repaired_orphans += other.repaired_orphans;
        self.elapsed += other.elapsed;
    }
}

/// A document that failed, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DocumentFailure {
    pub source: String,
    pub reason: String,
}

impl From<DocumentError> for DocumentFailure {
    fn from(e: DocumentError) -> Self {
        DocumentFailure {
            source: e.source,
            reason: e.reason,
        }
    }
}

mod millis {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

/// Runs ingests into collections of one catalog and one index, with one embedding model.
#[derive(Debug, Clone)]
pub struct Ingestor {
    catalog: Arc<dyn Catalog>,
    index: Arc<dyn VectorIndex>,
    embedder: Arc<dyn EmbeddingModel>,
    chunker: Arc<Chunker>,
    options: IngestOptions,
}

/// One file's worth of loaded documents, or why it failed.
struct Loaded {
    /// The file path or URL, for progress and removal scope.
    origin: String,
    documents: Result<Vec<LoadedDocument>, DocumentError>,
}

#[derive(Default)]
struct Tally {
    added: usize,
    updated: usize,
    unchanged: usize,
    chunks_embedded: usize,
    chunks_kept: usize,
    tokens_embedded: usize,
    bytes: usize,
}

impl Ingestor {
    pub fn new(
        catalog: Arc<dyn Catalog>,
        index: Arc<dyn VectorIndex>,
        embedder: Arc<dyn EmbeddingModel>,
        chunker: Chunker,
        options: IngestOptions,
    ) -> Self {
        Ingestor {
            catalog,
            index,
            embedder,
            chunker: Arc::new(chunker),
            options,
        }
    }

    pub fn embedder(&self) -> &Arc<dyn EmbeddingModel> {
        &self.embedder
    }

    /// How it loads, fetches and batches (URL fetches by other services follow the same rules).
    pub fn options(&self) -> &IngestOptions {
        &self.options
    }

    /// Ingests `source` into `collection` (created when missing) and syncs: documents under the
    /// source that are gone are removed; unchanged ones cost nothing.
    pub async fn ingest(
        &self,
        collection: &str,
        source: Source,
        progress: &dyn Progress,
    ) -> Result<IngestReport, RagError> {
        let started = Instant::now();
        let collection = self.prepare(collection).await?;
        let (repaired_missing, repaired_orphans) = self.reconcile(&collection).await?;

        let (origins, scope) = self.discover(&source).await?;
        progress.discovered(origins.len());
        let existing: HashMap<String, Document> = self
            .catalog
            .list_documents(collection.id)
            .await?
            .into_iter()
            .map(|d| (d.source.clone(), d))
            .collect();
        let existing = Arc::new(existing);

        let mut report = IngestReport {
            collection: collection.name.clone(),
            repaired_missing,
            repaired_orphans,
            ..IngestReport::default()
        };
        let mut seen: HashSet<String> = HashSet::new();
        let mut failed_origins: Vec<String> = Vec::new();
        let mut tally = Tally::default();

        let loads = stream::iter(origins)
            .map(|origin| self.load(origin, &source))
            .buffered(self.options.concurrency.max(1));
        let mut loads = std::pin::pin!(loads);
        while let Some(loaded) = loads.next().await {
            match loaded.documents {
                Err(error) => {
                    progress.processed(&loaded.origin, DocumentOutcome::Failed);
                    failed_origins.push(loaded.origin.clone());
                    report.failed.push(error.into());
                }
                Ok(documents) => {
                    // A file's documents (a JSONL file's records) are stored in batches: one
                    // catalog transaction and shared embedding calls per batch.
                    let mut outcome = DocumentOutcome::Unchanged;
                    let mut pending = Vec::new();
                    for document in documents {
                        seen.insert(document.source.clone());
                        match self
                            .prepare_one(&collection, &existing, document, &mut tally)
                            .await
                        {
                            Ok(None) => {}
                            Ok(Some(ready)) => {
                                pending.push(ready);
                                if pending.len() >= self.options.sync_batch.max(1) {
                                    let batch = std::mem::take(&mut pending);
                                    outcome = self.flush(&collection, batch, &mut tally).await?;
                                }
                            }
                            Err(RagError::Document(error)) => {
                                outcome = DocumentOutcome::Failed;
                                report.failed.push(error.into());
                            }
                            Err(other) => return Err(other),
                        }
                    }
                    if !pending.is_empty() {
                        outcome = self.flush(&collection, pending, &mut tally).await?;
                    }
                    progress.embedded(tally.chunks_embedded, tally.tokens_embedded);
                    progress.processed(&loaded.origin, outcome);
                }
            }
        }

        // Removal: documents under this source's scope that were not seen. A file that failed to
        // load keeps its documents: nothing already indexed is lost because of a bad read.
        if let Some(scope) = scope {
            for document in existing.values() {
                let in_scope = scope.contains(&document.source);
                let failed = failed_origins
                    .iter()
                    .any(|origin| belongs_to(&document.source, origin));
                if in_scope && !failed && !seen.contains(&document.source) {
                    self.remove(&collection, document).await?;
                    progress.processed(&document.source, DocumentOutcome::Removed);
                    report.removed += 1;
                }
            }
        }

        report.added = tally.added;
        report.updated = tally.updated;
        report.unchanged = tally.unchanged;
        report.chunks_embedded = tally.chunks_embedded;
        report.chunks_kept = tally.chunks_kept;
        report.tokens_embedded = tally.tokens_embedded;
        report.bytes = tally.bytes;
        report.elapsed = started.elapsed();
        Ok(report)
    }

    /// Deletes one document and its vectors. Returns whether it existed in this collection.
    pub async fn delete_document(&self, collection: &str, id: Uuid) -> Result<bool, RagError> {
        let collection = self.collection(collection).await?;
        match self.catalog.get_document(id).await? {
            Some(document) if document.collection_id == collection.id => {
                self.remove(&collection, &document).await?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Makes the index hold exactly the catalog's chunks: embeds chunks without a vector and
    /// deletes vectors without a chunk. Returns (embedded, deleted).
    pub async fn reconcile(&self, collection: &Collection) -> Result<(usize, usize), RagError> {
        let stored: HashSet<Uuid> = self
            .catalog
            .chunk_ids(collection.id)
            .await?
            .into_iter()
            .collect();
        let indexed: HashSet<Uuid> = self
            .index
            .point_ids(&collection.name)
            .await?
            .into_iter()
            .collect();
        let orphans: Vec<Uuid> = indexed.difference(&stored).copied().collect();
        if !orphans.is_empty() {
            self.index.delete(&collection.name, &orphans).await?;
        }
        let missing: Vec<Uuid> = stored.difference(&indexed).copied().collect();
        let mut repaired = 0;
        for ids in missing.chunks(self.options.embed_batch.max(1)) {
            let chunks = self.catalog.get_chunks(ids).await?;
            let mut by_document: HashMap<Uuid, Vec<Chunk>> = HashMap::new();
            for chunk in chunks {
                by_document
                    .entry(chunk.document_id)
                    .or_default()
                    .push(chunk);
            }
            for (document_id, chunks) in by_document {
                let Some(document) = self.catalog.get_document(document_id).await? else {
                    continue;
                };
                repaired += chunks.len();
                self.embed_and_index(&collection.name, &document, &chunks)
                    .await?;
            }
        }
        if !orphans.is_empty() || repaired > 0 {
            tracing::info!(collection = %collection.name, repaired, orphans = orphans.len(), "reconciled the index with the catalog");
        }
        Ok((repaired, orphans.len()))
    }

    async fn collection(&self, name: &str) -> Result<Collection, RagError> {
        self.catalog
            .get_collection(name)
            .await?
            .ok_or_else(|| RagError::UnknownCollection(name.to_owned()))
    }

    /// Creates the collection if needed and binds it (catalog and index) to the embedding model.
    async fn prepare(&self, name: &str) -> Result<Collection, RagError> {
        let model = self.embedder.model_id().to_owned();
        let dimension = self.embedder.dimension();
        let dimension_u32 = u32::try_from(dimension).map_err(|_| {
            RagError::Invalid(format!("embedding dimension {dimension} is too large"))
        })?;
        if self.catalog.get_collection(name).await?.is_none() {
            match self
                .catalog
                .create_collection(NewCollection {
                    name: name.to_owned(),
                    embedding_model: Some(model.clone()),
                    embedding_dimension: Some(dimension_u32),
                    ..NewCollection::default()
                })
                .await
            {
                Ok(_) | Err(CatalogError::Conflict(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let collection = self
            .catalog
            .bind_embedding_model(name, &model, dimension_u32)
            .await?;
        self.index
            .ensure_collection(&IndexSpec {
                collection: name.to_owned(),
                embedding_model: model,
                dimension,
            })
            .await?;
        Ok(collection)
    }

    /// The files or URLs to load, and the set of document sources a sync may remove (None: remove
    /// nothing, as for an upload).
    async fn discover(&self, source: &Source) -> Result<(Vec<String>, Option<Scope>), RagError> {
        match source {
            Source::Path(path) => {
                let root = std::fs::canonicalize(path).map_err(|e| {
                    RagError::Invalid(format!("cannot read {}: {e}", path.display()))
                })?;
                let options = self.options.discover.clone();
                let files = {
                    let root = root.clone();
                    tokio::task::spawn_blocking(move || cairn_loaders::discover(&root, &options))
                        .await
                        .map_err(|e| RagError::Invalid(format!("discovery panicked: {e}")))??
                };
                let origins = files.iter().map(|p| p.display().to_string()).collect();
                let scope = if root.is_dir() {
                    Scope::Under(format!("{}{}", root.display(), std::path::MAIN_SEPARATOR))
                } else {
                    Scope::Origin(root.display().to_string())
                };
                Ok((origins, Some(scope)))
            }
            Source::Url(url) => Ok((vec![url.clone()], Some(Scope::Origin(url.clone())))),
            Source::Uploads(files) => Ok((
                files.iter().map(|f| format!("upload:{}", f.name)).collect(),
                None,
            )),
        }
    }

    async fn load(&self, origin: String, source: &Source) -> Loaded {
        let options = self.options.load.clone();
        let documents = match source {
            Source::Path(_) => {
                let path = PathBuf::from(&origin);
                tokio::task::spawn_blocking(move || cairn_loaders::load_file(&path, &options))
                    .await
                    .unwrap_or_else(|e| Err(panicked(&origin, e)))
            }
            Source::Url(url) => match cairn_loaders::fetch_url(url, &self.options.fetch).await {
                Ok(fetched) => {
                    let format = cairn_loaders::Format::detect(
                        fetched.content_type.as_deref(),
                        &fetched.final_url,
                    );
                    let origin = origin.clone();
                    tokio::task::spawn_blocking(move || match format {
                        Some(format) => {
                            cairn_loaders::load_bytes(&fetched.final_url, &fetched.bytes, format, &options)
                                .map(|docs| with_url(docs, &fetched.final_url))
                        }
                        None => Err(DocumentError {
                            source: origin,
                            reason: format!(
                                "unsupported content type {}; Cairn reads Markdown, text, HTML, PDF and JSON",
                                fetched.content_type.as_deref().unwrap_or("(none)")
                            ),
                        }),
                    })
                    .await
                    .unwrap_or_else(|e| Err(panicked(url, e)))
                }
                Err(error) => Err(error),
            },
            Source::Uploads(files) => {
                let Some(file) = files
                    .iter()
                    .find(|f| origin.strip_prefix("upload:") == Some(f.name.as_str()))
                else {
                    return Loaded {
                        documents: Err(DocumentError {
                            source: origin.clone(),
                            reason: "is not among the uploaded files".into(),
                        }),
                        origin,
                    };
                };
                let bytes = file.bytes.clone();
                let name = file.name.clone();
                let label = origin.clone();
                let origin = origin.clone();
                tokio::task::spawn_blocking(move || {
                    match cairn_loaders::Format::from_path(Path::new(&name)) {
                        Some(format) => cairn_loaders::load_bytes(&origin, &bytes, format, &options),
                        None => Err(DocumentError {
                            source: origin,
                            reason: format!(
                                "cannot tell the format of `{name}` from its extension; use .md, .txt, .html, .pdf, .json or .jsonl"
                            ),
                        }),
                    }
                })
                .await
                .unwrap_or_else(|e| Err(panicked(&label, e)))
            }
        };
        Loaded { origin, documents }
    }

    /// A loaded document's catalog record and chunks, or `None` when it is unchanged (counted).
    async fn prepare_one(
        &self,
        collection: &Collection,
        existing: &HashMap<String, Document>,
        document: LoadedDocument,
        tally: &mut Tally,
    ) -> Result<Option<(NewDocument, Vec<NewChunk>)>, RagError> {
        tally.bytes += document.text.len();
        let metadata = Value::Object(document_metadata(&document));
        let hash = self.document_hash(&document, &metadata);
        if existing.get(&document.source).is_some_and(|d| {
            d.content_hash == hash && d.title == document.title && d.metadata == metadata
        }) {
            tally.unchanged += 1;
            return Ok(None);
        }
        let chunker = self.chunker.clone();
        let (document, chunks) = tokio::task::spawn_blocking(move || {
            let chunks = chunker.chunk(&document);
            (document, chunks)
        })
        .await
        .map_err(|e| RagError::Invalid(format!("chunking panicked: {e}")))?;
        if chunks.is_empty() {
            return Err(RagError::Document(DocumentError {
                source: document.source,
                reason: "has no text to index".into(),
            }));
        }
        Ok(Some((
            NewDocument {
                collection_id: collection.id,
                source: document.source.clone(),
                title: document.title.clone(),
                content_hash: hash,
                metadata,
            },
            chunks,
        )))
    }

    /// Stores a batch of changed documents in one catalog transaction, then embeds their new
    /// chunks together and drops the vectors of removed ones. Returns the last document's outcome.
    async fn flush(
        &self,
        collection: &Collection,
        batch: Vec<(NewDocument, Vec<NewChunk>)>,
        tally: &mut Tally,
    ) -> Result<DocumentOutcome, RagError> {
        let synced = self.catalog.sync_documents(batch).await?;
        let mut outcome = DocumentOutcome::Unchanged;
        let mut removed = Vec::new();
        for sync in &synced {
            tally.chunks_kept += sync.diff.kept.len();
            tally.chunks_embedded += sync.diff.added.len();
            tally.tokens_embedded += sync
                .diff
                .added
                .iter()
                .map(|c| c.token_count as usize)
                .sum::<usize>();
            removed.extend(sync.diff.removed.iter().copied());
            outcome = match sync.outcome {
                UpsertOutcome::Added => {
                    tally.added += 1;
                    DocumentOutcome::Added
                }
                UpsertOutcome::Updated | UpsertOutcome::Unchanged => {
                    tally.updated += 1;
                    DocumentOutcome::Updated
                }
            };
        }
        // Kept chunks may have moved (new offsets or heading path do not change their hash); their
        // vectors stay. Only new content is embedded.
        let added: Vec<(&Document, &Chunk)> = synced
            .iter()
            .flat_map(|sync| sync.diff.added.iter().map(move |c| (&sync.document, c)))
            .collect();
        self.embed_and_index_all(&collection.name, &added).await?;
        if !removed.is_empty() {
            self.index.delete(&collection.name, &removed).await?;
        }
        Ok(outcome)
    }

    async fn embed_and_index(
        &self,
        collection: &str,
        document: &Document,
        chunks: &[Chunk],
    ) -> Result<(), RagError> {
        let pairs: Vec<(&Document, &Chunk)> = chunks.iter().map(|c| (document, c)).collect();
        self.embed_and_index_all(collection, &pairs).await
    }

    /// Embeds chunks of one or more documents in batches of `embed_batch` and upserts their points.
    async fn embed_and_index_all(
        &self,
        collection: &str,
        chunks: &[(&Document, &Chunk)],
    ) -> Result<(), RagError> {
        for batch in chunks.chunks(self.options.embed_batch.max(1)) {
            let texts: Vec<String> = batch
                .iter()
                .map(|(document, c)| embedding_text(&document.title, &c.heading_path, &c.content))
                .collect();
            let vectors = self.embedder.embed_documents(&texts).await?;
            if vectors.len() != batch.len() {
                return Err(RagError::Invalid(format!(
                    "embedding model `{}` returned {} vectors for {} chunks",
                    self.embedder.model_id(),
                    vectors.len(),
                    batch.len()
                )));
            }
            let points = batch
                .iter()
                .zip(vectors)
                .zip(texts)
                .map(|(((document, chunk), vector), text)| IndexPoint {
                    chunk_id: chunk.id,
                    document_id: document.id,
                    vector,
                    text,
                    metadata: filterable(document),
                })
                .collect();
            self.index.upsert(collection, points).await?;
        }
        Ok(())
    }

    async fn remove(&self, collection: &Collection, document: &Document) -> Result<(), RagError> {
        let ids: Vec<Uuid> = self
            .catalog
            .list_chunks(document.id)
            .await?
            .into_iter()
            .map(|c| c.id)
            .collect();
        self.catalog.delete_document(document.id).await?;
        if !ids.is_empty() {
            self.index.delete(&collection.name, &ids).await?;
        }
        Ok(())
    }

    /// The document's version hash: its text, title and metadata, and how it is chunked.
    fn document_hash(&self, document: &LoadedDocument, metadata: &Value) -> String {
        let mut hasher = Sha256::new();
        for part in [
            self.chunker.fingerprint().as_str(),
            self.embedder.model_id(),
            document.title.as_str(),
            document.text.as_str(),
            &metadata.to_string(),
        ] {
            hasher.update(part.as_bytes());
            hasher.update([0]);
        }
        hex(&hasher.finalize())
    }
}

/// Which stored documents an ingest of a source may remove.
#[derive(Debug, Clone)]
enum Scope {
    /// Everything under a directory (sources are absolute paths, records `path#id`).
    Under(String),
    /// One file or URL, and its records.
    Origin(String),
}

impl Scope {
    fn contains(&self, source: &str) -> bool {
        match self {
            Scope::Under(prefix) => source.starts_with(prefix.as_str()),
            Scope::Origin(origin) => belongs_to(source, origin),
        }
    }
}

/// Whether a document source came from `origin`: the file itself, or one of its records.
fn belongs_to(source: &str, origin: &str) -> bool {
    source == origin
        || source
            .strip_prefix(origin)
            .is_some_and(|rest| rest.starts_with('#'))
}

/// The metadata stored with the document: the loader's, plus format and link.
fn document_metadata(document: &LoadedDocument) -> Map<String, Value> {
    let mut metadata = document.metadata.clone();
    if let Some(url) = &document.url {
        metadata.insert("url".into(), Value::String(url.clone()));
    }
    metadata
}

/// What filters can test on each chunk: the document's scalar metadata, its source and title.
fn filterable(document: &Document) -> Map<String, Value> {
    let mut fields: Map<String, Value> = match &document.metadata {
        Value::Object(map) => map
            .iter()
            .filter(|(_, v)| matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_)))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        _ => Map::new(),
    };
    fields.insert("source".into(), Value::String(document.source.clone()));
    fields.insert("title".into(), Value::String(document.title.clone()));
    fields
}

fn with_url(documents: Vec<LoadedDocument>, url: &str) -> Vec<LoadedDocument> {
    documents
        .into_iter()
        .map(|mut d| {
            d.url.get_or_insert_with(|| url.to_owned());
            d
        })
        .collect()
}

fn panicked(source: &str, error: tokio::task::JoinError) -> DocumentError {
    DocumentError {
        source: source.to_owned(),
        reason: format!("the loader failed unexpectedly ({error}); the file may be corrupt"),
    }
}
