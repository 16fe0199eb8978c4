//! What Cairn's two sqlx catalogs share: the repository implementations (one SQL text both databases
//! accept, expanded in each backend by [`impl_catalog_repos!`]), the row types and their conversion
//! into `cairn-core` records, and the classification of database errors.
//!
//! Both SQLite and PostgreSQL decode the same Rust types (uuid, `DateTime<Utc>`, JSON, `i64`) and both
//! accept `$N` parameters, `RETURNING` and `ON CONFLICT … DO UPDATE`, so one implementation serves both.
//! What differs stays in the backend crates: connecting, how writers are serialised, array parameters.

mod shared;

// Re-exported for the code `impl_catalog_repos!` expands in the backend crates.
#[doc(hidden)]
pub use {async_trait, cairn_core, chrono, serde_json, sqlx, uuid};

use cairn_core::catalog::{
    ApiKey, CatalogError, Chunk, Collection, Conversation, Document, EvalResult, EvalRun,
    EvalStatus, Feedback, LabelMove, LineageRecord, Message, PromptLabel, PromptSummary,
    PromptVersion, ShadowResult, UsageDelta,
};
use cairn_core::model::Usage;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

/// Maps a database error to the catalog's classes. `conflict` words the message for unique violations.
pub fn classify(error: sqlx::Error, conflict: impl FnOnce() -> String) -> CatalogError {
    match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => CatalogError::Conflict(conflict()),
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Tls(_) => CatalogError::Unavailable(error.to_string()),
        _ => CatalogError::Backend(error.to_string()),
    }
}

/// Maps a database error that has no expected conflict.
pub fn db_error(error: sqlx::Error) -> CatalogError {
    classify(error, || "the record already exists".to_owned())
}

/// Converts a stored count back to its unsigned domain type; a negative value means a corrupt row.
fn unsigned<T: TryFrom<i64>>(column: &str, value: i64) -> Result<T, CatalogError> {
    T::try_from(value).map_err(|_| {
        CatalogError::Backend(format!(
            "column `{column}` holds {value}, which is out of range"
        ))
    })
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

#[derive(Debug, sqlx::FromRow)]
pub struct DocumentRow {
    pub id: Uuid,
    pub collection_id: Uuid,
    pub source: String,
    pub title: String,
    pub content_hash: String,
    pub version: i64,
    pub metadata: Json<Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<DocumentRow> for Document {
    fn from(row: DocumentRow) -> Self {
        Document {
            id: row.id,
            collection_id: row.collection_id,
            source: row.source,
            title: row.title,
            content_hash: row.content_hash,
            version: row.version,
            metadata: row.metadata.0,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct ChunkRow {
    pub id: Uuid,
    pub document_id: Uuid,
    pub chunk_index: i64,
    pub content: String,
    pub content_hash: String,
    pub char_start: i64,
    pub char_end: i64,
    pub heading_path: Json<Vec<String>>,
    pub token_count: i64,
    pub metadata: Json<Value>,
}

impl TryFrom<ChunkRow> for Chunk {
    type Error = CatalogError;

    fn try_from(row: ChunkRow) -> Result<Self, CatalogError> {
        Ok(Chunk {
            id: row.id,
            document_id: row.document_id,
            chunk_index: unsigned("chunk_index", row.chunk_index)?,
            content: row.content,
            content_hash: row.content_hash,
            char_start: unsigned("char_start", row.char_start)?,
            char_end: unsigned("char_end", row.char_end)?,
            heading_path: row.heading_path.0,
            token_count: unsigned("token_count", row.token_count)?,
            metadata: row.metadata.0,
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct PromptVersionRow {
    pub id: Uuid,
    pub name: String,
    pub version: i64,
    pub template: String,
    pub spec: Json<Value>,
    pub content_hash: String,
    pub author: String,
    pub message: String,
    pub created_at: DateTime<Utc>,
}

impl From<PromptVersionRow> for PromptVersion {
    fn from(row: PromptVersionRow) -> Self {
        PromptVersion {
            id: row.id,
            name: row.name,
            version: row.version,
            template: row.template,
            spec: row.spec.0,
            content_hash: row.content_hash,
            author: row.author,
            message: row.message,
            created_at: row.created_at,
        }
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct PromptSummaryRow {
    pub name: String,
    pub latest_version: i64,
    pub updated_at: DateTime<Utc>,
}

impl From<PromptSummaryRow> for PromptSummary {
    fn from(row: PromptSummaryRow) -> Self {
        PromptSummary {
            name: row.name,
            latest_version: row.latest_version,
            updated_at: row.updated_at,
        }
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct PromptLabelRow {
    pub name: String,
    pub label: String,
    pub version: i64,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
}

impl From<PromptLabelRow> for PromptLabel {
    fn from(row: PromptLabelRow) -> Self {
        PromptLabel {
            name: row.name,
            label: row.label,
            version: row.version,
            updated_at: row.updated_at,
            updated_by: row.updated_by,
        }
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct LabelMoveRow {
    pub name: String,
    pub label: String,
    pub from_version: Option<i64>,
    pub to_version: i64,
    pub actor: String,
    pub reason: String,
    pub moved_at: DateTime<Utc>,
}

impl From<LabelMoveRow> for LabelMove {
    fn from(row: LabelMoveRow) -> Self {
        LabelMove {
            name: row.name,
            label: row.label,
            from_version: row.from_version,
            to_version: row.to_version,
            actor: row.actor,
            reason: row.reason,
            moved_at: row.moved_at,
        }
    }
}

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

#[derive(Debug, sqlx::FromRow)]
pub struct LineageRow {
    pub id: Uuid,
    pub conversation_id: Option<Uuid>,
    pub app: Option<String>,
    pub prompt_name: Option<String>,
    pub prompt_version: Option<i64>,
    pub model: String,
    pub route: Option<String>,
    pub retrieval: Json<Value>,
    pub guard_verdicts: Json<Value>,
    pub input_tokens: i64,
    pub cached_input_tokens: i64,
    pub output_tokens: i64,
    pub reasoning_tokens: i64,
    pub cost_usd: f64,
    pub latency_ms: i64,
    pub status: String,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl TryFrom<LineageRow> for LineageRecord {
    type Error = CatalogError;

    fn try_from(row: LineageRow) -> Result<Self, CatalogError> {
        Ok(LineageRecord {
            id: row.id,
            conversation_id: row.conversation_id,
            app: row.app,
            prompt_name: row.prompt_name,
            prompt_version: row.prompt_version,
            model: row.model,
            route: row.route,
            retrieval: row.retrieval.0,
            guard_verdicts: row.guard_verdicts.0,
            usage: Usage {
                input_tokens: unsigned("input_tokens", row.input_tokens)?,
                cached_input_tokens: unsigned("cached_input_tokens", row.cached_input_tokens)?,
                output_tokens: unsigned("output_tokens", row.output_tokens)?,
                reasoning_tokens: unsigned("reasoning_tokens", row.reasoning_tokens)?,
            },
            cost_usd: row.cost_usd,
            latency_ms: unsigned("latency_ms", row.latency_ms)?,
            status: row.status,
            error: row.error,
            created_at: row.created_at,
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct FeedbackRow {
    pub id: Uuid,
    pub lineage_id: Uuid,
    pub rating: i64,
    pub comment: Option<String>,
    pub user_name: String,
    pub created_at: DateTime<Utc>,
}

impl TryFrom<FeedbackRow> for Feedback {
    type Error = CatalogError;

    fn try_from(row: FeedbackRow) -> Result<Self, CatalogError> {
        Ok(Feedback {
            id: row.id,
            lineage_id: row.lineage_id,
            rating: i16::try_from(row.rating).map_err(|_| {
                CatalogError::Backend(format!("feedback rating {} is out of range", row.rating))
            })?,
            comment: row.comment,
            user: row.user_name,
            created_at: row.created_at,
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct EvalRunRow {
    pub id: Uuid,
    pub suite: String,
    pub target: Json<Value>,
    pub status: String,
    pub summary: Json<Value>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl TryFrom<EvalRunRow> for EvalRun {
    type Error = CatalogError;

    fn try_from(row: EvalRunRow) -> Result<Self, CatalogError> {
        Ok(EvalRun {
            id: row.id,
            suite: row.suite,
            target: row.target.0,
            status: EvalStatus::parse(&row.status)?,
            summary: row.summary.0,
            started_at: row.started_at,
            finished_at: row.finished_at,
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct EvalResultRow {
    pub id: Uuid,
    pub run_id: Uuid,
    pub case_id: String,
    pub passed: bool,
    pub metrics: Json<Value>,
    pub output: Json<Value>,
    pub created_at: DateTime<Utc>,
}

impl From<EvalResultRow> for EvalResult {
    fn from(row: EvalResultRow) -> Self {
        EvalResult {
            id: row.id,
            run_id: row.run_id,
            case_id: row.case_id,
            passed: row.passed,
            metrics: row.metrics.0,
            output: row.output.0,
            created_at: row.created_at,
        }
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct ApiKeyRow {
    pub id: Uuid,
    pub name: String,
    pub prefix: String,
    pub key_hash: String,
    pub tools: Json<Vec<String>>,
    pub collections: Json<Vec<String>>,
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
            created_at: row.created_at,
            revoked_at: row.revoked_at,
        }
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct UsageRow {
    pub requests: i64,
    pub tokens: i64,
    pub cost_usd: f64,
}

impl TryFrom<UsageRow> for UsageDelta {
    type Error = CatalogError;

    fn try_from(row: UsageRow) -> Result<Self, CatalogError> {
        Ok(UsageDelta {
            requests: unsigned("requests", row.requests)?,
            tokens: unsigned("tokens", row.tokens)?,
            cost_usd: row.cost_usd,
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct ShadowRow {
    pub id: Uuid,
    pub route: String,
    pub primary_target: Option<String>,
    pub shadow_target: String,
    pub request: Json<Value>,
    pub primary_output: Option<String>,
    pub primary_error: Option<String>,
    pub primary_latency_ms: i64,
    pub shadow_output: Option<String>,
    pub shadow_error: Option<String>,
    pub shadow_latency_ms: i64,
    pub shadow_usage: Json<Usage>,
    pub shadow_cost_usd: Option<f64>,
    pub created_at: DateTime<Utc>,
}

impl TryFrom<ShadowRow> for ShadowResult {
    type Error = CatalogError;

    fn try_from(row: ShadowRow) -> Result<Self, CatalogError> {
        Ok(ShadowResult {
            id: row.id,
            route: row.route,
            primary_target: row.primary_target,
            shadow_target: row.shadow_target,
            request: row.request.0,
            primary_output: row.primary_output,
            primary_error: row.primary_error,
            primary_latency_ms: unsigned("primary_latency_ms", row.primary_latency_ms)?,
            shadow_output: row.shadow_output,
            shadow_error: row.shadow_error,
            shadow_latency_ms: unsigned("shadow_latency_ms", row.shadow_latency_ms)?,
            shadow_usage: row.shadow_usage.0,
            shadow_cost_usd: row.shadow_cost_usd,
            created_at: row.created_at,
        })
    }
}

/// Converts every row, stopping at the first that does not convert.
pub fn convert_all<R, T>(rows: Vec<R>) -> Result<Vec<T>, CatalogError>
where
    T: TryFrom<R, Error = CatalogError>,
{
    rows.into_iter().map(T::try_from).collect()
}

/// Whether the error is a foreign key violation: the referenced record does not exist.
pub fn is_foreign_key_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_foreign_key_violation())
}

/// Maps an insert's error, reading a foreign key violation as "the referenced record does not exist".
pub fn foreign_key_as_not_found(
    error: sqlx::Error,
    entity: &'static str,
    key: impl std::fmt::Display,
) -> CatalogError {
    if is_foreign_key_violation(&error) {
        CatalogError::not_found(entity, key)
    } else {
        db_error(error)
    }
}

/// Converts an unsigned domain value to the `BIGINT`/`INTEGER` both databases store.
pub fn to_i64(value: u64) -> Result<i64, CatalogError> {
    i64::try_from(value)
        .map_err(|_| CatalogError::Invalid(format!("{value} is too large to store")))
}
