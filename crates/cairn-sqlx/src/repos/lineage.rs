//! Lineage records and feedback on answers.

use cairn_core::catalog::{CatalogError, Feedback, LineageRecord, LineageScore};
use cairn_core::model::Usage;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

use crate::unsigned;

#[doc(hidden)]
#[macro_export]
macro_rules! lineage_columns {
    () => {
        "id, conversation_id, app, prompt_name, prompt_version, model, route, retrieval, \
     guard_verdicts, input_tokens, cached_input_tokens, output_tokens, reasoning_tokens, cost_usd, latency_ms, status, \
     error, created_at, steps"
    };
}

#[derive(Debug, sqlx::FromRow)]
pub struct LineageRow {
    pub id: Uuid,
    pub conversation_id: Option<Uuid>,
    pub app: Option<String>,
    pub prompt_name: Option<String>,
    pub prompt_version: Option<i64>,
    pub model: String,
    pub route: Option<String>,
    pub retrieval: Json<Value>,
    pub guard_verdicts: Json<Value>,
    pub input_tokens: i64,
    pub cached_input_tokens: i64,
    pub output_tokens: i64,
    pub reasoning_tokens: i64,
    pub cost_usd: f64,
    pub latency_ms: i64,
    pub status: String,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub steps: Json<Value>,
}

impl TryFrom<LineageRow> for LineageRecord {
    type Error = CatalogError;

    fn try_from(row: LineageRow) -> Result<Self, CatalogError> {
        Ok(LineageRecord {
            id: row.id,
            conversation_id: row.conversation_id,
            app: row.app,
            prompt_name: row.prompt_name,
            prompt_version: row.prompt_version,
            model: row.model,
            route: row.route,
            retrieval: row.retrieval.0,
            guard_verdicts: row.guard_verdicts.0,
            steps: row.steps.0,
            usage: Usage {
                input_tokens: unsigned("input_tokens", row.input_tokens)?,
                cached_input_tokens: unsigned("cached_input_tokens", row.cached_input_tokens)?,
                output_tokens: unsigned("output_tokens", row.output_tokens)?,
                reasoning_tokens: unsigned("reasoning_tokens", row.reasoning_tokens)?,
            },
            cost_usd: row.cost_usd,
            latency_ms: unsigned("latency_ms", row.latency_ms)?,
            status: row.status,
            error: row.error,
            created_at: row.created_at,
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct FeedbackRow {
    pub id: Uuid,
    pub lineage_id: Uuid,
    pub rating: i64,
    pub comment: Option<String>,
    pub user_name: String,
    pub created_at: DateTime<Utc>,
}

impl TryFrom<FeedbackRow> for Feedback {
    type Error = CatalogError;

    fn try_from(row: FeedbackRow) -> Result<Self, CatalogError> {
        Ok(Feedback {
            id: row.id,
            lineage_id: row.lineage_id,
            rating: i16::try_from(row.rating).map_err(|_| {
                CatalogError::Backend(format!("feedback rating {} is out of range", row.rating))
            })?,
            comment: row.comment,
            user: row.user_name,
            created_at: row.created_at,
        })
    }
}

/// Implements [`LineageRepo`](cairn_core::catalog::LineageRepo) for `$catalog`; expanded by
/// [`impl_catalog_repos!`](crate::impl_catalog_repos).
#[doc(hidden)]
#[macro_export]
macro_rules! impl_lineage_repo {
    ($catalog:ident, $db:ty) => {
        #[$crate::async_trait::async_trait]
        impl LineageRepo for $catalog {
            async fn record_lineage(&self, record: LineageRecord) -> CatalogResult<()> {
                sqlx::query(concat!("INSERT INTO lineage (", $crate::lineage_columns!(), ") \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"))
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
                .bind(Json(&record.steps))
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

            async fn list_lineage(
                &self,
                filter: &LineageFilter,
            ) -> CatalogResult<Vec<LineageRecord>> {
                let rows: Vec<LineageRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    $crate::lineage_columns!(),
                    " FROM lineage WHERE ($1 IS NULL OR app = $1) AND ($2 IS NULL OR created_at >= $2) \
                      AND (conversation_id IS NOT NULL OR $3 = 0) \
                      ORDER BY created_at DESC, id DESC LIMIT $4"
                ))
                .bind(filter.app.as_deref())
                .bind(filter.since)
                .bind(i64::from(filter.in_conversations))
                .bind(i64::from(filter.limit.max(1)))
                .fetch_all(&self.pool)
                .await
                .map_err(db_error)?;
                rows.into_iter().map(LineageRecord::try_from).collect()
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

            async fn record_lineage_score(&self, score: LineageScore) -> CatalogResult<()> {
                sqlx::query(
                    "INSERT INTO lineage_scores (lineage_id, metric, score, reason, judge, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (lineage_id, metric) DO UPDATE SET score = $3, reason = $4, judge = $5, created_at = $6",
                )
                .bind(score.lineage_id)
                .bind(&score.metric)
                .bind(score.score)
                .bind(&score.reason)
                .bind(&score.judge)
                .bind(score.created_at)
                .execute(&self.pool)
                .await
                .map_err(db_error)?;
                Ok(())
            }

            async fn list_lineage_scores(&self, lineage_id: Uuid) -> CatalogResult<Vec<LineageScore>> {
                let rows: Vec<LineageScoreRow> = sqlx::query_as(
                    "SELECT lineage_id, metric, score, reason, judge, created_at FROM lineage_scores \
                     WHERE lineage_id = $1 ORDER BY metric",
                )
                .bind(lineage_id)
                .fetch_all(&self.pool)
                .await
                .map_err(db_error)?;
                Ok(rows.into_iter().map(LineageScore::from).collect())
            }
        }
    };
}

#[derive(Debug, sqlx::FromRow)]
pub struct LineageScoreRow {
    pub lineage_id: Uuid,
    pub metric: String,
    pub score: Option<f64>,
    pub reason: String,
    pub judge: String,
    pub created_at: DateTime<Utc>,
}

impl From<LineageScoreRow> for LineageScore {
    fn from(row: LineageScoreRow) -> Self {
        LineageScore {
            lineage_id: row.lineage_id,
            metric: row.metric,
            score: row.score,
            reason: row.reason,
            judge: row.judge,
            created_at: row.created_at,
        }
    }
}
