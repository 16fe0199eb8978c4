//! `[retention]`: how long each kind of record is kept (0: for ever), and how often the server
//! prunes.

use super::*;

/// Days each kind of record is kept; 0 keeps it for ever.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionSection {
    /// Answers' lineage records, with their feedback and online scores.
    pub lineage_days: u32,
    /// Web UI conversations not updated for this long, with their messages and lineage.
    pub conversations_days: u32,
    pub eval_runs_days: u32,
    /// Shadow comparisons (they hold the requests' messages).
    pub shadow_results_days: u32,
    /// Sessions, this long after they expired or were signed out.
    pub sessions_days: u32,
    /// How often `cairn serve` prunes, in minutes; `cairn prune` prunes once.
    pub prune_every_mins: u32,
}

impl Default for RetentionSection {
    fn default() -> Self {
        RetentionSection {
            lineage_days: 0,
            conversations_days: 0,
            eval_runs_days: 0,
            shadow_results_days: 0,
            sessions_days: 7,
            prune_every_mins: 60,
        }
    }
}

impl RetentionSection {
    /// The kinds with a retention period, and the period.
    pub fn periods(&self) -> Vec<(cairn_core::catalog::RecordKind, chrono::Duration)> {
        use cairn_core::catalog::RecordKind;
        [
            (RecordKind::Lineage, self.lineage_days),
            (RecordKind::Conversations, self.conversations_days),
            (RecordKind::EvalRuns, self.eval_runs_days),
            (RecordKind::ShadowResults, self.shadow_results_days),
            (RecordKind::Sessions, self.sessions_days),
        ]
        .into_iter()
        .filter(|(_, days)| *days > 0)
        .map(|(kind, days)| (kind, chrono::Duration::days(i64::from(days))))
        .collect()
    }
}
