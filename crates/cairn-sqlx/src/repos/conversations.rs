//! Conversations and their messages.

use cairn_core::catalog::{Conversation, Message};
use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(Debug, sqlx::FromRow)]
pub struct ConversationRow {
    pub id: Uuid,
    pub owner: String,
    pub title: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<ConversationRow> for Conversation {
    fn from(row: ConversationRow) -> Self {
        Conversation {
            id: row.id,
            owner: row.owner,
            title: row.title,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct MessageRow {
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub role: String,
    pub content: String,
    pub lineage_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

impl From<MessageRow> for Message {
    fn from(row: MessageRow) -> Self {
        Message {
            id: row.id,
            conversation_id: row.conversation_id,
            role: row.role,
            content: row.content,
            lineage_id: row.lineage_id,
            created_at: row.created_at,
        }
    }
}

/// Implements [`ConversationRepo`](cairn_core::catalog::ConversationRepo) for `$catalog`; expanded by
/// [`impl_catalog_repos!`](crate::impl_catalog_repos).
#[doc(hidden)]
#[macro_export]
macro_rules! impl_conversation_repo {
    ($catalog:ident, $db:ty) => {
        #[$crate::async_trait::async_trait]
        impl ConversationRepo for $catalog {
            async fn create_conversation(&self, owner: &str, title: &str) -> CatalogResult<Conversation> {
                let now = Utc::now();
                let row: ConversationRow = sqlx::query_as(
                    "INSERT INTO conversations (id, owner, title, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) \
                     RETURNING id, owner, title, created_at, updated_at",
                )
                .bind(Uuid::now_v7())
                .bind(owner)
                .bind(title)
                .bind(now)
                .fetch_one(&self.pool)
                .await
                .map_err(db_error)?;
                Ok(row.into())
            }

            async fn get_conversation(&self, id: Uuid) -> CatalogResult<Option<Conversation>> {
                let row: Option<ConversationRow> = sqlx::query_as(
                    "SELECT id, owner, title, created_at, updated_at FROM conversations WHERE id = $1",
                )
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error)?;
                Ok(row.map(Conversation::from))
            }

            async fn list_conversations(&self, owner: &str) -> CatalogResult<Vec<Conversation>> {
                let rows: Vec<ConversationRow> = sqlx::query_as(
                    "SELECT id, owner, title, created_at, updated_at FROM conversations WHERE owner = $1 \
                     ORDER BY updated_at DESC, id DESC",
                )
                .bind(owner)
                .fetch_all(&self.pool)
                .await
                .map_err(db_error)?;
                Ok(rows.into_iter().map(Conversation::from).collect())
            }

            async fn rename_conversation(&self, id: Uuid, title: &str) -> CatalogResult<Conversation> {
                let row: Option<ConversationRow> = sqlx::query_as(
                    "UPDATE conversations SET title = $2 WHERE id = $1 RETURNING id, owner, title, created_at, updated_at",
                )
                .bind(id)
                .bind(title)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error)?;
                row.map(Conversation::from)
                    .ok_or_else(|| CatalogError::not_found("conversation", id))
            }

            /// Takes the conversation's messages and its answers' lineage, feedback and scores
            /// with it.
            async fn delete_conversation(&self, id: Uuid) -> CatalogResult<bool> {
                let mut tx = self.pool.begin().await.map_err(db_error)?;
                for statement in [
                    "DELETE FROM lineage_scores WHERE lineage_id IN \
                     (SELECT id FROM lineage WHERE conversation_id = $1)",
                    "DELETE FROM lineage WHERE conversation_id = $1",
                ] {
                    sqlx::query(statement)
                        .bind(id)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_error)?;
                }
                let result = sqlx::query("DELETE FROM conversations WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                tx.commit().await.map_err(db_error)?;
                Ok(result.rows_affected() > 0)
            }

            async fn append_message(&self, new: NewMessage) -> CatalogResult<Message> {
                let mut tx = self.pool.begin().await.map_err(db_error)?;
                let now = Utc::now();
                let touched = sqlx::query("UPDATE conversations SET updated_at = $2 WHERE id = $1")
                    .bind(new.conversation_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                if touched.rows_affected() == 0 {
                    return Err(CatalogError::not_found("conversation", new.conversation_id));
                }
                let row: MessageRow = sqlx::query_as(
                    "INSERT INTO messages (id, conversation_id, role, content, lineage_id, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING id, conversation_id, role, content, lineage_id, created_at",
                )
                .bind(Uuid::now_v7())
                .bind(new.conversation_id)
                .bind(&new.role)
                .bind(&new.content)
                .bind(new.lineage_id)
                .bind(now)
                .fetch_one(&mut *tx)
                .await
                .map_err(db_error)?;
                tx.commit().await.map_err(db_error)?;
                Ok(row.into())
            }

            async fn list_messages(&self, conversation_id: Uuid) -> CatalogResult<Vec<Message>> {
                let rows: Vec<MessageRow> = sqlx::query_as(
                    "SELECT id, conversation_id, role, content, lineage_id, created_at FROM messages \
                     WHERE conversation_id = $1 ORDER BY created_at, id",
                )
                .bind(conversation_id)
                .fetch_all(&self.pool)
                .await
                .map_err(db_error)?;
                Ok(rows.into_iter().map(Message::from).collect())
            }
        }
    };
}
