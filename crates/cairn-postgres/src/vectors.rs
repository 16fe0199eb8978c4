//! [`VectorIndex`] over pgvector: one table per collection, an HNSW index for dense search,
//! PostgreSQL full text search for lexical search, and jsonb containment for metadata filters.
//!
//! # Layout
//!
//! `vector_collections` (migration `0002_vectors.sql`) registers each collection: its name, the
//! embedding model and dimension it is bound to, and its table, `vectors_<hex of the registry id>`.
//! Table names are generated here from that id, never taken from user text; every user value is a
//! bind parameter. Each table holds
//!
//! - `chunk_id UUID PRIMARY KEY`, `document_id UUID`,
//! - `embedding vector(N)` with an HNSW index (`vector_cosine_ops`; pgvector indexes at most 2,000
//!   dimensions, so wider collections are searched by an exact scan),
//! - `metadata JSONB` with a GIN index (`jsonb_path_ops`) for filters,
//! - `terms TSVECTOR`, `to_tsvector('english', text)` of the chunk text, with a GIN index. The text
//!   itself is not stored: the catalog holds it.
//!
//! # Searches
//!
//! Dense: `ORDER BY embedding <=> probe LIMIT k`, score `1 - cosine distance`. Each search runs in a
//! transaction that sets `hnsw.ef_search` and `hnsw.iterative_scan = relaxed_order` (pgvector 0.8),
//! so a selective filter still yields `k` hits: the scan goes on until enough rows pass the filter
//! (up to `hnsw.max_scan_tuples`). Relaxed order can return rows slightly out of order, so hits are
//! re-sorted by distance here.
//!
//! Lexical: the query text's lexemes (`to_tsvector('english', query)`: stemmed, stop words removed)
//! are joined with `|`, so a chunk matches when it shares any lexeme with the question; matches are
//! ranked by `ts_rank(terms, query, 1)` (term frequency with saturation, divided by
//! `1 + log(length)`). A query with no lexemes (empty, or only stop words) matches nothing.
//!
//! Filters: `Equals` is `metadata @> {field: value} AND metadata -> field = value`; the containment
//! can use the GIN index, the equality makes it exact for array and object values. `AnyOf` is the
//! same with `= ANY(...)`. Neither is ever NULL, so `must_not` (`NOT (...)`) keeps rows that lack the
//! field, as [`Filter::matches`] does. One difference: PostgreSQL compares JSON numbers by value, so
//! `1` equals `1.0` here, which `serde_json` does not.
//!
//! # Bulk loads
//!
//! Inserting into a table with an HNSW index is far slower than building the index afterwards. For a
//! large first load, call [`PgVectorIndex::drop_dense_index`], upsert, then
//! [`PgVectorIndex::build_dense_index`] (raise `maintenance_work_mem` on the server so the graph fits
//! in memory). Searches stay correct without the index, as exact scans.

use std::collections::HashSet;

use async_trait::async_trait;
use cairn_core::index::{
    Condition, Filter, IndexError, IndexPoint, IndexQuery, IndexSpec, Probe, ScoredPoint,
    VectorIndex,
};
use pgvector::Vector;
use serde_json::Value;
use sqlx::postgres::PgArguments;
use sqlx::query::QueryAs;
use sqlx::{AssertSqlSafe, PgExecutor, PgPool, Postgres};
use uuid::Uuid;

/// The widest vector pgvector's `vector` type stores.
const MAX_DIMENSION: usize = 16_000;
/// The widest `vector` column pgvector's HNSW index accepts.
const HNSW_MAX_DIMENSION: usize = 2_000;
/// pgvector's upper bound for `hnsw.ef_search`.
const MAX_EF_SEARCH: u32 = 1_000;
/// Points per `INSERT` statement (each carries its vectors as one array parameter).
const UPSERT_BATCH: usize = 500;

/// Tuning of [`PgVectorIndex`] searches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgVectorOptions {
    /// `hnsw.ef_search`: the size of the candidate list an HNSW search keeps (1 to 1,000;
    /// pgvector's default is 40). Higher improves recall and costs time.
    pub ef_search: u32,
    /// `hnsw.max_scan_tuples`: how many index entries a filtered (iterative) scan may visit before it
    /// stops, possibly with fewer than `top_k` hits (pgvector's default is 20,000).
    pub max_scan_tuples: u32,
}

impl Default for PgVectorOptions {
    fn default() -> Self {
        PgVectorOptions {
            ef_search: 100,
            max_scan_tuples: 20_000,
        }
    }
}

/// The pgvector index: collections as tables in a PostgreSQL database that has the `vector`
/// extension and Cairn's migrations (see [`PgVectorIndex::migrate`]).
#[derive(Debug, Clone)]
pub struct PgVectorIndex {
    pool: PgPool,
    options: PgVectorOptions,
}

/// A collection as the registry records it.
#[derive(Debug)]
struct Registered {
    table: String,
    model: String,
    dimension: usize,
}

impl PgVectorIndex {
    /// An index over `pool` with default search options.
    pub fn new(pool: PgPool) -> Self {
        Self::with_options(pool, PgVectorOptions::default())
    }

    /// An index over `pool` with the given search options.
    pub fn with_options(pool: PgPool, options: PgVectorOptions) -> Self {
        PgVectorIndex { pool, options }
    }

    /// The search options in force.
    pub fn options(&self) -> &PgVectorOptions {
        &self.options
    }

    /// Applies pending PostgreSQL migrations: the catalog's and the vector registry's, which share
    /// one sequence (`migrations/postgres`). The same as [`crate::PostgresCatalog::migrate`].
    pub async fn migrate(&self) -> Result<(), IndexError> {
        crate::MIGRATOR.run(&self.pool).await.map_err(|e| {
            IndexError::Backend(format!(
                "PostgreSQL migration failed: {e}; the vector index needs the pgvector extension \
                 (`CREATE EXTENSION vector` must be allowed to the connecting role)"
            ))
        })
    }

    /// Drops the collection's HNSW index, so that a bulk load does not maintain it row by row.
    /// Dense searches stay correct (exact scans) until [`PgVectorIndex::build_dense_index`].
    pub async fn drop_dense_index(&self, collection: &str) -> Result<(), IndexError> {
        let registered = self.require(collection).await?;
        let table = &registered.table;
        sqlx::query(AssertSqlSafe(format!("DROP INDEX IF EXISTS {table}_hnsw")))
            .execute(&self.pool)
            .await
            .map_err(|e| table_error(collection, e))?;
        Ok(())
    }

    /// Builds the collection's HNSW index if it is missing (after a bulk load, or after
    /// [`PgVectorIndex::drop_dense_index`]). Writes to the collection wait while it builds; reads
    /// do not. A no-op for collections wider than pgvector's HNSW limit of 2,000 dimensions.
    pub async fn build_dense_index(&self, collection: &str) -> Result<(), IndexError> {
        let registered = self.require(collection).await?;
        if registered.dimension > HNSW_MAX_DIMENSION {
            return Ok(());
        }
        sqlx::query(AssertSqlSafe(hnsw_index_sql(&registered.table)))
            .execute(&self.pool)
            .await
            .map_err(|e| table_error(collection, e))?;
        Ok(())
    }

    /// The registry entry of `collection`, or [`IndexError::UnknownCollection`].
    async fn require(&self, collection: &str) -> Result<Registered, IndexError> {
        registered(&self.pool, collection)
            .await?
            .ok_or_else(|| IndexError::UnknownCollection(collection.to_owned()))
    }

    async fn dense_search(
        &self,
        registered: &Registered,
        query: &IndexQuery,
        probe: &[f32],
    ) -> Result<Vec<ScoredPoint>, IndexError> {
        if probe.len() != registered.dimension {
            return Err(IndexError::Backend(format!(
                "the query vector has {} dimensions; collection `{}` holds {} ({}): embed the query \
                 with the collection's model",
                probe.len(),
                query.collection,
                registered.dimension,
                registered.model
            )));
        }
        if probe.iter().any(|x| !x.is_finite()) {
            return Err(IndexError::Backend(
                "the query vector contains NaN or infinity; check the embedding model's output"
                    .to_owned(),
            ));
        }
        let (filter, params) = filter_sql(query.filter.as_ref(), 3);
        let table = &registered.table;
        let vector = vector_column(query.with_vectors);
        let sql = format!(
            "SELECT chunk_id, document_id, (embedding <=> $1)::float8 AS distance, {vector} \
             FROM {table} WHERE {filter} ORDER BY embedding <=> $1 LIMIT $2"
        );
        let mut tx = self.pool.begin().await.map_err(index_error)?;
        sqlx::query(
            "SELECT set_config('hnsw.ef_search', $1, true), \
                    set_config('hnsw.iterative_scan', 'relaxed_order', true), \
                    set_config('hnsw.max_scan_tuples', $2, true)",
        )
        .bind(self.options.ef_search.clamp(1, MAX_EF_SEARCH).to_string())
        .bind(self.options.max_scan_tuples.max(1).to_string())
        .execute(&mut *tx)
        .await
        .map_err(index_error)?;
        let rows = bind_params(
            sqlx::query_as::<_, (Uuid, Uuid, f64, Option<Vector>)>(AssertSqlSafe(sql))
                .bind(Vector::from(probe.to_vec()))
                .bind(limit(query.top_k)),
            params,
        )
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| table_error(&query.collection, e))?;
        tx.commit().await.map_err(index_error)?;
        let mut hits: Vec<(f64, ScoredPoint)> = rows
            .into_iter()
            .map(|(chunk_id, document_id, distance, vector)| {
                let point = ScoredPoint {
                    chunk_id,
                    document_id,
                    score: (1.0 - distance) as f32,
                    vector: vector.map(Vec::from),
                };
                (distance, point)
            })
            .collect();
        // Iterative scans in relaxed order may return rows slightly out of order.
        hits.sort_by(|(a, x), (b, y)| a.total_cmp(b).then(x.chunk_id.cmp(&y.chunk_id)));
        Ok(hits.into_iter().map(|(_, point)| point).collect())
    }

    async fn lexical_search(
        &self,
        registered: &Registered,
        query: &IndexQuery,
        text: &str,
    ) -> Result<Vec<ScoredPoint>, IndexError> {
        if text.trim().is_empty() {
            return Ok(Vec::new());
        }
        let (filter, params) = filter_sql(query.filter.as_ref(), 3);
        let table = &registered.table;
        let vector = vector_column(query.with_vectors);
        // The OR query is assembled from the lexemes as tsquery text, each quoted ('' for a quote,
        // \\ for a backslash), since lexemes such as URLs may contain tsquery operators.
        let sql = format!(
            "SELECT chunk_id, document_id, ts_rank(terms, q.query, 1) AS score, {vector} \
             FROM {table}, \
                  (SELECT (SELECT string_agg('''' || replace(replace(lexeme, '\\', '\\\\'), '''', '''''') || '''', ' | ') \
                           FROM unnest(to_tsvector('english', $1)))::tsquery AS query) AS q \
             WHERE terms @@ q.query AND {filter} \
             ORDER BY score DESC, chunk_id LIMIT $2"
        );
        let rows = bind_params(
            sqlx::query_as::<_, (Uuid, Uuid, f32, Option<Vector>)>(AssertSqlSafe(sql))
                .bind(without_nul(text))
                .bind(limit(query.top_k)),
            params,
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| table_error(&query.collection, e))?;
        Ok(rows
            .into_iter()
            .map(|(chunk_id, document_id, score, vector)| ScoredPoint {
                chunk_id,
                document_id,
                score,
                vector: vector.map(Vec::from),
            })
            .collect())
    }
}

#[async_trait]
impl VectorIndex for PgVectorIndex {
    fn backend(&self) -> &'static str {
        "pgvector"
    }

    async fn ping(&self) -> Result<(), IndexError> {
        sqlx::query("SELECT 1 FROM vector_collections LIMIT 1")
            .fetch_optional(&self.pool)
            .await
            .map_err(index_error)?;
        Ok(())
    }

    async fn ensure_collection(&self, spec: &IndexSpec) -> Result<(), IndexError> {
        if spec.dimension == 0 || spec.dimension > MAX_DIMENSION {
            return Err(IndexError::Backend(format!(
                "collection `{}`: pgvector stores vectors of 1 to {MAX_DIMENSION} dimensions, not {}; \
                 choose another embedding model",
                spec.collection, spec.dimension
            )));
        }
        let mut tx = self.pool.begin().await.map_err(index_error)?;
        // Replicas creating the same collection at once serialise here; the second sees the first's
        // registry row once the first commits.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(format!("vector_collection:{}", spec.collection))
            .execute(&mut *tx)
            .await
            .map_err(index_error)?;
        if let Some(existing) = registered(&mut *tx, &spec.collection).await? {
            tx.commit().await.map_err(index_error)?;
            if existing.model != spec.embedding_model || existing.dimension != spec.dimension {
                return Err(IndexError::ModelMismatch {
                    collection: spec.collection.clone(),
                    indexed_model: existing.model,
                    indexed_dimension: existing.dimension,
                    requested_model: spec.embedding_model.clone(),
                    requested_dimension: spec.dimension,
                });
            }
            return Ok(());
        }
        let id = Uuid::new_v4();
        let table = table_name(id);
        let dimension = spec.dimension;
        let mut statements = vec![
            format!(
                "CREATE TABLE {table} (\
                     chunk_id    UUID PRIMARY KEY,\
                     document_id UUID NOT NULL,\
                     embedding   vector({dimension}) NOT NULL,\
                     metadata    JSONB NOT NULL DEFAULT '{{}}',\
                     terms       TSVECTOR NOT NULL)"
            ),
            format!("CREATE INDEX {table}_terms ON {table} USING gin (terms)"),
            format!("CREATE INDEX {table}_metadata ON {table} USING gin (metadata jsonb_path_ops)"),
        ];
        if dimension <= HNSW_MAX_DIMENSION {
            statements.push(hnsw_index_sql(&table));
        } else {
            tracing::warn!(
                collection = %spec.collection,
                dimension,
                "pgvector cannot index more than {HNSW_MAX_DIMENSION} dimensions with HNSW; \
                 dense searches of this collection are exact scans"
            );
        }
        for statement in statements {
            sqlx::query(AssertSqlSafe(statement))
                .execute(&mut *tx)
                .await
                .map_err(index_error)?;
        }
        sqlx::query(
            "INSERT INTO vector_collections (id, name, embedding_model, dimension, table_name) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(&spec.collection)
        .bind(&spec.embedding_model)
        .bind(
            i32::try_from(dimension).map_err(|_| {
                IndexError::Backend(format!("dimension {dimension} is out of range"))
            })?,
        )
        .bind(&table)
        .execute(&mut *tx)
        .await
        .map_err(index_error)?;
        tx.commit().await.map_err(index_error)?;
        tracing::info!(collection = %spec.collection, %table, dimension, model = %spec.embedding_model,
            "created pgvector collection");
        Ok(())
    }

    async fn drop_collection(&self, collection: &str) -> Result<bool, IndexError> {
        let mut tx = self.pool.begin().await.map_err(index_error)?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(format!("vector_collection:{collection}"))
            .execute(&mut *tx)
            .await
            .map_err(index_error)?;
        let id: Option<Uuid> =
            sqlx::query_scalar("DELETE FROM vector_collections WHERE name = $1 RETURNING id")
                .bind(collection)
                .fetch_optional(&mut *tx)
                .await
                .map_err(index_error)?;
        if let Some(id) = id {
            let table = table_name(id);
            sqlx::query(AssertSqlSafe(format!("DROP TABLE IF EXISTS {table}")))
                .execute(&mut *tx)
                .await
                .map_err(index_error)?;
        }
        tx.commit().await.map_err(index_error)?;
        Ok(id.is_some())
    }

    async fn upsert(&self, collection: &str, points: Vec<IndexPoint>) -> Result<(), IndexError> {
        let registered = self.require(collection).await?;
        for point in &points {
            if point.vector.len() != registered.dimension {
                return Err(IndexError::DimensionMismatch {
                    collection: collection.to_owned(),
                    chunk_id: point.chunk_id,
                    expected: registered.dimension,
                    got: point.vector.len(),
                });
            }
            if point.vector.iter().any(|x| !x.is_finite()) {
                return Err(IndexError::Backend(format!(
                    "the vector for chunk {} contains NaN or infinity; check the embedding model's output",
                    point.chunk_id
                )));
            }
        }
        if points.is_empty() {
            return Ok(());
        }
        // One statement cannot update a row twice: the last point for a chunk id wins.
        let mut seen = HashSet::new();
        let mut points: Vec<IndexPoint> = points
            .into_iter()
            .rev()
            .filter(|p| seen.insert(p.chunk_id))
            .collect();
        points.reverse();
        let table = &registered.table;
        let sql = format!(
            "INSERT INTO {table} (chunk_id, document_id, embedding, metadata, terms) \
             SELECT u.chunk_id, u.document_id, u.embedding, u.metadata, to_tsvector('english', u.body) \
             FROM UNNEST($1::uuid[], $2::uuid[], $3::vector[], $4::jsonb[], $5::text[]) \
                  AS u(chunk_id, document_id, embedding, metadata, body) \
             ON CONFLICT (chunk_id) DO UPDATE SET document_id = EXCLUDED.document_id, \
                 embedding = EXCLUDED.embedding, metadata = EXCLUDED.metadata, terms = EXCLUDED.terms"
        );
        let mut tx = self.pool.begin().await.map_err(index_error)?;
        for batch in points.chunks(UPSERT_BATCH) {
            let mut chunk_ids = Vec::with_capacity(batch.len());
            let mut document_ids = Vec::with_capacity(batch.len());
            let mut vectors = Vec::with_capacity(batch.len());
            let mut metadata = Vec::with_capacity(batch.len());
            let mut bodies = Vec::with_capacity(batch.len());
            for point in batch {
                chunk_ids.push(point.chunk_id);
                document_ids.push(point.document_id);
                vectors.push(Vector::from(point.vector.clone()));
                metadata.push(Value::Object(point.metadata.clone()));
                bodies.push(without_nul(&point.text));
            }
            sqlx::query(AssertSqlSafe(sql.as_str()))
                .bind(chunk_ids)
                .bind(document_ids)
                .bind(vectors)
                .bind(metadata)
                .bind(bodies)
                .execute(&mut *tx)
                .await
                .map_err(|e| table_error(collection, e))?;
        }
        tx.commit().await.map_err(index_error)?;
        Ok(())
    }

    async fn delete(&self, collection: &str, chunk_ids: &[Uuid]) -> Result<(), IndexError> {
        let registered = self.require(collection).await?;
        if chunk_ids.is_empty() {
            return Ok(());
        }
        let table = &registered.table;
        sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE chunk_id = ANY($1)"
        )))
        .bind(chunk_ids)
        .execute(&self.pool)
        .await
        .map_err(|e| table_error(collection, e))?;
        Ok(())
    }

    async fn point_ids(&self, collection: &str) -> Result<Vec<Uuid>, IndexError> {
        let registered = self.require(collection).await?;
        let table = &registered.table;
        sqlx::query_scalar(AssertSqlSafe(format!("SELECT chunk_id FROM {table}")))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| table_error(collection, e))
    }

    async fn search(&self, query: &IndexQuery) -> Result<Vec<ScoredPoint>, IndexError> {
        let registered = self.require(&query.collection).await?;
        if query.top_k == 0 {
            return Ok(Vec::new());
        }
        match &query.probe {
            Probe::Dense(probe) => self.dense_search(&registered, query, probe).await,
            Probe::Lexical(text) => self.lexical_search(&registered, query, text).await,
        }
    }
}

/// The table of the collection registered under `id`: generated, so safe to splice into SQL.
fn table_name(id: Uuid) -> String {
    format!("vectors_{}", id.simple())
}

/// The statement creating a table's HNSW index (cosine distance, pgvector's default `m` and
/// `ef_construction`).
fn hnsw_index_sql(table: &str) -> String {
    format!(
        "CREATE INDEX IF NOT EXISTS {table}_hnsw ON {table} USING hnsw (embedding vector_cosine_ops)"
    )
}

/// The select-list entry for a hit's vector: the stored one, or a typed NULL.
fn vector_column(with_vectors: bool) -> &'static str {
    if with_vectors {
        "embedding"
    } else {
        "NULL::vector AS embedding"
    }
}

/// `top_k` as a SQL `LIMIT`.
fn limit(top_k: usize) -> i64 {
    i64::try_from(top_k).unwrap_or(i64::MAX)
}

/// PostgreSQL text cannot hold NUL; for term extraction a space is as good.
fn without_nul(text: &str) -> String {
    text.replace('\0', " ")
}

/// Looks `collection` up in the registry.
async fn registered<'e>(
    executor: impl PgExecutor<'e>,
    collection: &str,
) -> Result<Option<Registered>, IndexError> {
    let row: Option<(Uuid, String, i32)> = sqlx::query_as(
        "SELECT id, embedding_model, dimension FROM vector_collections WHERE name = $1",
    )
    .bind(collection)
    .fetch_optional(executor)
    .await
    .map_err(index_error)?;
    row.map(|(id, model, dimension)| {
        let dimension = usize::try_from(dimension).map_err(|_| {
            IndexError::Backend(format!(
                "collection `{collection}` is registered with dimension {dimension}, which is corrupt"
            ))
        })?;
        Ok(Registered {
            table: table_name(id),
            model,
            dimension,
        })
    })
    .transpose()
}

/// A filter parameter, bound after the query's own.
#[derive(Debug)]
enum Param {
    Text(String),
    Json(Value),
    JsonArray(Vec<Value>),
}

/// The SQL condition for `filter` (`TRUE` when there is none) and its parameters, numbered from
/// `first`.
fn filter_sql(filter: Option<&Filter>, first: usize) -> (String, Vec<Param>) {
    let mut params = Vec::new();
    let mut clauses = Vec::new();
    if let Some(filter) = filter {
        for condition in &filter.must {
            clauses.push(condition_sql(condition, first, &mut params));
        }
        for condition in &filter.must_not {
            clauses.push(format!(
                "NOT {}",
                condition_sql(condition, first, &mut params)
            ));
        }
    }
    if clauses.is_empty() {
        ("TRUE".to_owned(), params)
    } else {
        (clauses.join(" AND "), params)
    }
}

/// One condition; never NULL, so that its negation keeps rows without the field.
fn condition_sql(condition: &Condition, first: usize, params: &mut Vec<Param>) -> String {
    let mut push = |param: Param| {
        params.push(param);
        first + params.len() - 1
    };
    match condition {
        Condition::Equals { field, value } => {
            let object = singleton(field, value);
            let contains = push(Param::Json(object));
            let name = push(Param::Text(field.clone()));
            let equals = push(Param::Json(value.clone()));
            format!(
                "(metadata @> ${contains}::jsonb AND (metadata -> ${name}::text) = ${equals}::jsonb)"
            )
        }
        Condition::AnyOf { field, values } => {
            if values.is_empty() {
                return "FALSE".to_owned();
            }
            let objects = values.iter().map(|v| singleton(field, v)).collect();
            let contains = push(Param::JsonArray(objects));
            let name = push(Param::Text(field.clone()));
            let any = push(Param::JsonArray(values.clone()));
            format!(
                "(metadata @> ANY(${contains}::jsonb[]) AND (metadata -> ${name}::text) = ANY(${any}::jsonb[]))"
            )
        }
    }
}

/// `{field: value}`.
fn singleton(field: &str, value: &Value) -> Value {
    let mut object = serde_json::Map::new();
    object.insert(field.to_owned(), value.clone());
    Value::Object(object)
}

/// Binds the filter's parameters after the query's own.
fn bind_params<'q, O>(
    mut query: QueryAs<'q, Postgres, O, PgArguments>,
    params: Vec<Param>,
) -> QueryAs<'q, Postgres, O, PgArguments> {
    for param in params {
        query = match param {
            Param::Text(text) => query.bind(text),
            Param::Json(value) => query.bind(value),
            Param::JsonArray(values) => query.bind(values),
        };
    }
    query
}

/// Maps an error of a statement on a collection's table: the table vanishing under the statement
/// (the collection was dropped meanwhile) is an unknown collection.
fn table_error(collection: &str, error: sqlx::Error) -> IndexError {
    match &error {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("42P01") => {
            IndexError::UnknownCollection(collection.to_owned())
        }
        _ => index_error(error),
    }
}

/// Classifies a database error: what the caller can wait out is `Unavailable`, the rest `Backend`.
fn index_error(error: sqlx::Error) -> IndexError {
    match &error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => IndexError::Unavailable(format!(
            "cannot reach PostgreSQL ({error}); check that the server is running and reachable at \
             the configured database URL"
        )),
        sqlx::Error::TypeNotFound { .. } => IndexError::Backend(format!(
            "{error}; install the pgvector extension and run `cairn migrate`"
        )),
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            if code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03" | "53300") {
                IndexError::Unavailable(format!(
                    "PostgreSQL is not accepting queries ({error}); retry when it is back"
                ))
            } else if code == "42P01" && db.message().contains("vector_collections") {
                IndexError::Backend(format!(
                    "the vector index is not set up in this database ({error}); run `cairn migrate`"
                ))
            } else {
                IndexError::Backend(format!("PostgreSQL vector index: {error}"))
            }
        }
        _ => IndexError::Backend(format!("PostgreSQL vector index: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn table_names_are_generated_identifiers() {
        let name = table_name(Uuid::new_v4());
        assert_eq!(name.len(), "vectors_".len() + 32);
        assert!(
            name.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        );
        // The longest index name stays within PostgreSQL's 63-byte identifiers.
        assert!(format!("{name}_metadata").len() <= 63);
    }

    #[test]
    fn filters_become_numbered_parameters() {
        let filter = Filter {
            must: vec![Condition::Equals {
                field: "lang".into(),
                value: json!("en"),
            }],
            must_not: vec![
                Condition::AnyOf {
                    field: "tier".into(),
                    values: vec![json!(1), json!(2)],
                },
                Condition::AnyOf {
                    field: "x".into(),
                    values: vec![],
                },
            ],
        };
        let (sql, params) = filter_sql(Some(&filter), 3);
        assert_eq!(
            sql,
            "(metadata @> $3::jsonb AND (metadata -> $4::text) = $5::jsonb) AND \
             NOT (metadata @> ANY($6::jsonb[]) AND (metadata -> $7::text) = ANY($8::jsonb[])) AND \
             NOT FALSE"
        );
        assert_eq!(params.len(), 6);
        assert!(matches!(&params[0], Param::Json(v) if *v == json!({"lang": "en"})));
        assert!(
            matches!(&params[3], Param::JsonArray(v) if *v == vec![json!({"tier": 1}), json!({"tier": 2})])
        );
        assert_eq!(filter_sql(None, 3).0, "TRUE");
        assert_eq!(filter_sql(Some(&Filter::default()), 3).0, "TRUE");
    }
}
