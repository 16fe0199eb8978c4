//! Web UI sessions.

use cairn_core::catalog::SessionRecord;
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use uuid::Uuid;

#[doc(hidden)]
#[macro_export]
macro_rules! session_columns {
    () => {
        "id, user_id, name, roles, created_at, expires_at, revoked_at"
    };
}

#[derive(Debug, sqlx::FromRow)]
pub struct SessionRow {
    pub id: Uuid,
    pub user_id: String,
    pub name: String,
    pub roles: Json<Vec<String>>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<SessionRow> for SessionRecord {
    fn from(row: SessionRow) -> Self {
        SessionRecord {
            id: row.id,
            user_id: row.user_id,
            name: row.name,
            roles: row.roles.0,
            created_at: row.created_at,
            expires_at: row.expires_at,
            revoked_at: row.revoked_at,
        }
    }
}

/// Implements [`SessionRepo`](cairn_core::catalog::SessionRepo) for `$catalog`; expanded by
/// [`impl_catalog_repos!`](crate::impl_catalog_repos).
#[doc(hidden)]
#[macro_export]
macro_rules! impl_session_repo {
    ($catalog:ident, $db:ty) => {
        #[$crate::async_trait::async_trait]
        impl SessionRepo for $catalog {
            async fn create_session(&self, new: NewSession) -> CatalogResult<SessionRecord> {
                let row: SessionRow = sqlx::query_as(concat!(
                    "INSERT INTO sessions (",
                    $crate::session_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, NULL) RETURNING ",
                    $crate::session_columns!()
                ))
                .bind(Uuid::new_v4())
                .bind(&new.user_id)
                .bind(&new.name)
                .bind(Json(&new.roles))
                .bind(Utc::now())
                .bind(new.expires_at)
                .fetch_one(&self.pool)
                .await
                .map_err(db_error)?;
                Ok(row.into())
            }

            async fn find_active_session(
                &self,
                id: Uuid,
                now: $crate::chrono::DateTime<Utc>,
            ) -> CatalogResult<Option<SessionRecord>> {
                let row: Option<SessionRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    $crate::session_columns!(),
                    " FROM sessions WHERE id = $1 AND revoked_at IS NULL AND expires_at > $2"
                ))
                .bind(id)
                .bind(now)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error)?;
                Ok(row.map(SessionRecord::from))
            }

            async fn revoke_session(&self, id: Uuid) -> CatalogResult<bool> {
                let result = sqlx::query(
                    "UPDATE sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
                )
                .bind(id)
                .bind(Utc::now())
                .execute(&self.pool)
                .await
                .map_err(db_error)?;
                Ok(result.rows_affected() > 0)
            }

            async fn revoke_user_sessions(&self, user_id: &str) -> CatalogResult<u64> {
                let result = sqlx::query(
                    "UPDATE sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL",
                )
                .bind(user_id)
                .bind(Utc::now())
                .execute(&self.pool)
                .await
                .map_err(db_error)?;
                Ok(result.rows_affected())
            }
        }
    };
}
