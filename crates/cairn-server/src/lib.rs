//! Cairn's HTTP server and composition root.
//!
//! Reads a validated [`config::Config`], builds the adapters it names (SQLite or PostgreSQL catalog,
//! the vector index and embedding model of the RAG pipeline; chat models and routes) into the
//! answer pipeline of `cairn-app`, and serves the axum app from [`app::router`], whose handlers
//! translate HTTP to pipeline calls and back. This is the only crate that knows HTTP status codes;
//! it knows no SQL.

pub mod app;
pub mod auth;
pub mod collections;
pub mod config;
mod embeddings_api;
pub mod error;
pub mod extract;
pub mod gateway;
pub mod mcp;
pub mod metrics;
pub mod models;
mod openai_api;
mod openai_wire;
pub mod prompts;
pub mod rag;
pub mod serve;
pub mod telemetry;
pub mod web_api;

pub use app::{AppState, router};
pub use config::Config;
