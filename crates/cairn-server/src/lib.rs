//! Cairn's HTTP surface: the axum app from [`app::router`] over a `cairn_runtime::Runtime`, whose
//! handlers translate HTTP into calls of the answer pipeline (`cairn-app`) and the ports, and the
//! results back. Config and wiring live in `cairn-runtime`. This is the only crate that knows HTTP
//! status codes; it knows no SQL.

pub mod access;
pub mod app;
mod audit;
pub mod auth;
pub mod collections;
mod embeddings_api;
pub mod error;
mod evals_api;
pub mod extract;
pub mod gateway;
mod guard_api;
mod keys_api;
pub mod mcp;
pub mod metrics;
mod openai_api;
mod openai_wire;
pub mod prompts;
pub mod serve;
pub mod web_api;

pub use app::{AppState, router};
