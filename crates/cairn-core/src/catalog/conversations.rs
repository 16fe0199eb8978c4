//! Web UI conversations and their messages.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::CatalogResult;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    pub id: Uuid,
    pub owner: String,
    pub title: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub role: String,
    pub content: String,
    /// The lineage record of the answer, for assistant messages.
    pub lineage_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewMessage {
    pub conversation_id: Uuid,
    pub role: String,
    pub content: String,
    pub lineage_id: Option<Uuid>,
}

#[async_trait]
pub trait ConversationRepo: Send + Sync {
    async fn create_conversation(&self, owner: &str, title: &str) -> CatalogResult<Conversation>;
    async fn get_conversation(&self, id: Uuid) -> CatalogResult<Option<Conversation>>;
    /// The owner's conversations, most recently active first.
    async fn list_conversations(&self, owner: &str) -> CatalogResult<Vec<Conversation>>;
    async fn rename_conversation(&self, id: Uuid, title: &str) -> CatalogResult<Conversation>;
    /// Deletes a conversation and its messages. Returns whether it existed.
    async fn delete_conversation(&self, id: Uuid) -> CatalogResult<bool>;
    /// Appends a message and marks the conversation active.
    async fn append_message(&self, new: NewMessage) -> CatalogResult<Message>;
    async fn list_messages(&self, conversation_id: Uuid) -> CatalogResult<Vec<Message>>;
}
