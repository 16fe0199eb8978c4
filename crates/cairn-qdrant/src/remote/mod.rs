//! [`RemoteIndex`]: a Qdrant server or cluster over gRPC.

mod convert;
mod errors;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use cairn_core::index::{
    IndexError, IndexPoint, IndexQuery, IndexSpec, Probe, ScoredPoint, VectorIndex,
};
use qdrant_client::qdrant::points_selector::PointsSelectorOneOf;
use qdrant_client::qdrant::with_payload_selector::SelectorOptions as PayloadSelector;
use qdrant_client::qdrant::with_vectors_selector::SelectorOptions as VectorsSelectorOptions;
use qdrant_client::qdrant::{
    CreateFieldIndexCollection, DeletePoints, FieldType, PayloadIncludeSelector, PointId,
    PointsIdsList, PointsSelector, Query, QueryPoints, ScrollPoints, UpsertPoints, VectorInput,
    VectorsSelector, WithPayloadSelector, WithVectorsSelector,
};
use qdrant_client::{Qdrant, QdrantError};
use uuid::Uuid;

use self::errors::{is_already_exists, is_not_found, map_error};
use crate::filter::TermFilter;
use crate::layout::{DENSE_VECTOR, FILTER_TERMS, HIT_PAYLOAD_KEYS, LEXICAL_VECTOR};
use crate::lexical::Lexical;
use crate::spec::{self, StoredSpec};

/// The Qdrant version that keeps collection metadata, where the spec is stored.
const MIN_SERVER: (u64, u64) = (1, 16);
/// Points listed per page by `point_ids`.
const SCROLL_PAGE: u32 = 1_000;
/// Ids per delete request.
const DELETE_BATCH: usize = 1_000;

/// How to reach a Qdrant server, and where Cairn's collections live in it.
#[derive(Clone)]
pub struct RemoteOptions {
    /// gRPC URL, e.g. `http://localhost:6334` (the gRPC port, not the REST port 6333).
    pub url: String,
    /// API key (Qdrant Cloud, or a server with `service.api_key`).
    pub api_key: Option<String>,
    /// Prefix of Qdrant collection names: Cairn collection `kb` is Qdrant collection
    /// `{prefix}kb`. Default `cairn_`.
    pub prefix: String,
    /// Deadline of each request. Default 30 s.
    pub timeout: Duration,
    /// Deadline for opening a connection. Default 5 s.
    pub connect_timeout: Duration,
    /// Points per upsert request (each waits until applied). Default 256.
    pub upsert_batch: usize,
}

impl RemoteOptions {
    /// Options for `url` with the defaults.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            api_key: None,
            prefix: "cairn_".to_owned(),
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            upsert_batch: 256,
        }
    }

    /// Sets the API key.
    pub fn api_key(mut self, api_key: impl Into<String>) -> Self {
        self.api_key = Some(api_key.into());
        self
    }

    /// Sets the collection name prefix.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets the request deadline.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

impl fmt::Debug for RemoteOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteOptions")
            .field("url", &self.url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("upsert_batch", &self.upsert_batch)
            .finish()
    }
}

/// The vector index on a Qdrant server, over gRPC.
///
/// Each Cairn collection is one Qdrant collection (`{prefix}{name}`) with a named dense vector
/// (cosine) and a named sparse BM25 vector (IDF modifier), the BM25 term weights computed here with
/// the same code as [`EdgeIndex`](crate::EdgeIndex). The spec (model, dimension, layout) is kept in
/// the collection's metadata (`cairn_embedding_model`, `cairn_dimension`, `cairn_layout`), which
/// needs Qdrant 1.16 or later. Specs are cached per collection and forgotten when a call on the
/// collection fails, so a collection dropped or recreated elsewhere is looked up again.
#[derive(Clone)]
pub struct RemoteIndex {
    client: Qdrant,
    options: RemoteOptions,
    lexical: Arc<Lexical>,
    specs: Arc<RwLock<HashMap<String, StoredSpec>>>,
}

impl fmt::Debug for RemoteIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteIndex")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl RemoteIndex {
    /// A client for the server in `options`. Connections are opened on first use, so this does not
    /// fail when the server is down; [`VectorIndex::ping`] checks it.
    pub fn connect(options: RemoteOptions) -> Result<Self, IndexError> {
        let url = options.url.trim().to_owned();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(IndexError::Unavailable(format!(
                "`{url}` is not a Qdrant URL; set `[index] url` to http://host:6334 (or https://)"
            )));
        }
        let mut builder = Qdrant::from_url(&url)
            .timeout(options.timeout)
            .connect_timeout(options.connect_timeout)
            .skip_compatibility_check();
        if let Some(api_key) = &options.api_key {
            builder = builder.api_key(api_key.clone());
        }
        let client = builder.build().map_err(|err| map_error(err, &url, None))?;
        Ok(Self {
            client,
            options: RemoteOptions { url, ..options },
            lexical: Arc::new(Lexical::new()?),
            specs: Arc::default(),
        })
    }

    /// A client for `url` with the default options.
    pub fn from_url(url: impl Into<String>) -> Result<Self, IndexError> {
        Self::connect(RemoteOptions::new(url))
    }

    /// The options in use.
    pub fn options(&self) -> &RemoteOptions {
        &self.options
    }

    /// The Qdrant collection that holds Cairn collection `name`.
    pub fn qdrant_collection(&self, name: &str) -> String {
        format!("{}{name}", self.options.prefix)
    }

    fn error(&self, err: QdrantError, collection: Option<&str>) -> IndexError {
        map_error(err, &self.options.url, collection)
    }

    /// Maps an error on a collection and forgets its cached spec.
    fn collection_error(&self, err: QdrantError, name: &str) -> IndexError {
        self.forget(name);
        self.error(err, Some(name))
    }

    fn cached(&self, name: &str) -> Option<StoredSpec> {
        let specs = self.specs.read().unwrap_or_else(PoisonError::into_inner);
        specs.get(name).cloned()
    }

    fn remember(&self, name: &str, spec: StoredSpec) {
        let mut specs = self.specs.write().unwrap_or_else(PoisonError::into_inner);
        specs.insert(name.to_owned(), spec);
    }

    fn forget(&self, name: &str) {
        let mut specs = self.specs.write().unwrap_or_else(PoisonError::into_inner);
        specs.remove(name);
    }

    /// The spec in the collection's metadata: `UnknownCollection` when the collection does not
    /// exist, `None` when it has no spec.
    async fn stored_spec(&self, name: &str) -> Result<Option<StoredSpec>, IndexError> {
        let info = self
            .client
            .collection_info(self.qdrant_collection(name))
            .await
            .map_err(|err| self.collection_error(err, name))?;
        Ok(info.result.as_ref().and_then(convert::stored_spec))
    }

    /// The spec in the collection's metadata, which must be there.
    async fn fetch_spec(&self, name: &str) -> Result<StoredSpec, IndexError> {
        self.stored_spec(name).await?.ok_or_else(|| {
            IndexError::Backend(format!(
                "Qdrant collection `{}` at {} has no Cairn spec in its metadata: it was not created by Cairn, or the server is older than Qdrant {}.{}; drop it, or choose another `[index] prefix`",
                self.qdrant_collection(name),
                self.options.url,
                MIN_SERVER.0,
                MIN_SERVER.1
            ))
        })
    }

    /// The collection's spec, cached.
    async fn spec(&self, name: &str) -> Result<StoredSpec, IndexError> {
        if let Some(spec) = self.cached(name) {
            return Ok(spec);
        }
        let spec = self.fetch_spec(name).await?;
        spec.check_layout(name)?;
        self.remember(name, spec.clone());
        Ok(spec)
    }

    async fn create(&self, spec: &IndexSpec) -> Result<(), IndexError> {
        let name = spec.collection.as_str();
        let qdrant_name = self.qdrant_collection(name);
        match self
            .client
            .create_collection(convert::create_collection(&qdrant_name, spec))
            .await
        {
            Ok(_) => {}
            // Created meanwhile by another replica: hold it to this spec.
            Err(err) if is_already_exists(&err) => return self.check_existing(spec).await,
            Err(err) => return Err(self.error(err, None)),
        }
        self.client
            .create_field_index(CreateFieldIndexCollection {
                collection_name: qdrant_name.clone(),
                wait: Some(true),
                field_name: FILTER_TERMS.to_owned(),
                field_type: Some(FieldType::Keyword.into()),
                ..CreateFieldIndexCollection::default()
            })
            .await
            .map_err(|err| self.collection_error(err, name))?;
        match self.stored_spec(name).await? {
            Some(stored) => {
                self.remember(name, stored);
                Ok(())
            }
            None => {
                // The server dropped the metadata: it predates collection metadata. Remove the
                // collection rather than leave one whose model cannot be checked.
                tracing::warn!(collection = %qdrant_name, url = %self.options.url, "Qdrant dropped the collection metadata; deleting the new collection");
                let _ = self.client.delete_collection(qdrant_name.as_str()).await;
                Err(IndexError::Unavailable(format!(
                    "Qdrant at {} did not keep the collection metadata Cairn stores its embedding model in; upgrade Qdrant to {}.{} or later",
                    self.options.url, MIN_SERVER.0, MIN_SERVER.1
                )))
            }
        }
    }

    async fn check_existing(&self, spec: &IndexSpec) -> Result<(), IndexError> {
        let name = spec.collection.as_str();
        let stored = self.fetch_spec(name).await?;
        stored.check(spec)?;
        self.remember(name, stored);
        Ok(())
    }

    fn hit_payload() -> WithPayloadSelector {
        WithPayloadSelector {
            selector_options: Some(PayloadSelector::Include(PayloadIncludeSelector {
                fields: HIT_PAYLOAD_KEYS.iter().map(|k| (*k).to_owned()).collect(),
            })),
        }
    }

    fn with_vectors(enabled: bool) -> WithVectorsSelector {
        WithVectorsSelector {
            selector_options: Some(if enabled {
                VectorsSelectorOptions::Include(VectorsSelector {
                    names: vec![DENSE_VECTOR.to_owned()],
                })
            } else {
                VectorsSelectorOptions::Enable(false)
            }),
        }
    }
}

/// Parses `major.minor` from a server version such as `1.16.2`; `None` when it is not one.
fn parse_version(version: &str) -> Option<(u64, u64)> {
    let mut parts = version.trim_start_matches('v').split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

#[async_trait]
impl VectorIndex for RemoteIndex {
    fn backend(&self) -> &'static str {
        "qdrant"
    }

    async fn ping(&self) -> Result<(), IndexError> {
        let reply = self
            .client
            .health_check()
            .await
            .map_err(|err| self.error(err, None))?;
        match parse_version(&reply.version) {
            Some(version) if version < MIN_SERVER => Err(IndexError::Unavailable(format!(
                "Qdrant at {} is version {}; Cairn needs {}.{} or later (it keeps each collection's embedding model in collection metadata): upgrade Qdrant",
                self.options.url, reply.version, MIN_SERVER.0, MIN_SERVER.1
            ))),
            _ => Ok(()),
        }
    }

    async fn ensure_collection(&self, spec: &IndexSpec) -> Result<(), IndexError> {
        spec::validate(spec)?;
        // Always asked of the server (not the cache): the collection may have been dropped or
        // recreated elsewhere, and this is called once per ingest, not per point.
        let name = spec.collection.as_str();
        match self.fetch_spec(name).await {
            Ok(stored) => {
                stored.check(spec)?;
                self.remember(name, stored);
                Ok(())
            }
            Err(IndexError::UnknownCollection(_)) => self.create(spec).await,
            Err(err) => Err(err),
        }
    }

    async fn drop_collection(&self, collection: &str) -> Result<bool, IndexError> {
        self.forget(collection);
        let qdrant_name = self.qdrant_collection(collection);
        let exists = self
            .client
            .collection_exists(qdrant_name.as_str())
            .await
            .map_err(|err| self.error(err, None))?;
        if !exists {
            return Ok(false);
        }
        match self.client.delete_collection(qdrant_name.as_str()).await {
            Ok(_) => Ok(true),
            Err(err) if is_not_found(&err) => Ok(false),
            Err(err) => Err(self.error(err, None)),
        }
    }

    async fn upsert(&self, collection: &str, points: Vec<IndexPoint>) -> Result<(), IndexError> {
        let spec = self.spec(collection).await?;
        spec.check_points(collection, &points)?;
        let lexical = self.lexical.clone();
        let mut pending = tokio::task::spawn_blocking(move || {
            points
                .iter()
                .map(|p| convert::point(p, &lexical))
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|err| IndexError::Backend(format!("computing BM25 term weights failed: {err}")))?;
        let qdrant_name = self.qdrant_collection(collection);
        let batch = self.options.upsert_batch.max(1);
        while !pending.is_empty() {
            let rest = pending.split_off(batch.min(pending.len()));
            self.client
                .upsert_points(UpsertPoints {
                    collection_name: qdrant_name.clone(),
                    wait: Some(true),
                    points: pending,
                    ..UpsertPoints::default()
                })
                .await
                .map_err(|err| self.collection_error(err, collection))?;
            pending = rest;
        }
        Ok(())
    }

    async fn delete(&self, collection: &str, chunk_ids: &[Uuid]) -> Result<(), IndexError> {
        self.spec(collection).await?;
        let qdrant_name = self.qdrant_collection(collection);
        for ids in chunk_ids.chunks(DELETE_BATCH) {
            let ids = ids.iter().copied().map(PointId::from).collect();
            self.client
                .delete_points(DeletePoints {
                    collection_name: qdrant_name.clone(),
                    wait: Some(true),
                    points: Some(PointsSelector {
                        points_selector_one_of: Some(PointsSelectorOneOf::Points(PointsIdsList {
                            ids,
                        })),
                    }),
                    ..DeletePoints::default()
                })
                .await
                .map_err(|err| self.collection_error(err, collection))?;
        }
        Ok(())
    }

    async fn point_ids(&self, collection: &str) -> Result<Vec<Uuid>, IndexError> {
        self.spec(collection).await?;
        let qdrant_name = self.qdrant_collection(collection);
        let mut ids = Vec::new();
        let mut offset = None;
        loop {
            let page = self
                .client
                .scroll(ScrollPoints {
                    collection_name: qdrant_name.clone(),
                    offset,
                    limit: Some(SCROLL_PAGE),
                    with_payload: Some(false.into()),
                    with_vectors: Some(false.into()),
                    ..ScrollPoints::default()
                })
                .await
                .map_err(|err| self.collection_error(err, collection))?;
            for point in page.result {
                ids.push(convert::point_uuid(collection, point.id)?);
            }
            match page.next_page_offset {
                Some(next) => offset = Some(next),
                None => return Ok(ids),
            }
        }
    }

    async fn search(&self, query: &IndexQuery) -> Result<Vec<ScoredPoint>, IndexError> {
        let name = query.collection.as_str();
        let spec = self.spec(name).await?;
        let (input, using) = match &query.probe {
            Probe::Dense(vector) => {
                spec.check_query(name, vector)?;
                (VectorInput::new_dense(vector.clone()), DENSE_VECTOR)
            }
            Probe::Lexical(text) => {
                let terms = self.lexical.query(text);
                if terms.is_empty() {
                    return Ok(Vec::new());
                }
                (
                    VectorInput::new_sparse(terms.indices, terms.values),
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
            .map(|f| convert::filter(&f));
        let response = self
            .client
            .query(QueryPoints {
                collection_name: self.qdrant_collection(name),
                query: Some(Query::new_nearest(input)),
                using: Some(using.to_owned()),
                filter,
                limit: Some(query.top_k as u64),
                with_payload: Some(Self::hit_payload()),
                with_vectors: Some(Self::with_vectors(query.with_vectors)),
                ..QueryPoints::default()
            })
            .await
            .map_err(|err| self.collection_error(err, name))?;
        response
            .result
            .into_iter()
            .map(|hit| convert::hit(name, hit, query.with_vectors))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_compared_by_major_and_minor() {
        assert_eq!(parse_version("1.16.2"), Some((1, 16)));
        assert_eq!(parse_version("v1.9.0"), Some((1, 9)));
        assert!(parse_version("1.9.0").is_some_and(|v| v < MIN_SERVER));
        assert_eq!(parse_version("dev"), None);
    }

    #[test]
    fn urls_must_be_http() {
        let err = RemoteIndex::from_url("localhost:6334").expect_err("no scheme");
        assert!(err.to_string().contains("[index] url"), "{err}");
        let index = RemoteIndex::from_url("http://localhost:6334").expect("lazy client");
        assert_eq!(index.qdrant_collection("kb"), "cairn_kb");
        assert!(!format!("{:?}", index.options().clone().api_key("secret")).contains("secret"));
    }
}
