//! Cairn's eval harness: suites in files (`evals/*.yaml`), datasets, deterministic, retrieval and
//! LLM-judged metrics, statistics with confidence intervals, gates and reports (JSON, JUnit, HTML),
//! runs stored in the catalog for comparison, and judge calibration against human labels.
//!
//! It calls targets and judges only through the [`cairn_core::Answerer`] port, which the
//! application layer implements over the one answer pipeline; no HTTP and no model code here.

pub mod cache;
pub mod calibrate;
pub mod continuous;
pub mod dataset;
mod error;
pub mod gates;
pub mod metrics;
pub mod online;
pub mod pairwise;
pub mod report;
pub mod run;
pub mod stats;
pub mod store;
pub mod suite;

pub use cache::CachingAnswerer;
pub use error::SuiteError;
pub use report::{Baseline, RunReport};
pub use run::{Observer, Quiet, RunOptions, run};
pub use suite::Suite;
