//! Documents and their chunks, reconciled by content hash.

use cairn_core::catalog::{CatalogError, Chunk, Document};
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

use crate::unsigned;

#[doc(hidden)]
#[macro_export]
macro_rules! document_columns {
    () => {
        "id, collection_id, source, title, content_hash, version, metadata, created_at, updated_at"
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! chunk_columns {
    () => {
        "id, document_id, chunk_index, content, content_hash, char_start, char_end, heading_path, token_count, metadata"
    };
}

#[derive(Debug, sqlx::FromRow)]
pub struct DocumentRow {
    pub id: Uuid,
    pub collection_id: Uuid,
    pub source: String,
    pub title: String,
    pub content_hash: String,
    pub version: i64,
    pub metadata: Json<Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<DocumentRow> for Document {
    fn from(row: DocumentRow) -> Self {
        Document {
            id: row.id,
            collection_id: row.collection_id,
            source: row.source,
            title: row.title,
            content_hash: row.content_hash,
            version: row.version,
            metadata: row.metadata.0,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct ChunkRow {
    pub id: Uuid,
    pub document_id: Uuid,
    pub chunk_index: i64,
    pub content: String,
    pub content_hash: String,
    pub char_start: i64,
    pub char_end: i64,
    pub heading_path: Json<Vec<String>>,
    pub token_count: i64,
    pub metadata: Json<Value>,
}

impl TryFrom<ChunkRow> for Chunk {
    type Error = CatalogError;

    fn try_from(row: ChunkRow) -> Result<Self, CatalogError> {
        Ok(Chunk {
            id: row.id,
            document_id: row.document_id,
            chunk_index: unsigned("chunk_index", row.chunk_index)?,
            content: row.content,
            content_hash: row.content_hash,
            char_start: unsigned("char_start", row.char_start)?,
            char_end: unsigned("char_end", row.char_end)?,
            heading_path: row.heading_path.0,
            token_count: unsigned("token_count", row.token_count)?,
            metadata: row.metadata.0,
        })
    }
}

/// Implements [`DocumentRepo`](cairn_core::catalog::DocumentRepo) for `$catalog`; expanded by
/// [`impl_catalog_repos!`](crate::impl_catalog_repos).
#[doc(hidden)]
#[macro_export]
macro_rules! impl_document_repo {
    ($catalog:ident, $db:ty) => {
        /// Inserts or updates the document row inside `tx`.
        async fn upsert_document_in(
            tx: &mut sqlx::Transaction<'static, $db>,
            new: &NewDocument,
        ) -> CatalogResult<(DocumentRow, UpsertOutcome)> {
        let existing: Option<DocumentRow> = sqlx::query_as(concat!(
            "SELECT ",
            $crate::document_columns!(),
            " FROM documents WHERE collection_id = $1 AND source = $2"
        ))
        .bind(new.collection_id)
        .bind(&new.source)
        .fetch_optional(&mut **tx)
        .await
        .map_err(db_error)?;
        let now = Utc::now();
        let (row, outcome): (DocumentRow, _) = match existing {
            Some(row)
                if row.content_hash == new.content_hash
                    && row.title == new.title
                    && row.metadata.0 == new.metadata =>
            {
                (row, UpsertOutcome::Unchanged)
            }
            Some(row) => {
                // A title or metadata change alone does not make a new version of the content.
                let version = if row.content_hash == new.content_hash {
                    row.version
                } else {
                    row.version + 1
                };
                let row = sqlx::query_as(concat!("UPDATE documents SET title = $2, content_hash = $3, version = $4, metadata = $5, updated_at = $6 \
                     WHERE id = $1 RETURNING ", $crate::document_columns!()))
                .bind(row.id)
                .bind(&new.title)
                .bind(&new.content_hash)
                .bind(version)
                .bind(Json(&new.metadata))
                .bind(now)
                .fetch_one(&mut **tx)
                .await
                .map_err(db_error)?;
                (row, UpsertOutcome::Updated)
            }
            None => {
                let row = sqlx::query_as(concat!(
                    "INSERT INTO documents (",
                    $crate::document_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, 1, $6, $7, $7) RETURNING ",
                    $crate::document_columns!()
                ))
                .bind(Uuid::now_v7())
                .bind(new.collection_id)
                .bind(&new.source)
                .bind(&new.title)
                .bind(&new.content_hash)
                .bind(Json(&new.metadata))
                .bind(now)
                .fetch_one(&mut **tx)
                .await
                .map_err(|e| foreign_key_as_not_found(e, "collection", new.collection_id))?;
                (row, UpsertOutcome::Added)
            }
        };
        Ok((row, outcome))
        }

        /// Replaces the document's chunks inside `tx`, reusing stored chunks with the same content hash.
        async fn replace_chunks_in(
            tx: &mut sqlx::Transaction<'static, $db>,
            document_id: Uuid,
            chunks: Vec<NewChunk>,
        ) -> CatalogResult<ChunkDiff> {
        let existing: Vec<ChunkRow> = sqlx::query_as(concat!(
            "SELECT ",
            $crate::chunk_columns!(),
            " FROM chunks WHERE document_id = $1 ORDER BY chunk_index"
        ))
        .bind(document_id)
        .fetch_all(&mut **tx)
        .await
        .map_err(db_error)?;
        let existing: Vec<Chunk> = convert_all(existing)?;
        let plan = ChunkPlan::new(&existing, chunks);
        for id in &plan.delete {
            sqlx::query("DELETE FROM chunks WHERE id = $1")
                .bind(id)
                .execute(&mut **tx)
                .await
                .map_err(db_error)?;
        }
        for (id, chunk) in &plan.keep {
            sqlx::query(
                "UPDATE chunks SET chunk_index = $2, char_start = $3, char_end = $4, heading_path = $5, token_count = $6, \
                 metadata = $7 WHERE id = $1",
            )
            .bind(id)
            .bind(i64::from(chunk.chunk_index))
            .bind(to_i64(chunk.char_start)?)
            .bind(to_i64(chunk.char_end)?)
            .bind(Json(&chunk.heading_path))
            .bind(i64::from(chunk.token_count))
            .bind(Json(&chunk.metadata))
            .execute(&mut **tx)
            .await
            .map_err(db_error)?;
        }
        for (id, chunk) in &plan.insert {
            sqlx::query(concat!(
                "INSERT INTO chunks (",
                $crate::chunk_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            ))
            .bind(id)
            .bind(document_id)
            .bind(i64::from(chunk.chunk_index))
            .bind(&chunk.content)
            .bind(&chunk.content_hash)
            .bind(to_i64(chunk.char_start)?)
            .bind(to_i64(chunk.char_end)?)
            .bind(Json(&chunk.heading_path))
            .bind(i64::from(chunk.token_count))
            .bind(Json(&chunk.metadata))
            .execute(&mut **tx)
            .await
            .map_err(db_error)?;
        }
        Ok(plan.into_diff(document_id))
        }

        #[$crate::async_trait::async_trait]
        impl DocumentRepo for $catalog {
            async fn upsert_document(&self, new: NewDocument) -> CatalogResult<(Document, UpsertOutcome)> {
                let mut tx = self
                    .locked_tx(&format!("document:{}:{}", new.collection_id, new.source))
                    .await?;
                let (row, outcome) = upsert_document_in(&mut tx, &new).await?;
                tx.commit().await.map_err(db_error)?;
                Ok((row.into(), outcome))
            }

            async fn sync_document(&self, new: NewDocument, chunks: Vec<NewChunk>) -> CatalogResult<DocumentSync> {
                let mut tx = self
                    .locked_tx(&format!("document:{}:{}", new.collection_id, new.source))
                    .await?;
                let (row, outcome) = upsert_document_in(&mut tx, &new).await?;
                let diff = replace_chunks_in(&mut tx, row.id, chunks).await?;
                tx.commit().await.map_err(db_error)?;
                Ok(DocumentSync { document: row.into(), outcome, diff })
            }

            async fn sync_documents(
                &self,
                batch: Vec<(NewDocument, Vec<NewChunk>)>,
            ) -> CatalogResult<Vec<DocumentSync>> {
                if batch.is_empty() {
                    return Ok(Vec::new());
                }
                let keys: Vec<String> = batch
                    .iter()
                    .map(|(new, _)| format!("document:{}:{}", new.collection_id, new.source))
                    .collect();
                let mut tx = self.locked_tx_many(keys).await?;
                let mut synced = Vec::with_capacity(batch.len());
                for (new, chunks) in batch {
                    let (row, outcome) = upsert_document_in(&mut tx, &new).await?;
                    let diff = replace_chunks_in(&mut tx, row.id, chunks).await?;
                    synced.push(DocumentSync { document: row.into(), outcome, diff });
                }
                tx.commit().await.map_err(db_error)?;
                Ok(synced)
            }

            async fn get_document(&self, id: Uuid) -> CatalogResult<Option<Document>> {
                let row: Option<DocumentRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    $crate::document_columns!(),
                    " FROM documents WHERE id = $1"
                ))
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error)?;
                Ok(row.map(Document::from))
            }

            async fn list_documents(&self, collection_id: Uuid) -> CatalogResult<Vec<Document>> {
                let rows: Vec<DocumentRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    $crate::document_columns!(),
                    " FROM documents WHERE collection_id = $1 ORDER BY source"
                ))
                .bind(collection_id)
                .fetch_all(&self.pool)
                .await
                .map_err(db_error)?;
                Ok(rows.into_iter().map(Document::from).collect())
            }

            async fn delete_document(&self, id: Uuid) -> CatalogResult<bool> {
                let result = sqlx::query("DELETE FROM documents WHERE id = $1")
                    .bind(id)
                    .execute(&self.pool)
                    .await
                    .map_err(db_error)?;
                Ok(result.rows_affected() > 0)
            }

            async fn replace_chunks(
                &self,
                document_id: Uuid,
                chunks: Vec<NewChunk>,
            ) -> CatalogResult<ChunkDiff> {
                let mut tx = self.locked_tx(&format!("chunks:{document_id}")).await?;
                let exists: Option<(Uuid,)> =
                    sqlx::query_as("SELECT id FROM documents WHERE id = $1")
                        .bind(document_id)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(db_error)?;
                if exists.is_none() {
                    return Err(CatalogError::not_found("document", document_id));
                }
                let diff = replace_chunks_in(&mut tx, document_id, chunks).await?;
                tx.commit().await.map_err(db_error)?;
                Ok(diff)
            }

            async fn chunk_ids(&self, collection_id: Uuid) -> CatalogResult<Vec<Uuid>> {
                let rows: Vec<(Uuid,)> = sqlx::query_as(
                    "SELECT c.id FROM chunks c JOIN documents d ON d.id = c.document_id WHERE d.collection_id = $1",
                )
                .bind(collection_id)
                .fetch_all(&self.pool)
                .await
                .map_err(db_error)?;
                Ok(rows.into_iter().map(|(id,)| id).collect())
            }

            async fn list_chunks(&self, document_id: Uuid) -> CatalogResult<Vec<Chunk>> {
                let rows: Vec<ChunkRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    $crate::chunk_columns!(),
                    " FROM chunks WHERE document_id = $1 ORDER BY chunk_index"
                ))
                .bind(document_id)
                .fetch_all(&self.pool)
                .await
                .map_err(db_error)?;
                convert_all(rows)
            }

            async fn get_chunks(&self, ids: &[Uuid]) -> CatalogResult<Vec<Chunk>> {
                self.fetch_chunks(ids).await
            }
        }
    };
}
