//! The catalog repositories, written once in the SQL dialect SQLite and PostgreSQL share.
//!
//! Expanded in each backend crate by [`impl_catalog_repos!`]; the backend supplies its pool, its way
//! of serialising writers and its array parameters.

#[doc(hidden)]
#[macro_export]
macro_rules! collection_columns {
    () => {
        "id, name, description, embedding_model, embedding_dimension, metadata, created_at"
    };
}
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
#[doc(hidden)]
#[macro_export]
macro_rules! prompt_version_columns {
    () => {
        "id, name, version, template, spec, content_hash, author, message, created_at"
    };
}
#[doc(hidden)]
#[macro_export]
macro_rules! lineage_columns {
    () => {
        "id, conversation_id, app, prompt_name, prompt_version, model, route, retrieval, \
     guard_verdicts, input_tokens, cached_input_tokens, output_tokens, reasoning_tokens, cost_usd, latency_ms, status, \
     error, created_at"
    };
}
#[doc(hidden)]
#[macro_export]
macro_rules! eval_run_columns {
    () => {
        "id, suite, target, status, summary, started_at, finished_at"
    };
}
#[doc(hidden)]
#[macro_export]
macro_rules! eval_result_columns {
    () => {
        "id, run_id, case_id, passed, metrics, output, created_at"
    };
}
#[doc(hidden)]
#[macro_export]
macro_rules! shadow_columns {
    () => {
        "id, route, primary_target, shadow_target, request, primary_output, primary_error, \
     primary_latency_ms, shadow_output, shadow_error, shadow_latency_ms, shadow_usage, shadow_cost_usd, \
     created_at"
    };
}
#[doc(hidden)]
#[macro_export]
macro_rules! api_key_columns {
    () => {
        "id, name, prefix, key_hash, tools, collections, created_at, revoked_at"
    };
}

/// Implements every catalog repository trait for `$catalog`, a struct with a `pool` field of the
/// backend's `sqlx::Pool` and three inherent methods: `locked_tx(&self, key)`, a write transaction
/// that serialises writers of `key`; `fetch_chunks(&self, ids)`, chunks by id (array parameters differ
/// between the databases); and `after_label_move(&self, tx, name, label)`, which announces a label
/// move to other processes when the backend can. The SQL is the dialect both databases accept: `$N` parameters, `RETURNING`,
/// `ON CONFLICT … DO UPDATE`, standard types.
#[macro_export]
macro_rules! impl_catalog_repos {
    ($catalog:ident, $db:ty) => {
        mod catalog_repos {
            use $crate::cairn_core::catalog::*;
            use $crate::chrono::Utc;
            use $crate::serde_json::Value;
            use $crate::sqlx;
            use $crate::sqlx::types::Json;
            use $crate::uuid::Uuid;
            use $crate::*;

            use super::$catalog;

            #[$crate::async_trait::async_trait]
            impl CollectionRepo for $catalog {
                async fn create_collection(&self, new: NewCollection) -> CatalogResult<Collection> {
                    validate_name("collection", &new.name)?;
                    let row: CollectionRow = sqlx::query_as(concat!(
                        "INSERT INTO collections (",
                        $crate::collection_columns!(),
                        ") VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ",
                        $crate::collection_columns!()
                    ))
                    .bind(Uuid::now_v7())
                    .bind(&new.name)
                    .bind(&new.description)
                    .bind(&new.embedding_model)
                    .bind(new.embedding_dimension.map(i64::from))
                    .bind(Json(&new.metadata))
                    .bind(Utc::now())
                    .fetch_one(&self.pool)
                    .await
                    .map_err(|e| classify(e, || format!("collection `{}` already exists", new.name)))?;
                    row.try_into()
                }

                async fn get_collection(&self, name: &str) -> CatalogResult<Option<Collection>> {
                    let row: Option<CollectionRow> = sqlx::query_as(concat!(
                        "SELECT ",
                        $crate::collection_columns!(),
                        " FROM collections WHERE name = $1"
                    ))
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_error)?;
                    row.map(Collection::try_from).transpose()
                }

                async fn list_collections(&self) -> CatalogResult<Vec<Collection>> {
                    let rows: Vec<CollectionRow> = sqlx::query_as(concat!(
                        "SELECT ",
                        $crate::collection_columns!(),
                        " FROM collections ORDER BY name"
                    ))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_error)?;
                    convert_all(rows)
                }

                async fn bind_embedding_model(
                    &self,
                    name: &str,
                    model: &str,
                    dimension: u32,
                ) -> CatalogResult<Collection> {
                    let mut tx = self.locked_tx(&format!("collection:{name}")).await?;
                    let row: Option<CollectionRow> = sqlx::query_as(concat!(
                        "SELECT ",
                        $crate::collection_columns!(),
                        " FROM collections WHERE name = $1"
                    ))
                    .bind(name)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_error)?;
                    let collection =
                        Collection::try_from(row.ok_or_else(|| CatalogError::not_found("collection", name))?)?;
                    check_binding(&collection, model, dimension)?;
                    let row: CollectionRow = sqlx::query_as(concat!("UPDATE collections SET embedding_model = $2, embedding_dimension = $3 WHERE name = $1 RETURNING ", $crate::collection_columns!()))
                    .bind(name)
                    .bind(model)
                    .bind(i64::from(dimension))
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db_error)?;
                    tx.commit().await.map_err(db_error)?;
                    row.try_into()
                }

                async fn delete_collection(&self, name: &str) -> CatalogResult<bool> {
                    let result = sqlx::query("DELETE FROM collections WHERE name = $1")
                        .bind(name)
                        .execute(&self.pool)
                        .await
                        .map_err(db_error)?;
                    Ok(result.rows_affected() > 0)
                }
            }

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

            #[$crate::async_trait::async_trait]
            impl PromptRepo for $catalog {
                async fn publish_prompt_version(&self, new: NewPromptVersion) -> CatalogResult<PublishOutcome> {
                    validate_name("prompt", &new.name)?;
                    let mut tx = self.locked_tx(&format!("prompt:{}", new.name)).await?;
                    let latest: Option<PromptVersionRow> = sqlx::query_as(concat!(
                        "SELECT ",
                        $crate::prompt_version_columns!(),
                        " FROM prompt_versions WHERE name = $1 ORDER BY version DESC LIMIT 1"
                    ))
                    .bind(&new.name)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_error)?;
                    if let Some(latest) = latest.filter(|latest| latest.content_hash == new.content_hash) {
                        return Ok(PublishOutcome {
                            version: latest.into(),
                            created: false,
                        });
                    }
                    let now = Utc::now();
                    let (version,): (i64,) = sqlx::query_as(
                        "INSERT INTO prompts (name, latest_version, updated_at) VALUES ($1, 1, $2) \
                         ON CONFLICT (name) DO UPDATE SET latest_version = prompts.latest_version + 1, updated_at = $2 RETURNING latest_version",
                    )
                    .bind(&new.name)
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db_error)?;
                    let row: PromptVersionRow = sqlx::query_as(concat!(
                        "INSERT INTO prompt_versions (",
                        $crate::prompt_version_columns!(),
                        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                         RETURNING ",
                        $crate::prompt_version_columns!()
                    ))
                    .bind(Uuid::now_v7())
                    .bind(&new.name)
                    .bind(version)
                    .bind(&new.template)
                    .bind(Json(&new.spec))
                    .bind(&new.content_hash)
                    .bind(&new.author)
                    .bind(&new.message)
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db_error)?;
                    tx.commit().await.map_err(db_error)?;
                    Ok(PublishOutcome {
                        version: row.into(),
                        created: true,
                    })
                }

                async fn get_prompt_version(
                    &self,
                    name: &str,
                    version: i64,
                ) -> CatalogResult<Option<PromptVersion>> {
                    let row: Option<PromptVersionRow> = sqlx::query_as(concat!(
                        "SELECT ",
                        $crate::prompt_version_columns!(),
                        " FROM prompt_versions WHERE name = $1 AND version = $2"
                    ))
                    .bind(name)
                    .bind(version)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_error)?;
                    Ok(row.map(PromptVersion::from))
                }

                async fn latest_prompt_version(&self, name: &str) -> CatalogResult<Option<PromptVersion>> {
                    let row: Option<PromptVersionRow> = sqlx::query_as(concat!(
                        "SELECT ",
                        $crate::prompt_version_columns!(),
                        " FROM prompt_versions WHERE name = $1 ORDER BY version DESC LIMIT 1"
                    ))
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_error)?;
                    Ok(row.map(PromptVersion::from))
                }

                async fn list_prompt_versions(&self, name: &str) -> CatalogResult<Vec<PromptVersion>> {
                    let rows: Vec<PromptVersionRow> = sqlx::query_as(concat!(
                        "SELECT ",
                        $crate::prompt_version_columns!(),
                        " FROM prompt_versions WHERE name = $1 ORDER BY version"
                    ))
                    .bind(name)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_error)?;
                    Ok(rows.into_iter().map(PromptVersion::from).collect())
                }

                async fn list_prompts(&self) -> CatalogResult<Vec<PromptSummary>> {
                    let rows: Vec<PromptSummaryRow> =
                        sqlx::query_as("SELECT name, latest_version, updated_at FROM prompts ORDER BY name")
                            .fetch_all(&self.pool)
                            .await
                            .map_err(db_error)?;
                    Ok(rows.into_iter().map(PromptSummary::from).collect())
                }

                async fn set_prompt_label(&self, set: SetLabel) -> CatalogResult<LabelMove> {
                    validate_name("label", &set.label)?;
                    let mut tx = self.locked_tx(&format!("prompt:{}", set.name)).await?;
                    let target: Option<(i64,)> =
                        sqlx::query_as("SELECT version FROM prompt_versions WHERE name = $1 AND version = $2")
                            .bind(&set.name)
                            .bind(set.version)
                            .fetch_optional(&mut *tx)
                            .await
                            .map_err(db_error)?;
                    if target.is_none() {
                        return Err(CatalogError::not_found(
                            "prompt version",
                            format!("{}@{}", set.name, set.version),
                        ));
                    }
                    let previous: Option<(i64,)> =
                        sqlx::query_as("SELECT version FROM prompt_labels WHERE name = $1 AND label = $2")
                            .bind(&set.name)
                            .bind(&set.label)
                            .fetch_optional(&mut *tx)
                            .await
                            .map_err(db_error)?;
                    let now = Utc::now();
                    sqlx::query(
                        "INSERT INTO prompt_labels (name, label, version, updated_at, updated_by) VALUES ($1, $2, $3, $4, $5) \
                         ON CONFLICT (name, label) DO UPDATE SET version = $3, updated_at = $4, updated_by = $5",
                    )
                    .bind(&set.name)
                    .bind(&set.label)
                    .bind(set.version)
                    .bind(now)
                    .bind(&set.actor)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                    let row: LabelMoveRow = sqlx::query_as(
                        "INSERT INTO prompt_label_moves (id, name, label, from_version, to_version, actor, reason, moved_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                         RETURNING name, label, from_version, to_version, actor, reason, moved_at",
                    )
                    .bind(Uuid::now_v7())
                    .bind(&set.name)
                    .bind(&set.label)
                    .bind(previous.map(|(v,)| v))
                    .bind(set.version)
                    .bind(&set.actor)
                    .bind(&set.reason)
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db_error)?;
                    self.after_label_move(&mut tx, &set.name, &set.label).await?;
                    tx.commit().await.map_err(db_error)?;
                    Ok(row.into())
                }

                async fn get_prompt_label(
                    &self,
                    name: &str,
                    label: &str,
                ) -> CatalogResult<Option<PromptLabel>> {
                    let row: Option<PromptLabelRow> = sqlx::query_as(
                        "SELECT name, label, version, updated_at, updated_by FROM prompt_labels WHERE name = $1 AND label = $2",
                    )
                    .bind(name)
                    .bind(label)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_error)?;
                    Ok(row.map(PromptLabel::from))
                }

                async fn list_prompt_labels(&self, name: &str) -> CatalogResult<Vec<PromptLabel>> {
                    let rows: Vec<PromptLabelRow> = sqlx::query_as(
                        "SELECT name, label, version, updated_at, updated_by FROM prompt_labels WHERE name = $1 ORDER BY label",
                    )
                    .bind(name)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_error)?;
                    Ok(rows.into_iter().map(PromptLabel::from).collect())
                }

                async fn prompt_label_history(&self, name: &str) -> CatalogResult<Vec<LabelMove>> {
                    let rows: Vec<LabelMoveRow> = sqlx::query_as(
                        "SELECT name, label, from_version, to_version, actor, reason, moved_at FROM prompt_label_moves \
                         WHERE name = $1 ORDER BY moved_at, id",
                    )
                    .bind(name)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_error)?;
                    Ok(rows.into_iter().map(LabelMove::from).collect())
                }
            }

            #[$crate::async_trait::async_trait]
            impl ConversationRepo for $catalog {
                async fn create_conversation(&self, owner: &str, title: &str) -> CatalogResult<Conversation> {
                    let now = Utc::now();
                    let row: ConversationRow = sqlx::query_as(
                        "INSERT INTO conversations (id, owner, title, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) \
                         RETURNING id, owner, title, created_at, updated_at",
                    )
                    .bind(Uuid::now_v7())
                    .bind(owner)
                    .bind(title)
                    .bind(now)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(db_error)?;
                    Ok(row.into())
                }

                async fn get_conversation(&self, id: Uuid) -> CatalogResult<Option<Conversation>> {
                    let row: Option<ConversationRow> = sqlx::query_as(
                        "SELECT id, owner, title, created_at, updated_at FROM conversations WHERE id = $1",
                    )
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_error)?;
                    Ok(row.map(Conversation::from))
                }

                async fn list_conversations(&self, owner: &str) -> CatalogResult<Vec<Conversation>> {
                    let rows: Vec<ConversationRow> = sqlx::query_as(
                        "SELECT id, owner, title, created_at, updated_at FROM conversations WHERE owner = $1 \
                         ORDER BY updated_at DESC, id DESC",
                    )
                    .bind(owner)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_error)?;
                    Ok(rows.into_iter().map(Conversation::from).collect())
                }

                async fn rename_conversation(&self, id: Uuid, title: &str) -> CatalogResult<Conversation> {
                    let row: Option<ConversationRow> = sqlx::query_as(
                        "UPDATE conversations SET title = $2 WHERE id = $1 RETURNING id, owner, title, created_at, updated_at",
                    )
                    .bind(id)
                    .bind(title)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_error)?;
                    row.map(Conversation::from)
                        .ok_or_else(|| CatalogError::not_found("conversation", id))
                }

                async fn delete_conversation(&self, id: Uuid) -> CatalogResult<bool> {
                    let result = sqlx::query("DELETE FROM conversations WHERE id = $1")
                        .bind(id)
                        .execute(&self.pool)
                        .await
                        .map_err(db_error)?;
                    Ok(result.rows_affected() > 0)
                }

                async fn append_message(&self, new: NewMessage) -> CatalogResult<Message> {
                    let mut tx = self.pool.begin().await.map_err(db_error)?;
                    let now = Utc::now();
                    let touched = sqlx::query("UPDATE conversations SET updated_at = $2 WHERE id = $1")
                        .bind(new.conversation_id)
                        .bind(now)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_error)?;
                    if touched.rows_affected() == 0 {
                        return Err(CatalogError::not_found("conversation", new.conversation_id));
                    }
                    let row: MessageRow = sqlx::query_as(
                        "INSERT INTO messages (id, conversation_id, role, content, lineage_id, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id, conversation_id, role, content, lineage_id, created_at",
                    )
                    .bind(Uuid::now_v7())
                    .bind(new.conversation_id)
                    .bind(&new.role)
                    .bind(&new.content)
                    .bind(new.lineage_id)
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db_error)?;
                    tx.commit().await.map_err(db_error)?;
                    Ok(row.into())
                }

                async fn list_messages(&self, conversation_id: Uuid) -> CatalogResult<Vec<Message>> {
                    let rows: Vec<MessageRow> = sqlx::query_as(
                        "SELECT id, conversation_id, role, content, lineage_id, created_at FROM messages \
                         WHERE conversation_id = $1 ORDER BY created_at, id",
                    )
                    .bind(conversation_id)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_error)?;
                    Ok(rows.into_iter().map(Message::from).collect())
                }
            }

            #[$crate::async_trait::async_trait]
            impl LineageRepo for $catalog {
                async fn record_lineage(&self, record: LineageRecord) -> CatalogResult<()> {
                    sqlx::query(concat!("INSERT INTO lineage (", $crate::lineage_columns!(), ") \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"))
                    .bind(record.id)
                    .bind(record.conversation_id)
                    .bind(&record.app)
                    .bind(&record.prompt_name)
                    .bind(record.prompt_version)
                    .bind(&record.model)
                    .bind(&record.route)
                    .bind(Json(&record.retrieval))
                    .bind(Json(&record.guard_verdicts))
                    .bind(i64::from(record.usage.input_tokens))
                    .bind(i64::from(record.usage.cached_input_tokens))
                    .bind(i64::from(record.usage.output_tokens))
                    .bind(i64::from(record.usage.reasoning_tokens))
                    .bind(record.cost_usd)
                    .bind(to_i64(record.latency_ms)?)
                    .bind(&record.status)
                    .bind(&record.error)
                    .bind(record.created_at)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| classify(e, || format!("lineage record {} already exists", record.id)))?;
                    Ok(())
                }

                async fn get_lineage(&self, id: Uuid) -> CatalogResult<Option<LineageRecord>> {
                    let row: Option<LineageRow> = sqlx::query_as(concat!(
                        "SELECT ",
                        $crate::lineage_columns!(),
                        " FROM lineage WHERE id = $1"
                    ))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_error)?;
                    row.map(LineageRecord::try_from).transpose()
                }

                async fn record_feedback(&self, new: NewFeedback) -> CatalogResult<Feedback> {
                    new.validate()?;
                    let row: FeedbackRow = sqlx::query_as(
                        "INSERT INTO feedback (id, lineage_id, rating, comment, user_name, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
                         RETURNING id, lineage_id, rating, comment, user_name, created_at",
                    )
                    .bind(Uuid::now_v7())
                    .bind(new.lineage_id)
                    .bind(i64::from(new.rating))
                    .bind(&new.comment)
                    .bind(&new.user)
                    .bind(Utc::now())
                    .fetch_one(&self.pool)
                    .await
                    .map_err(|e| foreign_key_as_not_found(e, "answer", new.lineage_id))?;
                    row.try_into()
                }

                async fn list_feedback(&self, lineage_id: Uuid) -> CatalogResult<Vec<Feedback>> {
                    let rows: Vec<FeedbackRow> = sqlx::query_as(
                        "SELECT id, lineage_id, rating, comment, user_name, created_at FROM feedback WHERE lineage_id = $1 \
                         ORDER BY created_at, id",
                    )
                    .bind(lineage_id)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_error)?;
                    convert_all(rows)
                }
            }

            #[$crate::async_trait::async_trait]
            impl EvalRepo for $catalog {
                async fn create_eval_run(&self, suite: &str, target: Value) -> CatalogResult<EvalRun> {
                    let row: EvalRunRow = sqlx::query_as(concat!(
                        "INSERT INTO eval_runs (",
                        $crate::eval_run_columns!(),
                        ") VALUES ($1, $2, $3, 'running', 'null', $4, NULL) \
                         RETURNING ",
                        $crate::eval_run_columns!()
                    ))
                    .bind(Uuid::now_v7())
                    .bind(suite)
                    .bind(Json(&target))
                    .bind(Utc::now())
                    .fetch_one(&self.pool)
                    .await
                    .map_err(db_error)?;
                    row.try_into()
                }

                async fn finish_eval_run(
                    &self,
                    id: Uuid,
                    status: EvalStatus,
                    summary: Value,
                ) -> CatalogResult<EvalRun> {
                    if status == EvalStatus::Running {
                        return Err(CatalogError::Invalid(
                            "an eval run cannot be finished as `running`".into(),
                        ));
                    }
                    let row: Option<EvalRunRow> = sqlx::query_as(concat!("UPDATE eval_runs SET status = $2, summary = $3, finished_at = $4 WHERE id = $1 AND status = 'running' \
                         RETURNING ", $crate::eval_run_columns!()))
                    .bind(id)
                    .bind(status.as_str())
                    .bind(Json(&summary))
                    .bind(Utc::now())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_error)?;
                    match row {
                        Some(row) => row.try_into(),
                        None => match self.get_eval_run(id).await? {
                            Some(run) => Err(CatalogError::Conflict(format!(
                                "eval run {id} already finished as `{}`",
                                run.status.as_str()
                            ))),
                            None => Err(CatalogError::not_found("eval run", id)),
                        },
                    }
                }

                async fn get_eval_run(&self, id: Uuid) -> CatalogResult<Option<EvalRun>> {
                    let row: Option<EvalRunRow> = sqlx::query_as(concat!(
                        "SELECT ",
                        $crate::eval_run_columns!(),
                        " FROM eval_runs WHERE id = $1"
                    ))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_error)?;
                    row.map(EvalRun::try_from).transpose()
                }

                async fn list_eval_runs(&self, suite: &str, limit: u32) -> CatalogResult<Vec<EvalRun>> {
                    let rows: Vec<EvalRunRow> = sqlx::query_as(concat!(
                        "SELECT ",
                        $crate::eval_run_columns!(),
                        " FROM eval_runs WHERE suite = $1 ORDER BY started_at DESC, id DESC LIMIT $2"
                    ))
                    .bind(suite)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_error)?;
                    convert_all(rows)
                }

                async fn record_eval_result(&self, new: NewEvalResult) -> CatalogResult<EvalResult> {
                    let row: EvalResultRow = sqlx::query_as(concat!(
                        "INSERT INTO eval_results (",
                        $crate::eval_result_columns!(),
                        ") VALUES ($1, $2, $3, $4, $5, $6, $7) \
                         RETURNING ",
                        $crate::eval_result_columns!()
                    ))
                    .bind(Uuid::now_v7())
                    .bind(new.run_id)
                    .bind(&new.case_id)
                    .bind(new.passed)
                    .bind(Json(&new.metrics))
                    .bind(Json(&new.output))
                    .bind(Utc::now())
                    .fetch_one(&self.pool)
                    .await
                    .map_err(|e| {
                        if is_foreign_key_violation(&e) {
                            CatalogError::not_found("eval run", new.run_id)
                        } else {
                            classify(e, || {
                                format!(
                                    "case `{}` is already recorded in eval run {}",
                                    new.case_id, new.run_id
                                )
                            })
                        }
                    })?;
                    Ok(row.into())
                }

                async fn list_eval_results(&self, run_id: Uuid) -> CatalogResult<Vec<EvalResult>> {
                    let rows: Vec<EvalResultRow> = sqlx::query_as(concat!(
                        "SELECT ",
                        $crate::eval_result_columns!(),
                        " FROM eval_results WHERE run_id = $1 ORDER BY case_id"
                    ))
                    .bind(run_id)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_error)?;
                    Ok(rows.into_iter().map(EvalResult::from).collect())
                }
            }

            #[$crate::async_trait::async_trait]
            impl ApiKeyRepo for $catalog {
                async fn create_api_key(&self, new: NewApiKey) -> CatalogResult<ApiKey> {
                    validate_name("API key", &new.name)?;
                    let row: ApiKeyRow = sqlx::query_as(concat!(
                        "INSERT INTO api_keys (",
                        $crate::api_key_columns!(),
                        ") VALUES ($1, $2, $3, $4, $5, $6, $7, NULL) RETURNING ",
                        $crate::api_key_columns!()
                    ))
                    .bind(Uuid::now_v7())
                    .bind(&new.name)
                    .bind(&new.prefix)
                    .bind(&new.key_hash)
                    .bind(Json(&new.tools))
                    .bind(Json(&new.collections))
                    .bind(Utc::now())
                    .fetch_one(&self.pool)
                    .await
                    .map_err(|e| {
                        classify(e, || {
                            format!(
                                "an active API key named `{}` already exists; revoke it first",
                                new.name
                            )
                        })
                    })?;
                    Ok(row.into())
                }

                async fn find_active_api_key(&self, key_hash: &str) -> CatalogResult<Option<ApiKey>> {
                    let row: Option<ApiKeyRow> = sqlx::query_as(concat!(
                        "SELECT ",
                        $crate::api_key_columns!(),
                        " FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL"
                    ))
                    .bind(key_hash)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_error)?;
                    Ok(row.map(ApiKey::from))
                }

                async fn list_api_keys(&self) -> CatalogResult<Vec<ApiKey>> {
                    let rows: Vec<ApiKeyRow> = sqlx::query_as(concat!(
                        "SELECT ",
                        $crate::api_key_columns!(),
                        " FROM api_keys ORDER BY name, created_at"
                    ))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_error)?;
                    Ok(rows.into_iter().map(ApiKey::from).collect())
                }

                async fn revoke_api_key(&self, name: &str) -> CatalogResult<bool> {
                    let result = sqlx::query(
                        "UPDATE api_keys SET revoked_at = $2 WHERE name = $1 AND revoked_at IS NULL",
                    )
                    .bind(name)
                    .bind(Utc::now())
                    .execute(&self.pool)
                    .await
                    .map_err(db_error)?;
                    Ok(result.rows_affected() > 0)
                }
            }

            #[$crate::async_trait::async_trait]
            impl GatewayRepo for $catalog {
                async fn add_usage(
                    &self,
                    bucket: &str,
                    window_start: i64,
                    delta: UsageDelta,
                ) -> CatalogResult<UsageDelta> {
                    // One statement: the database serialises concurrent additions to a row, so each
                    // caller sees the total including its own addition and every earlier one.
                    let row: UsageRow = sqlx::query_as(
                        "INSERT INTO usage_windows (bucket, window_start, requests, tokens, cost_usd) \
                         VALUES ($1, $2, $3, $4, $5) \
                         ON CONFLICT (bucket, window_start) DO UPDATE SET \
                           requests = usage_windows.requests + excluded.requests, \
                           tokens = usage_windows.tokens + excluded.tokens, \
                           cost_usd = usage_windows.cost_usd + excluded.cost_usd \
                         RETURNING requests, tokens, cost_usd",
                    )
                    .bind(bucket)
                    .bind(window_start)
                    .bind(to_i64(delta.requests)?)
                    .bind(to_i64(delta.tokens)?)
                    .bind(delta.cost_usd)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(db_error)?;
                    UsageDelta::try_from(row)
                }

                async fn prune_usage(&self, before: i64) -> CatalogResult<u64> {
                    let result = sqlx::query("DELETE FROM usage_windows WHERE window_start < $1")
                        .bind(before)
                        .execute(&self.pool)
                        .await
                        .map_err(db_error)?;
                    Ok(result.rows_affected())
                }

                async fn record_shadow(&self, result: ShadowResult) -> CatalogResult<()> {
                    sqlx::query(concat!(
                        "INSERT INTO shadow_results (",
                        $crate::shadow_columns!(),
                        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
                    ))
                    .bind(result.id)
                    .bind(&result.route)
                    .bind(&result.primary_target)
                    .bind(&result.shadow_target)
                    .bind(Json(&result.request))
                    .bind(&result.primary_output)
                    .bind(&result.primary_error)
                    .bind(to_i64(result.primary_latency_ms)?)
                    .bind(&result.shadow_output)
                    .bind(&result.shadow_error)
                    .bind(to_i64(result.shadow_latency_ms)?)
                    .bind(Json(&result.shadow_usage))
                    .bind(result.shadow_cost_usd)
                    .bind(result.created_at)
                    .execute(&self.pool)
                    .await
                    .map_err(db_error)?;
                    Ok(())
                }

                async fn list_shadow_results(
                    &self,
                    route: &str,
                    limit: u32,
                ) -> CatalogResult<Vec<ShadowResult>> {
                    let rows: Vec<ShadowRow> = sqlx::query_as(concat!(
                        "SELECT ",
                        $crate::shadow_columns!(),
                        " FROM shadow_results WHERE route = $1 ORDER BY created_at DESC, id DESC LIMIT $2"
                    ))
                    .bind(route)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_error)?;
                    convert_all(rows)
                }
            }
        }
    };
}
