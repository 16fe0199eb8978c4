//! The registry: prompt versions and labels in the catalog, resolved and rendered with caches.
//!
//! Versions are immutable, so compiled versions are cached for the life of the process. Labels move,
//! so label resolution is cached with invalidation: a move through this registry invalidates at once;
//! a move by another replica arrives through the catalog's label feed (PostgreSQL LISTEN/NOTIFY), and
//! a time-to-live bounds staleness if that feed is interrupted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use cairn_core::Catalog;
use cairn_core::catalog::{LabelMove, NewPromptVersion, PromptVersion, PublishOutcome, SetLabel};
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::Value;

use crate::error::PromptError;
use crate::gates::{self, LabelGate};
use crate::render::{CompiledPrompt, RenderLimits, RenderedPrompt};
use crate::source::PromptFile;

/// Compiled versions are keyed by name and number, which identify an immutable version.
type VersionKey = (String, i64);

/// Which version of a prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    Latest,
    Version(i64),
    Label(String),
}

/// The prompts the platform itself uses, as shipped in `prompts/`.
const BUILTIN: [(&str, &str); 9] = [
    (
        "prompts/rag_answer.prompt",
        include_str!("../../../prompts/rag_answer.prompt"),
    ),
    (
        "prompts/query_rewrite.prompt",
        include_str!("../../../prompts/query_rewrite.prompt"),
    ),
    (
        "prompts/eval_faithfulness.prompt",
        include_str!("../../../prompts/eval_faithfulness.prompt"),
    ),
    (
        "prompts/eval_answer_relevance.prompt",
        include_str!("../../../prompts/eval_answer_relevance.prompt"),
    ),
    (
        "prompts/eval_answer_correctness.prompt",
        include_str!("../../../prompts/eval_answer_correctness.prompt"),
    ),
    (
        "prompts/eval_context_recall.prompt",
        include_str!("../../../prompts/eval_context_recall.prompt"),
    ),
    (
        "prompts/eval_rubric.prompt",
        include_str!("../../../prompts/eval_rubric.prompt"),
    ),
    (
        "prompts/eval_pairwise.prompt",
        include_str!("../../../prompts/eval_pairwise.prompt"),
    ),
    (
        "prompts/agent_system.prompt",
        include_str!("../../../prompts/agent_system.prompt"),
    ),
];

impl Selector {
    /// Splits `name`, `name@3` or `name@production`.
    pub fn parse_reference(reference: &str) -> (String, Selector) {
        match reference.split_once('@') {
            Some((name, selector)) => (name.to_owned(), Selector::parse(selector)),
            None => (reference.to_owned(), Selector::Latest),
        }
    }

    /// `3`, `v3`, `latest` or a label name.
    pub fn parse(selector: &str) -> Selector {
        let number = selector.strip_prefix('v').unwrap_or(selector);
        match number.parse::<i64>() {
            Ok(version) => Selector::Version(version),
            Err(_) if selector == "latest" => Selector::Latest,
            Err(_) => Selector::Label(selector.to_owned()),
        }
    }
}

impl std::fmt::Display for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Selector::Latest => write!(f, "latest"),
            Selector::Version(version) => write!(f, "v{version}"),
            Selector::Label(label) => write!(f, "{label}"),
        }
    }
}

/// How a local prompt file compares with the catalog.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileStatus {
    pub name: String,
    pub path: String,
    /// The stored version with the file's content, if any.
    pub matching_version: Option<i64>,
    pub latest_version: Option<i64>,
    /// Each label with its version and whether that version has the file's content.
    pub labels: Vec<(String, i64, bool)>,
}

/// The prompt registry.
#[derive(Debug)]
pub struct PromptRegistry {
    catalog: Arc<dyn Catalog>,
    limits: RenderLimits,
    label_ttl: Duration,
    compiled: Mutex<HashMap<VersionKey, Arc<CompiledPrompt>>>,
    labels: RwLock<HashMap<(String, String), (i64, Instant)>>,
    /// Labels that move only with a passing eval run.
    gates: Vec<LabelGate>,
}

impl PromptRegistry {
    pub fn new(catalog: Arc<dyn Catalog>, limits: RenderLimits, label_ttl: Duration) -> Arc<Self> {
        Arc::new(PromptRegistry {
            catalog,
            limits,
            label_ttl,
            compiled: Mutex::new(HashMap::new()),
            labels: RwLock::new(HashMap::new()),
            gates: Vec::new(),
        })
    }

    /// The same registry with eval-gated labels (`[[prompts.gates]]`).
    pub fn with_gates(
        catalog: Arc<dyn Catalog>,
        limits: RenderLimits,
        label_ttl: Duration,
        gates: Vec<LabelGate>,
    ) -> Arc<Self> {
        Arc::new(PromptRegistry {
            catalog,
            limits,
            label_ttl,
            compiled: Mutex::new(HashMap::new()),
            labels: RwLock::new(HashMap::new()),
            gates,
        })
    }

    /// The gate on `name`'s `label`, if it is eval-gated.
    pub fn gate(&self, name: &str, label: &str) -> Option<&LabelGate> {
        self.gates
            .iter()
            .find(|g| g.prompt == name && g.label == label)
    }

    /// Follows label moves made by other processes, when the catalog has a feed of them (PostgreSQL).
    /// Runs until the feed ends; call it on a spawned task.
    pub async fn follow_label_moves(self: Arc<Self>) {
        let feed = match self.catalog.watch_label_moves().await {
            Ok(Some(feed)) => feed,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(
                    "cannot follow prompt label moves ({e}); cached labels expire after {:?}",
                    self.label_ttl
                );
                return;
            }
        };
        let mut feed = feed;
        while let Some((name, label)) = feed.next().await {
            self.invalidate_label(&name, &label);
        }
    }

    pub fn invalidate_label(&self, name: &str, label: &str) {
        if let Ok(mut labels) = self.labels.write() {
            labels.remove(&(name.to_owned(), label.to_owned()));
        }
    }

    /// Validates a prompt file (parse, compile, variables) without publishing it.
    pub fn check(&self, file: &PromptFile) -> Result<(), PromptError> {
        CompiledPrompt::compile(file.clone(), None, self.limits).map(|_| ())
    }

    /// Publishes the platform's own prompts (those shipped in `prompts/`) that the catalog does not
    /// have yet, labelled `production`, so that a fresh installation answers out of the box.
    /// Prompts already in the catalog are left alone: after the first start, prompt engineers own
    /// them. Returns the names it published.
    pub async fn seed_builtin(&self) -> Result<Vec<String>, PromptError> {
        let mut published = Vec::new();
        for (origin, text) in BUILTIN {
            let file = PromptFile::parse(text, origin)?;
            let name = file.spec.name.clone();
            if self.catalog.latest_prompt_version(&name).await?.is_some() {
                continue;
            }
            let outcome = self
                .publish(&file, "cairn", "built-in prompt, published at first start")
                .await?;
            // The initial label of a shipped prompt is not a move an eval gate guards.
            self.move_label(
                &name,
                "production",
                outcome.version.version,
                "cairn",
                "built-in prompt, published at first start",
                None,
            )
            .await?;
            published.push(name);
        }
        Ok(published)
    }

    /// Validates and publishes a prompt file. Publishing unchanged content is a no-op.
    pub async fn publish(
        &self,
        file: &PromptFile,
        author: &str,
        message: &str,
    ) -> Result<PublishOutcome, PromptError> {
        self.check(file)?;
        let outcome = self
            .catalog
            .publish_prompt_version(NewPromptVersion {
                name: file.spec.name.clone(),
                template: file.body.clone(),
                spec: file.spec_json(),
                content_hash: file.content_hash(),
                author: author.to_owned(),
                message: message.to_owned(),
            })
            .await?;
        Ok(outcome)
    }

    /// The version a selector names, or an error that lists what exists.
    pub async fn resolve(
        &self,
        name: &str,
        selector: &Selector,
    ) -> Result<PromptVersion, PromptError> {
        let version = match selector {
            Selector::Latest => self.catalog.latest_prompt_version(name).await?,
            Selector::Version(number) => self.catalog.get_prompt_version(name, *number).await?,
            Selector::Label(label) => {
                let number = self.resolve_label(name, label).await?;
                self.catalog.get_prompt_version(name, number).await?
            }
        };
        match version {
            Some(version) => Ok(version),
            None => Err(self.not_found(name, selector).await),
        }
    }

    async fn resolve_label(&self, name: &str, label: &str) -> Result<i64, PromptError> {
        let key = (name.to_owned(), label.to_owned());
        if let Ok(labels) = self.labels.read()
            && let Some((version, fetched)) = labels.get(&key)
            && fetched.elapsed() < self.label_ttl
        {
            return Ok(*version);
        }
        let stored = self.catalog.get_prompt_label(name, label).await?;
        let version = match stored {
            Some(stored) => stored.version,
            None => {
                return Err(self
                    .not_found(name, &Selector::Label(label.to_owned()))
                    .await);
            }
        };
        if let Ok(mut labels) = self.labels.write() {
            labels.insert(key, (version, Instant::now()));
        }
        Ok(version)
    }

    async fn not_found(&self, name: &str, selector: &Selector) -> PromptError {
        let versions = self
            .catalog
            .list_prompt_versions(name)
            .await
            .unwrap_or_default();
        if versions.is_empty() {
            let names: Vec<String> = self
                .catalog
                .list_prompts()
                .await
                .unwrap_or_default()
                .into_iter()
                .map(|p| p.name)
                .collect();
            return PromptError::NotFound(format!(
                "prompt `{name}` does not exist; prompts: {}; publish it with `cairn prompt push`",
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                }
            ));
        }
        let labels: Vec<String> = self
            .catalog
            .list_prompt_labels(name)
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|l| format!("{}→v{}", l.label, l.version))
            .collect();
        PromptError::NotFound(format!(
            "prompt `{name}` has no version `{selector}`; versions: 1 to {}; labels: {}",
            versions.len(),
            if labels.is_empty() {
                "none".to_owned()
            } else {
                labels.join(", ")
            }
        ))
    }

    /// The version number a selector names. Label lookups are served from the label cache, so
    /// resolving `name@production` usually costs no database round trip.
    pub async fn resolve_number(
        &self,
        name: &str,
        selector: &Selector,
    ) -> Result<i64, PromptError> {
        match selector {
            Selector::Version(number) => Ok(*number),
            Selector::Label(label) => self.resolve_label(name, label).await,
            Selector::Latest => Ok(self.resolve(name, selector).await?.version),
        }
    }

    /// The compiled form of a stored version, cached (versions are immutable).
    pub async fn compiled(
        &self,
        name: &str,
        selector: &Selector,
    ) -> Result<Arc<CompiledPrompt>, PromptError> {
        let number = self.resolve_number(name, selector).await?;
        let key = (name.to_owned(), number);
        if let Some(compiled) = self
            .compiled
            .lock()
            .ok()
            .and_then(|cache| cache.get(&key).cloned())
        {
            return Ok(compiled);
        }
        let version = self.resolve(name, &Selector::Version(number)).await?;
        let origin = format!("prompt `{}` v{}", version.name, version.version);
        let file = PromptFile::from_stored(&version.spec, &version.template, &origin)?;
        let compiled = Arc::new(CompiledPrompt::compile(
            file,
            Some(version.version),
            self.limits,
        )?);
        if let Ok(mut cache) = self.compiled.lock() {
            cache.insert(key, compiled.clone());
        }
        Ok(compiled)
    }

    /// Renders a stored version.
    pub async fn render(
        &self,
        name: &str,
        selector: &Selector,
        variables: &Value,
    ) -> Result<RenderedPrompt, PromptError> {
        self.compiled(name, selector).await?.render(variables)
    }

    /// Points a label at a version and records the move. An eval-gated label is refused: it moves
    /// with [`PromptRegistry::set_label_vouched`].
    pub async fn set_label(
        &self,
        name: &str,
        label: &str,
        version: i64,
        actor: &str,
        reason: &str,
    ) -> Result<LabelMove, PromptError> {
        if let Some(gate) = self.gate(name, label) {
            return Err(gate.unvouched(version));
        }
        self.move_label(name, label, version, actor, reason, None)
            .await
    }

    /// Points a label at a version that the passing eval run `run` evaluated, and records the run
    /// with the move. When the label is gated, the run must be of the gate's suite.
    pub async fn set_label_vouched(
        &self,
        name: &str,
        label: &str,
        version: i64,
        actor: &str,
        reason: &str,
        run: uuid::Uuid,
    ) -> Result<LabelMove, PromptError> {
        let stored = self.catalog.get_eval_run(run).await?;
        gates::vouches(stored.as_ref(), run, name, version, self.gate(name, label))?;
        self.move_label(name, label, version, actor, reason, Some(run))
            .await
    }

    async fn move_label(
        &self,
        name: &str,
        label: &str,
        version: i64,
        actor: &str,
        reason: &str,
        eval_run: Option<uuid::Uuid>,
    ) -> Result<LabelMove, PromptError> {
        if self
            .catalog
            .get_prompt_version(name, version)
            .await?
            .is_none()
        {
            return Err(self.not_found(name, &Selector::Version(version)).await);
        }
        let moved = self
            .catalog
            .set_prompt_label(SetLabel {
                name: name.to_owned(),
                label: label.to_owned(),
                version,
                actor: actor.to_owned(),
                reason: reason.to_owned(),
                eval_run,
            })
            .await?;
        self.invalidate_label(name, label);
        Ok(moved)
    }

    /// Moves a label back to the version it pointed at before its last move.
    pub async fn rollback(
        &self,
        name: &str,
        label: &str,
        actor: &str,
        reason: &str,
    ) -> Result<LabelMove, PromptError> {
        let history = self.catalog.prompt_label_history(name).await?;
        let last = history
            .iter()
            .rev()
            .find(|m| m.label == label)
            .ok_or_else(|| {
                PromptError::NotFound(format!(
                    "prompt `{name}` has no label `{label}` to roll back"
                ))
            })?;
        let previous = last.from_version.ok_or_else(|| {
            PromptError::NotFound(format!(
                "label `{label}` of prompt `{name}` has pointed at v{} since it was created; there is nothing to roll back to",
                last.to_version
            ))
        })?;
        // Rolling back returns the label to a version it held before; it is not gated, so an
        // operator can always undo a bad move at once.
        self.move_label(name, label, previous, actor, reason, None)
            .await
    }

    /// A unified diff between two versions' files (front matter as TOML, then the body).
    pub async fn diff(
        &self,
        name: &str,
        a: &Selector,
        b: &Selector,
    ) -> Result<String, PromptError> {
        let (old, new) = (self.resolve(name, a).await?, self.resolve(name, b).await?);
        let render = |version: &PromptVersion| -> String {
            let spec = toml::to_string(&version.spec).unwrap_or_else(|_| version.spec.to_string());
            format!("+++\n{spec}+++\n{}", version.template)
        };
        let (old_text, new_text) = (render(&old), render(&new));
        let diff = similar::TextDiff::from_lines(&old_text, &new_text);
        Ok(diff
            .unified_diff()
            .context_radius(3)
            .header(
                &format!("{name}@v{}", old.version),
                &format!("{name}@v{}", new.version),
            )
            .to_string())
    }

    /// Compares local files with the catalog: which version has each file's content, and which
    /// labels point at it.
    pub async fn status(
        &self,
        files: &[(String, PromptFile)],
    ) -> Result<Vec<FileStatus>, PromptError> {
        let mut statuses = Vec::with_capacity(files.len());
        for (path, file) in files {
            let name = file.spec.name.clone();
            let hash = file.content_hash();
            let versions = self.catalog.list_prompt_versions(&name).await?;
            let matching_version = versions
                .iter()
                .rev()
                .find(|v| v.content_hash == hash)
                .map(|v| v.version);
            let labels = self
                .catalog
                .list_prompt_labels(&name)
                .await?
                .into_iter()
                .map(|label| {
                    let matches = versions
                        .iter()
                        .any(|v| v.version == label.version && v.content_hash == hash);
                    (label.label, label.version, matches)
                })
                .collect();
            statuses.push(FileStatus {
                name,
                path: path.clone(),
                matching_version,
                latest_version: versions.last().map(|v| v.version),
                labels,
            });
        }
        Ok(statuses)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse() {
        assert_eq!(
            Selector::parse_reference("rag"),
            ("rag".into(), Selector::Latest)
        );
        assert_eq!(
            Selector::parse_reference("rag@3"),
            ("rag".into(), Selector::Version(3))
        );
        assert_eq!(
            Selector::parse_reference("rag@v12"),
            ("rag".into(), Selector::Version(12))
        );
        assert_eq!(
            Selector::parse_reference("rag@production"),
            ("rag".into(), Selector::Label("production".into()))
        );
        assert_eq!(
            Selector::parse_reference("rag@latest"),
            ("rag".into(), Selector::Latest)
        );
    }
}
