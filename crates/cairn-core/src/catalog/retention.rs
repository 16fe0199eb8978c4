//! How long records are kept: each kind can be pruned of what is older than a time. Deleting a
//! conversation (or letting it expire) takes its answers' lineage, feedback and scores with it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::CatalogResult;

/// A kind of record with a retention period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    /// Answers' lineage records, with their feedback and online-evaluation scores.
    Lineage,
    /// Web UI conversations not updated since, with their messages and their answers' lineage.
    Conversations,
    /// Stored eval runs and their results.
    EvalRuns,
    /// Shadow comparisons (they hold the requests' messages).
    ShadowResults,
    /// Sessions that expired or were signed out before the time.
    Sessions,
}

impl RecordKind {
    pub const ALL: [RecordKind; 5] = [
        RecordKind::Lineage,
        RecordKind::Conversations,
        RecordKind::EvalRuns,
        RecordKind::ShadowResults,
        RecordKind::Sessions,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Lineage => "lineage",
            RecordKind::Conversations => "conversations",
            RecordKind::EvalRuns => "eval_runs",
            RecordKind::ShadowResults => "shadow_results",
            RecordKind::Sessions => "sessions",
        }
    }
}

#[async_trait]
pub trait RetentionRepo: Send + Sync {
    /// Deletes the records of `kind` older than `before` (and what belongs to them); returns how
    /// many records of `kind` went.
    async fn prune(&self, kind: RecordKind, before: DateTime<Utc>) -> CatalogResult<u64>;
}
