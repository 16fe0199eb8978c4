//! `cairn dataset from-lineage`: production answers become eval cases. The web UI keeps each
//! conversation's question and answer (with what guards redacted left as placeholders when
//! redaction is on); their lineage records say which app answered, when, what users thought of it
//! and what the guards found. The cases are written as a JSONL dataset any suite can read.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use cairn_core::Catalog;
use cairn_core::catalog::{LineageFilter, LineageRecord, Message};
use clap::{Subcommand, ValueEnum};
use serde_json::{Value, json};

#[derive(Debug, Subcommand)]
pub enum DatasetCommand {
    /// Turn production answers given in the web UI into dataset cases (JSONL).
    FromLineage(FromLineageArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FeedbackFilter {
    /// Answers someone rated down.
    Down,
    /// Answers someone rated up.
    Up,
    /// Answers with a written comment.
    Commented,
    /// Answers with any feedback.
    Any,
}

#[derive(Debug, clap::Args)]
pub struct FromLineageArgs {
    /// Only this app's answers.
    #[arg(long)]
    app: Option<String>,
    /// Only answers since this long ago (`24h`, `7d`) or this RFC 3339 time.
    #[arg(long)]
    since: Option<String>,
    /// Only answers with this feedback.
    #[arg(long, value_enum)]
    feedback: Option<FeedbackFilter>,
    /// Only answers a guard flagged, redacted or blocked something in.
    #[arg(long)]
    flagged: bool,
    /// Keep the answer as the case's `response`, for a suite with `target: given`.
    #[arg(long)]
    with_answers: bool,
    /// Look at this many answers at most, newest first.
    #[arg(long, default_value_t = 1000)]
    limit: u32,
    /// Where to write the cases (JSONL).
    #[arg(long)]
    out: PathBuf,
}

/// Whether a guard did anything to this answer.
fn flagged(record: &LineageRecord) -> bool {
    fn acted(value: &Value) -> bool {
        match value {
            Value::Array(items) => items.iter().any(acted),
            Value::Object(map) => {
                map.get("action")
                    .and_then(Value::as_str)
                    .is_some_and(|a| a != "allow")
                    || map.values().any(acted)
            }
            _ => false,
        }
    }
    acted(&record.guard_verdicts)
}

/// The question an answer answered: the last user message before the assistant message that
/// carries the lineage id, and that message.
fn exchange(messages: &[Message], lineage: uuid::Uuid) -> Option<(String, String)> {
    let at = messages
        .iter()
        .position(|m| m.role == "assistant" && m.lineage_id == Some(lineage))?;
    let question = messages[..at].iter().rev().find(|m| m.role == "user")?;
    Some((question.content.clone(), messages[at].content.clone()))
}

pub async fn run(catalog: &dyn Catalog, command: DatasetCommand) -> anyhow::Result<()> {
    let DatasetCommand::FromLineage(args) = command;
    let since = args
        .since
        .as_deref()
        .map(|s| crate::audit::since(s, chrono::Utc::now()))
        .transpose()?;
    let records = catalog
        .list_lineage(&LineageFilter {
            app: args.app.clone(),
            since,
            in_conversations: true,
            limit: args.limit.max(1),
        })
        .await?;
    let mut conversations: HashMap<uuid::Uuid, Vec<Message>> = HashMap::new();
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(&args.out)
            .with_context(|| format!("cannot write {}", args.out.display()))?,
    );
    let (mut written, mut unmatched) = (0usize, 0usize);
    for record in &records {
        let guarded = flagged(record);
        if args.flagged && !guarded {
            continue;
        }
        let feedback = catalog.list_feedback(record.id).await?;
        let keep = match args.feedback {
            None => true,
            Some(FeedbackFilter::Down) => feedback.iter().any(|f| f.rating < 0),
            Some(FeedbackFilter::Up) => feedback.iter().any(|f| f.rating > 0),
            Some(FeedbackFilter::Commented) => feedback.iter().any(|f| f.comment.is_some()),
            Some(FeedbackFilter::Any) => !feedback.is_empty(),
        };
        if !keep {
            continue;
        }
        let Some(conversation) = record.conversation_id else {
            continue;
        };
        if let std::collections::hash_map::Entry::Vacant(slot) = conversations.entry(conversation) {
            slot.insert(catalog.list_messages(conversation).await?);
        }
        let Some((question, answer)) = exchange(&conversations[&conversation], record.id) else {
            // The conversation was deleted, or the answer never completed.
            unmatched += 1;
            continue;
        };
        let mut tags = vec![format!("lineage:{}", record.id)];
        tags.extend(record.app.iter().map(|a| format!("app:{a}")));
        if feedback.iter().any(|f| f.rating < 0) {
            tags.push("feedback:down".into());
        }
        if feedback.iter().any(|f| f.rating > 0) {
            tags.push("feedback:up".into());
        }
        if guarded {
            tags.push("guarded".into());
        }
        let mut case = json!({
            "id": format!("lineage-{}", record.id.simple()),
            "question": question,
            "tags": tags,
        });
        let comments: Vec<&str> = feedback
            .iter()
            .filter_map(|f| f.comment.as_deref())
            .collect();
        if !comments.is_empty() {
            case["variables"] = json!({"feedback_comments": comments.join("\n")});
        }
        if args.with_answers {
            case["response"] = json!(answer);
            case["contexts"] = json!([]);
        }
        writeln!(out, "{case}")?;
        written += 1;
    }
    out.flush()?;
    eprintln!(
        "wrote {written} case(s) to {} from {} answer(s) looked at{}",
        args.out.display(),
        records.len(),
        if unmatched > 0 {
            format!(
                "; {unmatched} had no stored question (conversation deleted, or the answer never completed)"
            )
        } else {
            String::new()
        }
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(role: &str, content: &str, lineage: Option<uuid::Uuid>) -> Message {
        Message {
            id: uuid::Uuid::now_v7(),
            conversation_id: uuid::Uuid::nil(),
            role: role.into(),
            content: content.into(),
            lineage_id: lineage,
            created_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn an_answer_is_paired_with_the_question_before_it() {
        let (first, second) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
        let messages = [
            message("user", "What is Cairn?", None),
            message("assistant", "An LLMOps platform.", Some(first)),
            message("user", "Where is the catalog?", None),
            message("assistant", "Under .cairn.", Some(second)),
        ];
        assert_eq!(
            exchange(&messages, second),
            Some(("Where is the catalog?".into(), "Under .cairn.".into()))
        );
        assert_eq!(
            exchange(&messages, first).map(|e| e.0),
            Some("What is Cairn?".into())
        );
        assert!(exchange(&messages, uuid::Uuid::nil()).is_none());
    }

    #[test]
    fn a_guard_that_acted_anywhere_in_the_verdicts_flags_the_answer() {
        let mut record = LineageRecord {
            id: uuid::Uuid::nil(),
            conversation_id: None,
            app: None,
            prompt_name: None,
            prompt_version: None,
            model: "m".into(),
            route: None,
            retrieval: json!([]),
            guard_verdicts: json!([{"guard": "pii", "stage": "input", "action": "allow"}]),
            steps: json!([]),
            usage: cairn_core::model::Usage::default(),
            cost_usd: 0.0,
            latency_ms: 0,
            status: "ok".into(),
            error: None,
            created_at: chrono::Utc::now(),
        };
        assert!(!flagged(&record));
        record.guard_verdicts = json!([{"guard": "pii", "stage": "input", "action": "redact"}]);
        assert!(flagged(&record));
    }
}
