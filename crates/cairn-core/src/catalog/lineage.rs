//! Lineage (everything that went into one answer) and feedback on answers.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::{CatalogError, CatalogResult};

/// Everything that went into one answer: the audit record of the chat flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineageRecord {
    /// Also the answer's trace id.
    pub id: Uuid,
    pub conversation_id: Option<Uuid>,
    pub app: Option<String>,
    pub prompt_name: Option<String>,
    pub prompt_version: Option<i64>,
    pub model: String,
    pub route: Option<String>,
    /// Retrieved chunk ids with their scores.
    pub retrieval: Value,
    pub guard_verdicts: Value,
    /// An agent run's steps ([`crate::agent::AgentStep`]s); empty for other answers.
    pub steps: Value,
    pub usage: crate::model::Usage,
    pub cost_usd: f64,
    pub latency_ms: u64,
    /// `ok`, or the error class.
    pub status: String,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Feedback {
    pub id: Uuid,
    pub lineage_id: Uuid,
    /// +1 or -1.
    pub rating: i16,
    pub comment: Option<String>,
    pub user: String,
    pub created_at: DateTime<Utc>,
}

/// A judge's score of a production answer (online evaluation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineageScore {
    pub lineage_id: Uuid,
    pub metric: String,
    /// `None`: the judge could not score it (`reason` says why).
    pub score: Option<f64>,
    pub reason: String,
    /// The model or route that judged.
    pub judge: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewFeedback {
    pub lineage_id: Uuid,
    pub rating: i16,
    pub comment: Option<String>,
    pub user: String,
}

impl NewFeedback {
    pub fn validate(&self) -> CatalogResult<()> {
        if self.rating != 1 && self.rating != -1 {
            return Err(CatalogError::Invalid(format!(
                "feedback rating must be 1 (up) or -1 (down), got {}",
                self.rating
            )));
        }
        Ok(())
    }
}

/// Which lineage records to list.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LineageFilter {
    pub app: Option<String>,
    pub since: Option<DateTime<Utc>>,
    /// Only answers given in a web UI conversation (whose question and answer are kept).
    pub in_conversations: bool,
    pub limit: u32,
}

#[async_trait]
pub trait LineageRepo: Send + Sync {
    async fn record_lineage(&self, record: LineageRecord) -> CatalogResult<()>;
    async fn get_lineage(&self, id: Uuid) -> CatalogResult<Option<LineageRecord>>;
    /// Records matching `filter`, newest first.
    async fn list_lineage(&self, filter: &LineageFilter) -> CatalogResult<Vec<LineageRecord>>;
    /// Stores feedback on an answer; the lineage record must exist.
    async fn record_feedback(&self, new: NewFeedback) -> CatalogResult<Feedback>;
    async fn list_feedback(&self, lineage_id: Uuid) -> CatalogResult<Vec<Feedback>>;
    /// Records an online-evaluation score of an answer; a later score of the same metric replaces
    /// it. The lineage record need not exist yet.
    async fn record_lineage_score(&self, score: LineageScore) -> CatalogResult<()>;
    /// An answer's online-evaluation scores, by metric.
    async fn list_lineage_scores(&self, lineage_id: Uuid) -> CatalogResult<Vec<LineageScore>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feedback_rating_is_up_or_down() {
        let mut feedback = NewFeedback {
            lineage_id: Uuid::nil(),
            rating: 1,
            comment: None,
            user: "u".into(),
        };
        assert!(feedback.validate().is_ok());
        feedback.rating = 5;
        assert!(feedback.validate().is_err());
    }
}
