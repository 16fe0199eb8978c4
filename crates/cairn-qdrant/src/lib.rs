//! Cairn's vector index on Qdrant, in two adapters of the [`VectorIndex`] port:
//!
//! - [`EdgeIndex`], the embedded default: qdrant-edge shards in this process, one per collection
//!   under a root directory, which several processes may share (file locks hand each collection
//!   to one process at a time);
//! - [`RemoteIndex`]: a Qdrant server or cluster over gRPC.
//!
//! Both store a chunk the same way (module `layout`): point id = chunk id, a named cosine vector
//! and a named sparse BM25 vector with the IDF modifier whose term weights are computed in this
//! process with the same code (`lexical`), and a payload whose filter keywords give exactly the
//! semantics of [`Filter::matches`](cairn_core::index::Filter::matches) (`filter`). They check the
//! collection's spec the same way (`spec`): kept in a JSON file beside the shard for qdrant-edge,
//! in the collection's metadata for a server.
//!
//! [`VectorIndex`]: cairn_core::index::VectorIndex

mod edge;
mod filter;
mod layout;
mod lexical;
mod remote;
mod spec;

pub use edge::{EdgeIndex, EdgeOptions};
pub use remote::{RemoteIndex, RemoteOptions};
