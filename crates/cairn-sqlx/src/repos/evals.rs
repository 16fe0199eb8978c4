//! Evaluation runs and their results.

use cairn_core::catalog::{CatalogError, EvalResult, EvalRun, EvalStatus};
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

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

#[derive(Debug, sqlx::FromRow)]
pub struct EvalRunRow {
    pub id: Uuid,
    pub suite: String,
    pub target: Json<Value>,
    pub status: String,
    pub summary: Json<Value>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl TryFrom<EvalRunRow> for EvalRun {
    type Error = CatalogError;

    fn try_from(row: EvalRunRow) -> Result<Self, CatalogError> {
        Ok(EvalRun {
            id: row.id,
            suite: row.suite,
            target: row.target.0,
            status: EvalStatus::parse(&row.status)?,
            summary: row.summary.0,
            started_at: row.started_at,
            finished_at: row.finished_at,
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct EvalResultRow {
    pub id: Uuid,
    pub run_id: Uuid,
    pub case_id: String,
    pub passed: bool,
    pub metrics: Json<Value>,
    pub output: Json<Value>,
    pub created_at: DateTime<Utc>,
}

impl From<EvalResultRow> for EvalResult {
    fn from(row: EvalResultRow) -> Self {
        EvalResult {
            id: row.id,
            run_id: row.run_id,
            case_id: row.case_id,
            passed: row.passed,
            metrics: row.metrics.0,
            output: row.output.0,
            created_at: row.created_at,
        }
    }
}

/// Implements [`EvalRepo`](cairn_core::catalog::EvalRepo) for `$catalog`; expanded by
/// [`impl_catalog_repos!`](crate::impl_catalog_repos).
#[doc(hidden)]
#[macro_export]
macro_rules! impl_eval_repo {
    ($catalog:ident, $db:ty) => {
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

            async fn list_eval_runs(
                &self,
                suite: Option<&str>,
                limit: u32,
            ) -> CatalogResult<Vec<EvalRun>> {
                let rows: Vec<EvalRunRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    $crate::eval_run_columns!(),
                    " FROM eval_runs WHERE ($1 IS NULL OR suite = $1) ORDER BY started_at DESC, id DESC LIMIT $2"
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

            async fn cached_eval_call(&self, key: &str) -> CatalogResult<Option<Value>> {
                let row: Option<(Json<Value>,)> =
                    sqlx::query_as("SELECT answer FROM eval_call_cache WHERE key = $1")
                        .bind(key)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_error)?;
                Ok(row.map(|(answer,)| answer.0))
            }

            async fn cache_eval_call(&self, key: &str, answer: Value) -> CatalogResult<()> {
                sqlx::query(
                    "INSERT INTO eval_call_cache (key, answer, created_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (key) DO UPDATE SET answer = $2, created_at = $3",
                )
                .bind(key)
                .bind(Json(&answer))
                .bind(Utc::now())
                .execute(&self.pool)
                .await
                .map_err(db_error)?;
                Ok(())
            }
        }
    };
}
