//! API keys, stored hashed.

use cairn_core::catalog::ApiKey;
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use uuid::Uuid;

#[doc(hidden)]
#[macro_export]
macro_rules! api_key_columns {
    () => {
        "id, name, prefix, key_hash, tools, collections, roles, created_at, revoked_at"
    };
}

#[derive(Debug, sqlx::FromRow)]
pub struct ApiKeyRow {
    pub id: Uuid,
    pub name: String,
    pub prefix: String,
    pub key_hash: String,
    pub tools: Json<Vec<String>>,
    pub collections: Json<Vec<String>>,
    pub roles: Json<Vec<String>>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<ApiKeyRow> for ApiKey {
    fn from(row: ApiKeyRow) -> Self {
        ApiKey {
            id: row.id,
            name: row.name,
            prefix: row.prefix,
            key_hash: row.key_hash,
            tools: row.tools.0,
            collections: row.collections.0,
            roles: row.roles.0,
            created_at: row.created_at,
            revoked_at: row.revoked_at,
        }
    }
}

/// Implements [`ApiKeyRepo`](cairn_core::catalog::ApiKeyRepo) for `$catalog`; expanded by
/// [`impl_catalog_repos!`](crate::impl_catalog_repos).
#[doc(hidden)]
#[macro_export]
macro_rules! impl_api_key_repo {
    ($catalog:ident, $db:ty) => {
        #[$crate::async_trait::async_trait]
        impl ApiKeyRepo for $catalog {
            async fn create_api_key(&self, new: NewApiKey) -> CatalogResult<ApiKey> {
                validate_name("API key", &new.name)?;
                let row: ApiKeyRow = sqlx::query_as(concat!(
                    "INSERT INTO api_keys (",
                    $crate::api_key_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL) RETURNING ",
                    $crate::api_key_columns!()
                ))
                .bind(Uuid::now_v7())
                .bind(&new.name)
                .bind(&new.prefix)
                .bind(&new.key_hash)
                .bind(Json(&new.tools))
                .bind(Json(&new.collections))
                .bind(Json(&new.roles))
                .bind(Utc::now())
                .fetch_one(&self.pool)
                .await
                .map_err(|e| {
                    classify(e, || {
                        format!(
                            "an active API key named `{}` already exists; revoke it first",
                            new.name
                        )
                    })
                })?;
                Ok(row.into())
            }

            async fn find_active_api_key(&self, key_hash: &str) -> CatalogResult<Option<ApiKey>> {
                let row: Option<ApiKeyRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    $crate::api_key_columns!(),
                    " FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL"
                ))
                .bind(key_hash)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error)?;
                Ok(row.map(ApiKey::from))
            }

            async fn list_api_keys(&self) -> CatalogResult<Vec<ApiKey>> {
                let rows: Vec<ApiKeyRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    $crate::api_key_columns!(),
                    " FROM api_keys ORDER BY name, created_at"
                ))
                .fetch_all(&self.pool)
                .await
                .map_err(db_error)?;
                Ok(rows.into_iter().map(ApiKey::from).collect())
            }

            async fn revoke_api_key(&self, name: &str) -> CatalogResult<bool> {
                let result = sqlx::query(
                    "UPDATE api_keys SET revoked_at = $2 WHERE name = $1 AND revoked_at IS NULL",
                )
                .bind(name)
                .bind(Utc::now())
                .execute(&self.pool)
                .await
                .map_err(db_error)?;
                Ok(result.rows_affected() > 0)
            }
        }
    };
}
