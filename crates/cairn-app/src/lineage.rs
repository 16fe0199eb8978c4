//! How an answer was produced, written once its outcome is known: one [`Lineage`] per answer,
//! consumed by the write so that no answer is recorded twice, and written as `cancelled` if it is
//! dropped unrecorded (a client that went away mid-stream).

use std::sync::Arc;
use std::time::Instant;

use cairn_core::Catalog;
use cairn_core::agent::{RunOutcome, StepLog};
use cairn_core::catalog::LineageRecord;
use cairn_core::model::Usage;
use cairn_rag::Citation;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::guards::VerdictRecord;

/// What lineage knows of an answer before its outcome.
#[derive(Debug, Clone)]
pub(crate) struct Draft {
    pub id: Uuid,
    pub conversation_id: Option<Uuid>,
    pub app: Option<String>,
    pub prompt: Option<(String, Option<i64>)>,
    /// What the model was asked for: the route, model or app route name.
    pub model: String,
    pub route: String,
    /// What was cited ([`retrieval_json`]), made once when the answer is prepared.
    pub retrieval: Value,
    pub verdicts: Vec<VerdictRecord>,
    /// An agent run's steps, read when the outcome is known.
    pub steps: Option<StepLog>,
    /// The passages an agent run's `search` gave it: its retrieval, read when the outcome is known.
    pub cited: Option<crate::agent_tools::Cited>,
    pub started: Instant,
}

/// The outcome half of a lineage record.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub usage: Usage,
    pub cost_usd: Option<f64>,
    /// `ok`, `cached`, `cancelled`, `blocked` or a model error's class.
    pub status: String,
    pub error: Option<String>,
}

impl Outcome {
    pub fn ok(usage: Usage, cost_usd: Option<f64>, status: &str) -> Outcome {
        Outcome {
            usage,
            cost_usd,
            status: status.to_owned(),
            error: None,
        }
    }

    pub fn failed(status: &str, error: String) -> Outcome {
        Outcome {
            usage: Usage::default(),
            cost_usd: None,
            status: status.to_owned(),
            error: Some(error),
        }
    }
}

/// Writes one answer's lineage record, exactly once.
#[derive(Debug)]
pub(crate) struct Lineage {
    catalog: Arc<dyn Catalog>,
    draft: Option<Draft>,
}

impl Lineage {
    pub fn new(catalog: Arc<dyn Catalog>, draft: Draft) -> Lineage {
        Lineage {
            catalog,
            draft: Some(draft),
        }
    }

    pub fn draft_mut(&mut self) -> Option<&mut Draft> {
        self.draft.as_mut()
    }

    /// Writes the record in the background; later calls do nothing.
    pub fn write(&mut self, outcome: Outcome) {
        let Some(draft) = self.draft.take() else {
            return;
        };
        let _span = tracing::info_span!("cairn.lineage", lineage_id = %draft.id).entered();
        let record = record(draft, outcome);
        let catalog = self.catalog.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if let Err(e) = catalog.record_lineage(record).await {
                        tracing::warn!(error = %e, "could not write a lineage record");
                    }
                });
            }
            Err(_) => tracing::warn!(
                lineage_id = %record.id,
                "no async runtime to write a lineage record with; it is lost"
            ),
        }
    }
}

impl Drop for Lineage {
    fn drop(&mut self) {
        self.write(Outcome::ok(Usage::default(), None, "cancelled"));
    }
}

/// The retrieval part of a record: what was cited, by chunk, with its marker and score.
pub(crate) fn retrieval_json(citations: &[Citation]) -> Value {
    citations
        .iter()
        .map(|c| {
            json!({"index": c.index, "chunk_id": c.chunk_id, "document_id": c.document_id,
                   "source": c.source, "title": c.title, "score": c.score})
        })
        .collect()
}

fn record(draft: Draft, outcome: Outcome) -> LineageRecord {
    let (steps, run_outcome) = match &draft.steps {
        Some(log) => (
            serde_json::to_value(log.steps()).unwrap_or(Value::Null),
            log.outcome(),
        ),
        None => (json!([]), None),
    };
    // An agent that stopped at a limit answered, but not as asked: its status says which limit.
    let status = match run_outcome {
        Some(stopped) if outcome.status == "ok" && stopped != RunOutcome::Answered => {
            stopped.as_str().to_owned()
        }
        _ => outcome.status,
    };
    let retrieval = match &draft.cited {
        Some(cited) => retrieval_json(&cited.snapshot()),
        None => draft.retrieval,
    };
    LineageRecord {
        id: draft.id,
        conversation_id: draft.conversation_id,
        app: draft.app,
        prompt_name: draft.prompt.as_ref().map(|(name, _)| name.clone()),
        prompt_version: draft.prompt.as_ref().and_then(|(_, version)| *version),
        model: draft.model,
        route: Some(draft.route),
        retrieval,
        guard_verdicts: serde_json::to_value(&draft.verdicts).unwrap_or(Value::Null),
        steps,
        usage: outcome.usage,
        cost_usd: outcome.cost_usd.unwrap_or(0.0),
        latency_ms: u64::try_from(draft.started.elapsed().as_millis()).unwrap_or(u64::MAX),
        status,
        error: outcome.error,
        created_at: chrono::Utc::now(),
    }
}
