//! Chat and embedding models over the OpenAI API, through async-openai: OpenAI itself, Azure OpenAI
//! (API key or Entra ID bearer token), and any OpenAI-compatible server (vLLM, TGI, Ollama,
//! mistralrs-server, Triton's OpenAI frontend, an APIM gateway in front of any of these).
//!
//! The adapters make one attempt per call and classify failures into `ModelError` so that the
//! gateway decides about retries and fallback; async-openai's own retry layer is switched off.

mod chat;
mod embedding;
mod endpoint;
mod errors;
mod retry_after;

pub use chat::{OpenAiChatModel, estimate_usage};
pub use embedding::{OpenAiEmbeddingModel, cl100k_text};
pub use endpoint::{Auth, Endpoint, EndpointError, Timeouts};
