//! Versioned prompt templates and the labels that point at their versions.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::CatalogResult;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptVersion {
    pub id: Uuid,
    pub name: String,
    /// 1, 2, 3… without gaps, per prompt.
    pub version: i64,
    pub template: String,
    /// Front matter: variables schema, model parameters, default route.
    pub spec: Value,
    pub content_hash: String,
    pub author: String,
    pub message: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewPromptVersion {
    pub name: String,
    pub template: String,
    pub spec: Value,
    pub content_hash: String,
    pub author: String,
    pub message: String,
}

/// What publishing a prompt did: a new version, or nothing because the latest has the same content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublishOutcome {
    pub version: PromptVersion,
    pub created: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptSummary {
    pub name: String,
    pub latest_version: i64,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptLabel {
    pub name: String,
    pub label: String,
    pub version: i64,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetLabel {
    pub name: String,
    pub label: String,
    pub version: i64,
    pub actor: String,
    pub reason: String,
    /// The passing eval run that vouched for the move, when the label is eval-gated.
    #[serde(default)]
    pub eval_run: Option<Uuid>,
}

/// One entry of a prompt's label audit trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelMove {
    pub name: String,
    pub label: String,
    pub from_version: Option<i64>,
    pub to_version: i64,
    pub actor: String,
    pub reason: String,
    pub moved_at: DateTime<Utc>,
    /// The passing eval run that vouched for the move.
    #[serde(default)]
    pub eval_run: Option<Uuid>,
}

#[async_trait]
pub trait PromptRepo: Send + Sync {
    /// Publishes a new version unless the latest one has the same content hash. Concurrent publishes
    /// of one prompt are serialised: versions stay a gap-free sequence.
    async fn publish_prompt_version(&self, new: NewPromptVersion) -> CatalogResult<PublishOutcome>;
    async fn get_prompt_version(
        &self,
        name: &str,
        version: i64,
    ) -> CatalogResult<Option<PromptVersion>>;
    async fn latest_prompt_version(&self, name: &str) -> CatalogResult<Option<PromptVersion>>;
    async fn list_prompt_versions(&self, name: &str) -> CatalogResult<Vec<PromptVersion>>;
    async fn list_prompts(&self) -> CatalogResult<Vec<PromptSummary>>;
    /// Points a label at a version (which must exist) and records the move in the audit trail.
    async fn set_prompt_label(&self, set: SetLabel) -> CatalogResult<LabelMove>;
    async fn get_prompt_label(&self, name: &str, label: &str)
    -> CatalogResult<Option<PromptLabel>>;
    async fn list_prompt_labels(&self, name: &str) -> CatalogResult<Vec<PromptLabel>>;
    /// Every label move of a prompt, oldest first.
    async fn prompt_label_history(&self, name: &str) -> CatalogResult<Vec<LabelMove>>;
}
