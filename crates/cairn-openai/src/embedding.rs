//! `EmbeddingModel` over the embeddings endpoint.

use async_openai::Client;
use async_openai::types::embeddings::{CreateEmbeddingRequest, EmbeddingInput};
use async_trait::async_trait;
use cairn_core::model::{EmbeddingModel, ModelError};

use crate::endpoint::{Endpoint, EndpointConfig, EndpointError, Timeouts};
use crate::errors::{Scrub, classify};

/// An embedding model served over the OpenAI API (OpenAI, Azure OpenAI, TEI, vLLM, …).
#[derive(Debug, Clone)]
pub struct OpenAiEmbeddingModel {
    client: Client<EndpointConfig>,
    model: String,
    dimension: usize,
    /// Ask the server for this many dimensions (models with Matryoshka embeddings accept it).
    request_dimensions: bool,
}

impl OpenAiEmbeddingModel {
    /// `dimension` is what the model returns; every answer is checked against it. With
    /// `request_dimensions`, it is also sent to shorten the vectors server-side.
    pub fn new(
        endpoint: &Endpoint,
        model: impl Into<String>,
        dimension: usize,
        request_dimensions: bool,
        timeouts: Timeouts,
    ) -> Result<Self, EndpointError> {
        let client = EndpointConfig::new(endpoint)?.client(timeouts)?;
        Ok(OpenAiEmbeddingModel {
            client,
            model: model.into(),
            dimension,
            request_dimensions,
        })
    }
}

#[async_trait]
impl EmbeddingModel for OpenAiEmbeddingModel {
    fn model_id(&self) -> &str {
        &self.model
    }

    fn dimension(&self) -> usize {
        self.dimension
    }

    async fn embed_documents(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, ModelError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let request = CreateEmbeddingRequest {
            model: self.model.clone(),
            input: EmbeddingInput::StringArray(texts.to_vec()),
            dimensions: self
                .request_dimensions
                .then(|| u32::try_from(self.dimension).unwrap_or(u32::MAX)),
            ..Default::default()
        };
        let response = crate::retry_after::scoped(async {
            self.client.embeddings().create(request).await.map_err(|e| {
                classify(
                    e,
                    &Scrub::new(async_openai::config::Config::api_key(self.client.config())),
                )
            })
        })
        .await?;
        let mut data = response.data;
        data.sort_by_key(|embedding| embedding.index);
        if data.len() != texts.len() {
            return Err(ModelError::Permanent(format!(
                "asked for {} embeddings, the server returned {}",
                texts.len(),
                data.len()
            )));
        }
        data.into_iter()
            .map(|embedding| {
                if embedding.embedding.len() == self.dimension {
                    Ok(embedding.embedding)
                } else {
                    Err(ModelError::Permanent(format!(
                        "model `{}` returned {} dimensions, configured for {}; fix the configured dimension",
                        self.model,
                        embedding.embedding.len(),
                        self.dimension
                    )))
                }
            })
            .collect()
    }
}

/// The text behind OpenAI `cl100k_base` token ids: what OpenAI clients send as embedding input when
/// they cut texts to a model's context by tokens (LangChain's `OpenAIEmbeddings` does by default),
/// so a server that embeds with another model can read them. `None` when the ids are not tokens of
/// that encoding or do not decode to UTF-8 text.
pub fn cl100k_text(tokens: &[u32]) -> Option<String> {
    // Unknown ids and bytes that are not UTF-8 are both errors of `decode`.
    tiktoken_rs::cl100k_base_singleton().decode(tokens).ok()
}

#[cfg(test)]
mod cl100k_tests {
    #[test]
    fn token_ids_read_back_as_the_text_they_encode() {
        let bpe = tiktoken_rs::cl100k_base_singleton();
        let text = "Where is the catalog kept? In PostgreSQL.";
        let tokens: Vec<u32> = bpe.encode_ordinary(text);
        assert_eq!(super::cl100k_text(&tokens).as_deref(), Some(text));
        assert_eq!(super::cl100k_text(&[u32::MAX]), None);
    }
}
