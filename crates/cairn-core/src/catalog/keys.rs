//! API keys (stored hashed) and what they grant.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::CatalogResult;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: Uuid,
    pub name: String,
    /// The first characters of the key, shown in listings so that a key can be recognised.
    pub prefix: String,
    /// SHA-256 of the key; the key itself is never stored.
    pub key_hash: String,
    /// Tools the key may call; empty means all.
    pub tools: Vec<String>,
    /// Collections the key may read; empty means none.
    pub collections: Vec<String>,
    /// What the key may do (`read`, `write`, `prompt_admin`, `admin`); names are checked where keys
    /// are created and read.
    pub roles: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewApiKey {
    pub name: String,
    pub prefix: String,
    pub key_hash: String,
    pub tools: Vec<String>,
    pub collections: Vec<String>,
    pub roles: Vec<String>,
}

#[async_trait]
pub trait ApiKeyRepo: Send + Sync {
    async fn create_api_key(&self, new: NewApiKey) -> CatalogResult<ApiKey>;
    /// The key with this hash, unless it has been revoked.
    async fn find_active_api_key(&self, key_hash: &str) -> CatalogResult<Option<ApiKey>>;
    async fn list_api_keys(&self) -> CatalogResult<Vec<ApiKey>>;
    /// Revokes a key by name. Returns whether an active key was revoked.
    async fn revoke_api_key(&self, name: &str) -> CatalogResult<bool>;
}
