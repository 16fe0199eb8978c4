//! Cairn's application layer: the one answer pipeline that every front door calls (the
//! OpenAI-compatible API, the web UI, MCP, and in process the eval harness and agents), so that
//! limits, guards, the answer cache and lineage cannot differ between them.
//!
//! No HTTP here: front doors translate their requests into a [`cairn_core::RequestContext`] and an
//! [`AnswerRequest`], and [`AnswerError`] back into their own error shapes, each in one place.

mod agent_tools;
pub mod agents;
mod answer;
pub mod apps;
mod error;
pub mod eval;
pub mod guards;
mod lineage;
mod online;
mod pipeline;
mod rag;
pub mod schema;

pub use agent_tools::Cited;
pub use agents::AgentSection;
pub use answer::{Answer, AnswerStream, Completed};
pub use apps::{ALL_COLLECTIONS, AppSection};
pub use error::AnswerError;
pub use eval::PipelineAnswerer;
pub use guards::{GuardPolicy, Guards, TextCheck, VerdictRecord};
pub use pipeline::{AnswerRequest, CachePolicy, ModelLookup, Pipeline, PipelineParts, Target};
pub use rag::{Rag, RagSetupError};
