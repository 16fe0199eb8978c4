//! The server's side of continuous evaluation: after a change made over the API (documents
//! uploaded or deleted, a label moved), the suites `[[evals.continuous]]` attaches to what changed
//! run in the background through the answer pipeline, are stored, and compared with their
//! previous runs; a failed gate or a regression is logged as a warning. The request that made the
//! change never waits for them.

use std::sync::Arc;

use cairn_core::Catalog;

use crate::config::ContinuousSection;

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change<'a> {
    Collection(&'a str),
    Prompt(&'a str),
}

/// Runs attached suites after changes; cheap to clone.
#[derive(Debug, Clone)]
pub struct Watcher {
    rules: Arc<Vec<ContinuousSection>>,
    pipeline: cairn_app::Pipeline,
    catalog: Arc<dyn Catalog>,
}

impl Watcher {
    pub fn new(
        rules: Vec<ContinuousSection>,
        pipeline: cairn_app::Pipeline,
        catalog: Arc<dyn Catalog>,
    ) -> Watcher {
        Watcher {
            rules: Arc::new(rules),
            pipeline,
            catalog,
        }
    }

    /// Starts the suites attached to `change` on a background task; returns how many.
    pub fn changed(&self, change: Change<'_>) -> usize {
        let files: Vec<std::path::PathBuf> = self
            .rules
            .iter()
            .filter(|rule| match change {
                Change::Collection(name) => rule.collections.iter().any(|c| c == name),
                Change::Prompt(name) => rule.prompts.iter().any(|p| p == name),
            })
            .map(|rule| rule.suite.clone())
            .collect();
        let count = files.len();
        if count == 0 {
            return 0;
        }
        let what = match change {
            Change::Collection(name) => format!("collection `{name}` changed"),
            Change::Prompt(name) => format!("a label of prompt `{name}` moved"),
        };
        let answerer =
            cairn_app::PipelineAnswerer::new(self.pipeline.clone(), cairn_core::Principal::local());
        let catalog = self.catalog.clone();
        tokio::spawn(async move {
            for file in files {
                tracing::info!(suite = %file.display(), "{what}; running the attached suite");
                match cairn_eval::continuous::rerun(&file, &answerer, catalog.as_ref()).await {
                    Ok(reruns) => {
                        for rerun in reruns {
                            if rerun.passed && rerun.regressed.is_empty() {
                                tracing::info!(run = %rerun.run_id, "continuous eval: {}", rerun.summary());
                            } else {
                                tracing::warn!(run = %rerun.run_id, "continuous eval: {what}, and {}", rerun.summary());
                            }
                        }
                    }
                    Err(error) => {
                        tracing::error!(suite = %file.display(), %error, "continuous eval could not run; the change stands")
                    }
                }
            }
        });
        count
    }
}
