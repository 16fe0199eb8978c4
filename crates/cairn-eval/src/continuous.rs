//! Continuous evaluation: a suite attached to a collection or a prompt runs again when that
//! changes, compared with its previous stored run, so a regression shows when it happens rather
//! than at the next release. Whoever notices the change (the CLI after an ingest or a label move,
//! the server after an upload or a label move over the API) calls [`rerun`].

use std::path::Path;

use cairn_core::{Answerer, Catalog};
use uuid::Uuid;

use crate::{CachingAnswerer, Quiet, RunOptions, Suite, run, store};

/// One target's run of an attached suite.
#[derive(Debug, Clone, PartialEq)]
pub struct Rerun {
    pub suite: String,
    pub target: String,
    pub run_id: Uuid,
    /// Every gate held.
    pub passed: bool,
    /// Metrics significantly worse than in the previous run, as `name ±difference`.
    pub regressed: Vec<String>,
}

impl Rerun {
    /// One line for a log or a terminal: whether the suite holds, and what got worse.
    pub fn summary(&self) -> String {
        let verdict = match (self.passed, self.regressed.is_empty()) {
            (true, true) => "holds",
            (true, false) => "holds its gates",
            (false, _) => "FAILED a gate",
        };
        let worse = if self.regressed.is_empty() {
            String::new()
        } else {
            format!(
                "; worse than its previous run: {}",
                self.regressed.join(", ")
            )
        };
        format!("suite `{}` on {} {verdict}{worse}", self.suite, self.target)
    }
}

/// Runs the suite in `file` on each of its targets, with the suite's previous stored run as the
/// baseline, and stores the runs. Judge and prompt calls whose inputs did not change are answered
/// from the catalog's cache.
pub async fn rerun(
    file: &Path,
    answerer: &dyn Answerer,
    catalog: &dyn Catalog,
) -> Result<Vec<Rerun>, String> {
    let answerer = CachingAnswerer::new(answerer, catalog);
    let suite = Suite::load(file).map_err(|e| e.to_string())?;
    let previous = catalog
        .list_eval_runs(Some(&suite.name), 1)
        .await
        .map_err(|e| e.to_string())?
        .first()
        .map(|run| run.id);
    let baseline = match previous {
        Some(id) => store::baseline(catalog, id)
            .await
            .map_err(|e| e.to_string())?,
        None => None,
    };
    let mut reruns = Vec::new();
    for target in &suite.targets {
        let options = RunOptions {
            baseline: baseline.clone(),
            ..RunOptions::default()
        };
        let mut report = run(&suite, target, &answerer, &options, &Quiet)
            .await
            .map_err(|e| e.to_string())?;
        let run_id = store::save(catalog, &mut report)
            .await
            .map_err(|e| format!("the run finished but could not be stored: {e}"))?;
        let regressed = report
            .metrics
            .iter()
            .filter_map(|m| {
                let comparison = m.versus_baseline.as_ref()?;
                comparison
                    .regressed()
                    .then(|| format!("{} {:+.3}", m.name, comparison.difference.value))
            })
            .collect();
        reruns.push(Rerun {
            suite: report.suite.clone(),
            target: report.target.to_string(),
            run_id,
            passed: report.passed,
            regressed,
        });
    }
    Ok(reruns)
}
