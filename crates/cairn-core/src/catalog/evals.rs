//! Evaluation runs and their per-case results.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::{CatalogError, CatalogResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvalStatus {
    Running,
    Passed,
    Failed,
    Errored,
}

impl EvalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EvalStatus::Running => "running",
            EvalStatus::Passed => "passed",
            EvalStatus::Failed => "failed",
            EvalStatus::Errored => "errored",
        }
    }

    pub fn parse(s: &str) -> CatalogResult<Self> {
        match s {
            "running" => Ok(EvalStatus::Running),
            "passed" => Ok(EvalStatus::Passed),
            "failed" => Ok(EvalStatus::Failed),
            "errored" => Ok(EvalStatus::Errored),
            other => Err(CatalogError::Backend(format!(
                "unknown eval status `{other}` in the catalog"
            ))),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalRun {
    pub id: Uuid,
    pub suite: String,
    /// What was evaluated: app, prompt version, model.
    pub target: Value,
    pub status: EvalStatus,
    /// Aggregated metrics and gate results.
    pub summary: Value,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalResult {
    pub id: Uuid,
    pub run_id: Uuid,
    pub case_id: String,
    pub passed: bool,
    pub metrics: Value,
    pub output: Value,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEvalResult {
    pub run_id: Uuid,
    pub case_id: String,
    pub passed: bool,
    pub metrics: Value,
    pub output: Value,
}

#[async_trait]
pub trait EvalRepo: Send + Sync {
    async fn create_eval_run(&self, suite: &str, target: Value) -> CatalogResult<EvalRun>;
    /// Closes a running run; a finished run cannot be finished again.
    async fn finish_eval_run(
        &self,
        id: Uuid,
        status: EvalStatus,
        summary: Value,
    ) -> CatalogResult<EvalRun>;
    async fn get_eval_run(&self, id: Uuid) -> CatalogResult<Option<EvalRun>>;
    /// A suite's runs, or every suite's (`None`), newest first.
    async fn list_eval_runs(&self, suite: Option<&str>, limit: u32) -> CatalogResult<Vec<EvalRun>>;
    /// Records one case's result; a case is recorded once per run.
    async fn record_eval_result(&self, new: NewEvalResult) -> CatalogResult<EvalResult>;
    async fn list_eval_results(&self, run_id: Uuid) -> CatalogResult<Vec<EvalResult>>;
    /// A cached eval call's answer, by the hash of its inputs.
    async fn cached_eval_call(&self, key: &str) -> CatalogResult<Option<Value>>;
    /// Caches an eval call's answer; a later answer under the same key replaces it.
    async fn cache_eval_call(&self, key: &str, answer: Value) -> CatalogResult<()>;
}
