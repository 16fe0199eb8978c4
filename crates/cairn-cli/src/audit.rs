//! `cairn audit`: the catalog's append-only audit log, filtered; and how the CLI's own changes
//! (keys, prompt versions and labels, ingests) are recorded in it, as `cli:USER` from `cli`.

use anyhow::Context;
use cairn_core::Catalog;
use cairn_core::catalog::{AuditFilter, AuditOutcome, NewAuditEvent};
use chrono::{DateTime, Utc};
use clap::Args;
use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use serde_json::Value;

/// Who the CLI acts as: `cli:$USER`.
fn actor() -> String {
    format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    )
}

/// Records a change the CLI made. A catalog failure is reported, never turned into the command's
/// failure: the change has already happened.
pub async fn record(catalog: &dyn Catalog, action: &str, target: &str, detail: Value) {
    let event = NewAuditEvent {
        actor: actor(),
        action: action.to_owned(),
        target: target.to_owned(),
        outcome: AuditOutcome::Ok,
        source: "cli".into(),
        detail,
    };
    if let Err(error) = catalog.record_audit(event).await {
        eprintln!(
            "warning: the change was made but could not be written to the audit log: {error}"
        );
    }
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only this actor: `local`, `key:NAME`, `user:SUBJECT`, `cli:USER`, `anonymous`.
    #[arg(long)]
    actor: Option<String>,
    /// Only actions starting with this: `key.`, `prompt.label`, `DELETE /v1/collections`, `sign_in`.
    #[arg(long)]
    action: Option<String>,
    /// Only this outcome: ok, refused or failed.
    #[arg(long)]
    outcome: Option<String>,
    /// Only events since this long ago (`30m`, `24h`, `7d`) or this RFC 3339 time.
    #[arg(long)]
    since: Option<String>,
    /// At most this many events, newest first.
    #[arg(long, default_value_t = 100)]
    limit: u32,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// `30m`, `24h`, `7d` ago, or an RFC 3339 time.
pub(crate) fn since(text: &str, now: DateTime<Utc>) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let amount: i64 = number.parse().with_context(|| {
        format!("--since `{text}` is neither a duration like 24h nor an RFC 3339 time")
    })?;
    let span = match unit {
        "m" => chrono::Duration::minutes(amount),
        "h" => chrono::Duration::hours(amount),
        "d" => chrono::Duration::days(amount),
        _ => anyhow::bail!("--since `{text}`: use m, h or d, e.g. 24h"),
    };
    Ok(now - span)
}

pub async fn run(catalog: &dyn Catalog, args: AuditArgs) -> anyhow::Result<()> {
    let outcome = match args.outcome.as_deref() {
        None => None,
        Some(text) => Some(
            AuditOutcome::parse(text)
                .with_context(|| format!("--outcome `{text}`: use ok, refused or failed"))?,
        ),
    };
    let filter = AuditFilter {
        actor: args.actor,
        action: args.action,
        outcome,
        since: args
            .since
            .as_deref()
            .map(|s| since(s, Utc::now()))
            .transpose()?,
        limit: args.limit.clamp(1, 10_000),
    };
    let events = catalog.list_audit(&filter).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&events)?);
        return Ok(());
    }
    if events.is_empty() {
        println!("no audit events match");
        return Ok(());
    }
    let mut table = Table::new();
    table
        .load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(vec!["at", "actor", "action", "target", "outcome", "from"]);
    for event in events {
        table.add_row(vec![
            event.at.format("%Y-%m-%d %H:%M:%S").to_string(),
            event.actor,
            event.action,
            event.target,
            event.outcome.as_str().to_owned(),
            event.source,
        ]);
    }
    println!("{table}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_durations_and_times() {
        let now = DateTime::parse_from_rfc3339("2026-12-06T12:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        assert_eq!(
            since("24h", now).expect("24h").to_rfc3339(),
            "2026-12-05T12:00:00+00:00"
        );
        assert_eq!(
            since("30m", now).expect("30m").to_rfc3339(),
            "2026-12-06T11:30:00+00:00"
        );
        assert_eq!(
            since("2026-12-01T00:00:00Z", now)
                .expect("time")
                .to_rfc3339(),
            "2026-12-01T00:00:00+00:00"
        );
        let refused = since("yesterday", now)
            .expect_err("not a duration")
            .to_string();
        assert!(refused.contains("24h"), "{refused}");
    }
}
