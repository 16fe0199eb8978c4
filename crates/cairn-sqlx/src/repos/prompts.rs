//! Prompt versions, labels and the labels' audit trail.

use cairn_core::catalog::{LabelMove, PromptLabel, PromptSummary, PromptVersion};
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

#[doc(hidden)]
#[macro_export]
macro_rules! prompt_version_columns {
    () => {
        "id, name, version, template, spec, content_hash, author, message, created_at"
    };
}

#[derive(Debug, sqlx::FromRow)]
pub struct PromptVersionRow {
    pub id: Uuid,
    pub name: String,
    pub version: i64,
    pub template: String,
    pub spec: Json<Value>,
    pub content_hash: String,
    pub author: String,
    pub message: String,
    pub created_at: DateTime<Utc>,
}

impl From<PromptVersionRow> for PromptVersion {
    fn from(row: PromptVersionRow) -> Self {
        PromptVersion {
            id: row.id,
            name: row.name,
            version: row.version,
            template: row.template,
            spec: row.spec.0,
            content_hash: row.content_hash,
            author: row.author,
            message: row.message,
            created_at: row.created_at,
        }
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct PromptSummaryRow {
    pub name: String,
    pub latest_version: i64,
    pub updated_at: DateTime<Utc>,
}

impl From<PromptSummaryRow> for PromptSummary {
    fn from(row: PromptSummaryRow) -> Self {
        PromptSummary {
            name: row.name,
            latest_version: row.latest_version,
            updated_at: row.updated_at,
        }
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct PromptLabelRow {
    pub name: String,
    pub label: String,
    pub version: i64,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
}

impl From<PromptLabelRow> for PromptLabel {
    fn from(row: PromptLabelRow) -> Self {
        PromptLabel {
            name: row.name,
            label: row.label,
            version: row.version,
            updated_at: row.updated_at,
            updated_by: row.updated_by,
        }
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct LabelMoveRow {
    pub name: String,
    pub label: String,
    pub from_version: Option<i64>,
    pub to_version: i64,
    pub actor: String,
    pub reason: String,
    pub moved_at: DateTime<Utc>,
    pub eval_run: Option<Uuid>,
}

impl From<LabelMoveRow> for LabelMove {
    fn from(row: LabelMoveRow) -> Self {
        LabelMove {
            name: row.name,
            label: row.label,
            from_version: row.from_version,
            to_version: row.to_version,
            actor: row.actor,
            reason: row.reason,
            moved_at: row.moved_at,
            eval_run: row.eval_run,
        }
    }
}

/// Implements [`PromptRepo`](cairn_core::catalog::PromptRepo) for `$catalog`; expanded by
/// [`impl_catalog_repos!`](crate::impl_catalog_repos).
#[doc(hidden)]
#[macro_export]
macro_rules! impl_prompt_repo {
    ($catalog:ident, $db:ty) => {
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
                    "INSERT INTO prompt_label_moves (id, name, label, from_version, to_version, actor, reason, moved_at, eval_run) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                     RETURNING name, label, from_version, to_version, actor, reason, moved_at, eval_run",
                )
                .bind(Uuid::now_v7())
                .bind(&set.name)
                .bind(&set.label)
                .bind(previous.map(|(v,)| v))
                .bind(set.version)
                .bind(&set.actor)
                .bind(&set.reason)
                .bind(now)
                .bind(set.eval_run)
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
                    "SELECT name, label, from_version, to_version, actor, reason, moved_at, eval_run FROM prompt_label_moves \
                     WHERE name = $1 ORDER BY moved_at, id",
                )
                .bind(name)
                .fetch_all(&self.pool)
                .await
                .map_err(db_error)?;
                Ok(rows.into_iter().map(LabelMove::from).collect())
            }
        }
    };
}
