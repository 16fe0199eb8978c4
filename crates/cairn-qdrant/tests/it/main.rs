//! Integration tests of the Qdrant adapters: the index contract on qdrant-edge (always) and on a
//! Qdrant server (when `QDRANT_URL` is set), and what only the embedded index does (persistence,
//! optimisation, several processes on one directory).

mod edge;
mod multi_process;
mod remote;
