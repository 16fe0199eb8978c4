//! BERT-family encoders: sentence embeddings (mean pooling, L2 norm, as sentence-transformers
//! computes them) and the shared tokenisation that feeds them.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use crate::{LoadError, ModelFiles};

/// A tokenised batch on the device: ids, token types and attention mask, each `[batch, tokens]`.
#[derive(Debug)]
pub(crate) struct Batch {
    pub ids: Tensor,
    pub type_ids: Tensor,
    pub mask: Tensor,
}

/// A tokenizer set up for batched inference: pads to the longest input, truncates at the model's
/// limit. The `tokenizer.json` of many sentence-transformers exports pads and truncates to a fixed
/// 128 tokens; that setting is replaced here.
#[derive(Debug, Clone)]
pub(crate) struct BatchTokenizer {
    tokenizer: Tokenizer,
    /// The same vocabulary without padding or truncation, for counting tokens.
    counting: Tokenizer,
    pub max_tokens: usize,
}

impl BatchTokenizer {
    pub fn load(path: &Path, max_tokens: usize, pad_id: u32) -> Result<Self, LoadError> {
        let mut tokenizer = Tokenizer::from_file(path).map_err(|e| LoadError::Invalid {
            file: path.to_owned(),
            reason: e.to_string(),
        })?;
        let pad_token = tokenizer
            .id_to_token(pad_id)
            .unwrap_or_else(|| "[PAD]".to_owned());
        let mut counting = tokenizer.clone();
        counting.with_padding(None);
        counting
            .with_truncation(None)
            .map_err(|e| LoadError::Invalid {
                file: path.to_owned(),
                reason: e.to_string(),
            })?;
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            pad_id,
            pad_token,
            ..PaddingParams::default()
        }));
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_tokens,
                ..TruncationParams::default()
            }))
            .map_err(|e| LoadError::Invalid {
                file: path.to_owned(),
                reason: e.to_string(),
            })?;
        Ok(BatchTokenizer {
            tokenizer,
            counting,
            max_tokens,
        })
    }

    /// The tokenizer without padding or truncation.
    pub fn counting(&self) -> &Tokenizer {
        &self.counting
    }

    pub fn encode<E: Into<tokenizers::EncodeInput<'static>> + Send>(
        &self,
        inputs: Vec<E>,
        device: &Device,
    ) -> candle_core::Result<Batch> {
        let encodings = self
            .tokenizer
            .encode_batch(inputs, true)
            .map_err(candle_core::Error::msg)?;
        let rows = encodings.len();
        let width = encodings.first().map_or(0, |e| e.get_ids().len());
        let mut ids = Vec::with_capacity(rows * width);
        let mut type_ids = Vec::with_capacity(rows * width);
        let mut mask = Vec::with_capacity(rows * width);
        for encoding in &encodings {
            ids.extend_from_slice(encoding.get_ids());
            type_ids.extend_from_slice(encoding.get_type_ids());
            mask.extend_from_slice(encoding.get_attention_mask());
        }
        Ok(Batch {
            ids: Tensor::from_vec(ids, (rows, width), device)?,
            type_ids: Tensor::from_vec(type_ids, (rows, width), device)?,
            mask: Tensor::from_vec(mask, (rows, width), device)?,
        })
    }
}

/// Reads a BERT `config.json`.
pub(crate) fn read_config(path: &Path) -> Result<Config, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|e| LoadError::Io {
        file: path.to_owned(),
        reason: e.to_string(),
    })?;
    serde_json::from_str(&text).map_err(|e| LoadError::Invalid {
        file: path.to_owned(),
        reason: format!("not a BERT config: {e}"),
    })
}

/// Reads safetensors weights into memory (read, not memory-mapped: the workspace forbids `unsafe`,
/// and BERT-sized models are small).
pub(crate) fn read_weights<'a>(path: &Path, device: &Device) -> Result<VarBuilder<'a>, LoadError> {
    let bytes = std::fs::read(path).map_err(|e| LoadError::Io {
        file: path.to_owned(),
        reason: e.to_string(),
    })?;
    VarBuilder::from_buffered_safetensors(bytes, DType::F32, device).map_err(|e| {
        LoadError::Invalid {
            file: path.to_owned(),
            reason: e.to_string(),
        }
    })
}

/// The maximum sequence length: `sentence_bert_config.json`'s `max_seq_length` when present, capped
/// by the model's position embeddings.
fn max_tokens(files: &ModelFiles, config: &Config) -> Result<usize, LoadError> {
    #[derive(serde::Deserialize)]
    struct SentenceConfig {
        max_seq_length: Option<usize>,
    }
    let declared = match &files.sentence_config {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| LoadError::Io {
                file: path.clone(),
                reason: e.to_string(),
            })?;
            serde_json::from_str::<SentenceConfig>(&text)
                .map_err(|e| LoadError::Invalid {
                    file: path.clone(),
                    reason: e.to_string(),
                })?
                .max_seq_length
        }
        None => None,
    };
    Ok(declared
        .unwrap_or(config.max_position_embeddings)
        .min(config.max_position_embeddings))
}

/// A sentence-embedding model of the BERT family (all-MiniLM, bge, e5, gte…): mean pooling over
/// the attention mask, then L2 normalisation.
pub struct BertEmbedder {
    model: BertModel,
    tokenizer: BatchTokenizer,
    device: Device,
    dimension: usize,
}

impl std::fmt::Debug for BertEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BertEmbedder")
            .field("dimension", &self.dimension)
            .field("max_tokens", &self.tokenizer.max_tokens)
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

impl BertEmbedder {
    /// Loads the model onto `device`.
    pub fn load(files: &ModelFiles, device: &Device) -> Result<Self, LoadError> {
        let config = read_config(&files.config)?;
        let max_tokens = max_tokens(files, &config)?;
        let pad_id = u32::try_from(config.pad_token_id).unwrap_or(0);
        let tokenizer = BatchTokenizer::load(&files.tokenizer, max_tokens, pad_id)?;
        let weights = read_weights(&files.weights, device)?;
        let model = BertModel::load(weights, &config).map_err(|e| LoadError::Invalid {
            file: files.weights.clone(),
            reason: format!("weights do not fit a BERT model: {e}"),
        })?;
        Ok(BertEmbedder {
            model,
            tokenizer,
            device: device.clone(),
            dimension: config.hidden_size,
        })
    }

    pub fn dimension(&self) -> usize {
        self.dimension
    }

    /// The longest input, in tokens; longer texts are truncated.
    pub fn max_tokens(&self) -> usize {
        self.tokenizer.max_tokens
    }

    /// The model's tokenizer without padding or truncation, for chunking and token counts.
    pub fn tokenizer(&self) -> &Tokenizer {
        self.tokenizer.counting()
    }

    /// Embeds `texts` in one forward pass.
    pub fn embed(&self, texts: &[String]) -> candle_core::Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let batch = self.tokenizer.encode(texts.to_vec(), &self.device)?;
        let hidden = self
            .model
            .forward(&batch.ids, &batch.type_ids, Some(&batch.mask))?;
        let mask = batch.mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
        let counts = mask.sum(1)?.clamp(1e-9, f64::MAX)?;
        let mean = summed.broadcast_div(&counts)?;
        let norms = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
        mean.broadcast_div(&norms)?.to_vec2()
    }
}
