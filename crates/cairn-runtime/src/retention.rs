//! Pruning what the retention periods of `[retention]` no longer keep; shared by `cairn prune` and
//! the server's periodic task.

use cairn_core::Catalog;
use cairn_core::catalog::RecordKind;

use crate::config::RetentionSection;

/// Prunes every kind with a period; returns how many records of each kind went. A kind that
/// fails is reported and the others still run.
pub async fn prune_all(
    catalog: &dyn Catalog,
    retention: &RetentionSection,
) -> Vec<(RecordKind, Result<u64, cairn_core::CatalogError>)> {
    let now = chrono::Utc::now();
    let mut done = Vec::new();
    for (kind, period) in retention.periods() {
        let pruned = catalog.prune(kind, now - period).await;
        match &pruned {
            Ok(0) => {}
            Ok(count) => tracing::info!(
                kind = kind.as_str(),
                count,
                "pruned records past their retention period"
            ),
            Err(error) => {
                tracing::error!(kind = kind.as_str(), %error, "cannot prune; the records stay until the next run")
            }
        }
        done.push((kind, pruned));
    }
    done
}
