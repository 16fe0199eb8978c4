//! Collections: the collection records and their embedding-model binding.

use cairn_core::catalog::{CatalogError, Collection};
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

use crate::unsigned;

#[doc(hidden)]
#[macro_export]
macro_rules! collection_columns {
    () => {
        "id, name, description, embedding_model, embedding_dimension, metadata, created_at"
    };
}

#[derive(Debug, sqlx::FromRow)]
pub struct CollectionRow {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub embedding_model: Option<String>,
    pub embedding_dimension: Option<i64>,
    pub metadata: Json<Value>,
    pub created_at: DateTime<Utc>,
}

impl TryFrom<CollectionRow> for Collection {
    type Error = CatalogError;

    fn try_from(row: CollectionRow) -> Result<Self, CatalogError> {
        Ok(Collection {
            id: row.id,
            name: row.name,
            description: row.description,
            embedding_model: row.embedding_model,
            embedding_dimension: row
                .embedding_dimension
                .map(|d| unsigned("embedding_dimension", d))
                .transpose()?,
            metadata: row.metadata.0,
            created_at: row.created_at,
        })
    }
}

/// Implements [`CollectionRepo`](cairn_core::catalog::CollectionRepo) for `$catalog`; expanded by
/// [`impl_catalog_repos!`](crate::impl_catalog_repos).
#[doc(hidden)]
#[macro_export]
macro_rules! impl_collection_repo {
    ($catalog:ident, $db:ty) => {
        #[$crate::async_trait::async_trait]
        impl CollectionRepo for $catalog {
            async fn create_collection(&self, new: NewCollection) -> CatalogResult<Collection> {
                validate_name("collection", &new.name)?;
                let row: CollectionRow = sqlx::query_as(concat!(
                    "INSERT INTO collections (",
                    $crate::collection_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ",
                    $crate::collection_columns!()
                ))
                .bind(Uuid::now_v7())
                .bind(&new.name)
                .bind(&new.description)
                .bind(&new.embedding_model)
                .bind(new.embedding_dimension.map(i64::from))
                .bind(Json(&new.metadata))
                .bind(Utc::now())
                .fetch_one(&self.pool)
                .await
                .map_err(|e| classify(e, || format!("collection `{}` already exists", new.name)))?;
                row.try_into()
            }

            async fn get_collection(&self, name: &str) -> CatalogResult<Option<Collection>> {
                let row: Option<CollectionRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    $crate::collection_columns!(),
                    " FROM collections WHERE name = $1"
                ))
                .bind(name)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error)?;
                row.map(Collection::try_from).transpose()
            }

            async fn list_collections(&self) -> CatalogResult<Vec<Collection>> {
                let rows: Vec<CollectionRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    $crate::collection_columns!(),
                    " FROM collections ORDER BY name"
                ))
                .fetch_all(&self.pool)
                .await
                .map_err(db_error)?;
                convert_all(rows)
            }

            async fn bind_embedding_model(
                &self,
                name: &str,
                model: &str,
                dimension: u32,
            ) -> CatalogResult<Collection> {
                let mut tx = self.locked_tx(&format!("collection:{name}")).await?;
                let row: Option<CollectionRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    $crate::collection_columns!(),
                    " FROM collections WHERE name = $1"
                ))
                .bind(name)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_error)?;
                let collection =
                    Collection::try_from(row.ok_or_else(|| CatalogError::not_found("collection", name))?)?;
                check_binding(&collection, model, dimension)?;
                let row: CollectionRow = sqlx::query_as(concat!("UPDATE collections SET embedding_model = $2, embedding_dimension = $3 WHERE name = $1 RETURNING ", $crate::collection_columns!()))
                .bind(name)
                .bind(model)
                .bind(i64::from(dimension))
                .fetch_one(&mut *tx)
                .await
                .map_err(db_error)?;
                tx.commit().await.map_err(db_error)?;
                row.try_into()
            }

            async fn delete_collection(&self, name: &str) -> CatalogResult<bool> {
                let result = sqlx::query("DELETE FROM collections WHERE name = $1")
                    .bind(name)
                    .execute(&self.pool)
                    .await
                    .map_err(db_error)?;
                Ok(result.rows_affected() > 0)
            }
        }
    };
}
