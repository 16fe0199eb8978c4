//! Web UI sessions, kept server-side so that signing out, or an operator revoking a user, ends
//! them at once on every replica: the cookie carries only the session's id.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::CatalogResult;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub id: Uuid,
    /// The provider's subject.
    pub user_id: String,
    pub name: String,
    /// The roles the session was given at sign-in.
    pub roles: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewSession {
    pub user_id: String,
    pub name: String,
    pub roles: Vec<String>,
    pub expires_at: DateTime<Utc>,
}

#[async_trait]
pub trait SessionRepo: Send + Sync {
    async fn create_session(&self, new: NewSession) -> CatalogResult<SessionRecord>;
    /// The session, unless it was revoked or has expired by `now`.
    async fn find_active_session(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> CatalogResult<Option<SessionRecord>>;
    /// Ends one session (sign-out). Returns whether an active one was ended.
    async fn revoke_session(&self, id: Uuid) -> CatalogResult<bool>;
    /// Ends every session of a user. Returns how many.
    async fn revoke_user_sessions(&self, user_id: &str) -> CatalogResult<u64>;
}
