//! Cairn's domain types and the ports (traits) that adapters implement.
//!
//! This crate does no I/O and depends on no adapter, database driver, HTTP stack or async runtime:
//! it is what every other crate agrees on. Adapters (`cairn-sqlite`, `cairn-postgres`, model and
//! index crates) implement the traits; `cairn-server` wires them together.

pub mod agent;
pub mod catalog;
pub mod eval;
pub mod guard;
pub mod index;
pub mod model;
pub mod request;

pub use agent::{AgentRunner, AgentTool};
pub use catalog::{Catalog, CatalogError};
pub use eval::Answerer;
pub use guard::Guardrail;
pub use index::VectorIndex;
pub use model::{ChatModel, EmbeddingModel, ModelError, Reranker};
pub use request::{Principal, PrincipalKind, RequestContext};
