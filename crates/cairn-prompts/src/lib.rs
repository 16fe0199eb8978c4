//! Cairn's prompt registry: versioned minijinja templates with labels.
//!
//! A prompt is a file (`prompts/NAME.prompt`: TOML front matter, then role sections) parsed by
//! [`source`]; published as immutable, gap-free versions in the catalog with labels that point at
//! versions ([`registry`]); and rendered, sandboxed, into chat messages ([`render`]). Every model call
//! made through a prompt carries the [`render::RenderedPrompt`]'s name and version into its lineage
//! record. This crate does no HTTP and contains no SQL: it talks to the catalog through `cairn-core`.

pub mod error;
pub mod gates;
pub mod registry;
pub mod render;
pub mod source;

pub use error::PromptError;
pub use gates::LabelGate;
pub use registry::{PromptRegistry, Selector};
pub use render::{RenderLimits, RenderedPrompt};
pub use source::PromptFile;
