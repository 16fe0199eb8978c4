//! Cross-encoder rerankers of the BERT family (`BertForSequenceClassification`, as the
//! ms-marco-MiniLM cross-encoders are): the query and a passage go through the model together and a
//! classifier head scores their relevance.

use candle_core::{D, Device, Tensor};
use candle_nn::{Linear, Module, VarBuilder, linear};
use candle_transformers::models::bert::BertModel;

use crate::bert::{BatchTokenizer, read_config, read_weights};
use crate::{LoadError, ModelFiles};

/// A loaded cross-encoder; [`CrossEncoder::score`] runs one forward pass.
pub struct CrossEncoder {
    model: BertModel,
    pooler: Linear,
    classifier: Linear,
    tokenizer: BatchTokenizer,
    device: Device,
}

impl std::fmt::Debug for CrossEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrossEncoder")
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

impl CrossEncoder {
    pub fn load(files: &ModelFiles, device: &Device) -> Result<Self, LoadError> {
        let config = read_config(&files.config)?;
        let pad_id = u32::try_from(config.pad_token_id).unwrap_or(0);
        let tokenizer =
            BatchTokenizer::load(&files.tokenizer, config.max_position_embeddings, pad_id)?;
        let weights: VarBuilder<'_> = read_weights(&files.weights, device)?;
        let invalid = |e: candle_core::Error| LoadError::Invalid {
            file: files.weights.clone(),
            reason: format!("weights do not fit a BERT cross-encoder: {e}"),
        };
        let model = BertModel::load(weights.pp("bert"), &config).map_err(invalid)?;
        let hidden = config.hidden_size;
        let pooler = linear(hidden, hidden, weights.pp("bert.pooler.dense")).map_err(invalid)?;
        let classifier = linear(hidden, 1, weights.pp("classifier")).map_err(invalid)?;
        Ok(CrossEncoder {
            model,
            pooler,
            classifier,
            tokenizer,
            device: device.clone(),
        })
    }

    /// Relevance of each passage to the query, in (0, 1): the sigmoid of the classifier's logit.
    pub fn score(&self, query: &str, passages: &[String]) -> candle_core::Result<Vec<f32>> {
        if passages.is_empty() {
            return Ok(Vec::new());
        }
        let pairs: Vec<(String, String)> = passages
            .iter()
            .map(|p| (query.to_owned(), p.clone()))
            .collect();
        let batch = self.tokenizer.encode(pairs, &self.device)?;
        let hidden = self
            .model
            .forward(&batch.ids, &batch.type_ids, Some(&batch.mask))?;
        let cls = hidden.narrow(1, 0, 1)?.squeeze(1)?;
        let pooled = self.pooler.forward(&cls)?.tanh()?;
        let logits: Tensor = self.classifier.forward(&pooled)?.squeeze(D::Minus1)?;
        candle_nn::ops::sigmoid(&logits)?.to_vec1()
    }
}
