//! `cairn prune`: deletes what `[retention]` no longer keeps, once (the server also does it
//! periodically), and says how many records of each kind went.

use cairn_core::Catalog;
use cairn_runtime::config::RetentionSection;

pub async fn run(
    catalog: &dyn Catalog,
    retention: &RetentionSection,
    json: bool,
) -> anyhow::Result<()> {
    if retention.periods().is_empty() {
        println!("nothing to prune: every [retention] period is 0 (keep for ever)");
        return Ok(());
    }
    let results = cairn_runtime::retention::prune_all(catalog, retention).await;
    let mut failed = Vec::new();
    let mut rows = Vec::new();
    for (kind, result) in results {
        match result {
            Ok(count) => {
                if !json {
                    println!("{:<16} {count} pruned", kind.as_str());
                }
                rows.push(serde_json::json!({"kind": kind, "pruned": count}));
            }
            Err(error) => failed.push(format!("{}: {error}", kind.as_str())),
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    }
    if !failed.is_empty() {
        anyhow::bail!(
            "some kinds could not be pruned (the rest were); run `cairn prune` again:\n{}",
            failed.join("\n")
        );
    }
    Ok(())
}
