//! Retention: pruning each kind of record older than a time, with what belongs to it.

/// Implements [`RetentionRepo`](cairn_core::catalog::RetentionRepo) for `$catalog`; expanded by
/// [`impl_catalog_repos!`](crate::impl_catalog_repos).
#[doc(hidden)]
#[macro_export]
macro_rules! impl_retention_repo {
    ($catalog:ident, $db:ty) => {
        #[$crate::async_trait::async_trait]
        impl RetentionRepo for $catalog {
            async fn prune(
                &self,
                kind: RecordKind,
                before: $crate::chrono::DateTime<Utc>,
            ) -> CatalogResult<u64> {
                let mut tx = self.pool.begin().await.map_err(db_error)?;
                let statements: &[&'static str] = match kind {
                    RecordKind::Lineage => &[
                        "DELETE FROM lineage_scores WHERE lineage_id IN \
                         (SELECT id FROM lineage WHERE created_at < $1)",
                        // Feedback goes with its lineage record (foreign key, on delete cascade).
                        "DELETE FROM lineage WHERE created_at < $1",
                    ],
                    RecordKind::Conversations => &[
                        "DELETE FROM lineage_scores WHERE lineage_id IN (SELECT l.id FROM lineage l \
                         JOIN conversations c ON l.conversation_id = c.id WHERE c.updated_at < $1)",
                        "DELETE FROM lineage WHERE conversation_id IN \
                         (SELECT id FROM conversations WHERE updated_at < $1)",
                        // Messages go with their conversation (foreign key, on delete cascade).
                        "DELETE FROM conversations WHERE updated_at < $1",
                    ],
                    RecordKind::EvalRuns => &["DELETE FROM eval_runs WHERE started_at < $1"],
                    RecordKind::ShadowResults => {
                        &["DELETE FROM shadow_results WHERE created_at < $1"]
                    }
                    RecordKind::Sessions => &[
                        "DELETE FROM sessions WHERE expires_at < $1 OR revoked_at < $1",
                    ],
                };
                let mut last = 0;
                for statement in statements.iter().copied() {
                    last = sqlx::query(statement)
                        .bind(before)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_error)?
                        .rows_affected();
                }
                tx.commit().await.map_err(db_error)?;
                Ok(last)
            }
        }
    };
}
