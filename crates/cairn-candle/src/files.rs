//! Where a model's files come from: a local directory, or a Hugging Face repository when the
//! machine is online.

use std::path::{Path, PathBuf};

use crate::LoadError;

/// A model given by path or hub id, as written in config (`~/models/minilm`, `sentence-transformers/all-MiniLM-L6-v2`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    /// A directory holding `config.json`, `tokenizer.json` and `model.safetensors`.
    Dir(PathBuf),
    /// A Hugging Face model id, downloaded into the hub cache (`HF_HOME`) on first use.
    Hub(String),
}

impl ModelSource {
    /// An existing directory is a local model; anything else is taken as a hub id.
    pub fn from_path_or_id(value: &str) -> Self {
        let path = Path::new(value);
        if path.is_dir() {
            ModelSource::Dir(path.to_owned())
        } else {
            ModelSource::Hub(value.to_owned())
        }
    }

    /// A short, stable name for the model: the hub id, or the directory's name.
    pub fn default_id(&self) -> String {
        match self {
            ModelSource::Dir(dir) => dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| dir.display().to_string()),
            ModelSource::Hub(id) => id.clone(),
        }
    }

    /// Resolves the files to local paths, downloading them from the hub when needed.
    pub async fn resolve(&self) -> Result<ModelFiles, LoadError> {
        match self {
            ModelSource::Dir(dir) => ModelFiles::in_dir(dir),
            ModelSource::Hub(id) => download(id).await,
        }
    }
}

/// The files a BERT-family model needs, as local paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelFiles {
    pub config: PathBuf,
    pub tokenizer: PathBuf,
    pub weights: PathBuf,
    /// `sentence_bert_config.json`, which carries the model's maximum sequence length.
    pub sentence_config: Option<PathBuf>,
}

impl ModelFiles {
    /// The files of a model directory; a missing file is named in the error.
    pub fn in_dir(dir: &Path) -> Result<Self, LoadError> {
        let required = |name: &str| {
            let path = dir.join(name);
            if path.is_file() {
                Ok(path)
            } else {
                Err(LoadError::MissingFile {
                    dir: dir.to_owned(),
                    file: name.to_owned(),
                })
            }
        };
        let sentence_config = dir.join("sentence_bert_config.json");
        Ok(ModelFiles {
            config: required("config.json")?,
            tokenizer: required("tokenizer.json")?,
            weights: required("model.safetensors")?,
            sentence_config: sentence_config.is_file().then_some(sentence_config),
        })
    }
}

async fn download(id: &str) -> Result<ModelFiles, LoadError> {
    let hub = |e: hf_hub::api::tokio::ApiError| LoadError::Hub {
        id: id.to_owned(),
        reason: e.to_string(),
    };
    let api = hf_hub::api::tokio::Api::new().map_err(hub)?;
    let repo = api.model(id.to_owned());
    let config = repo.get("config.json").await.map_err(hub)?;
    let tokenizer = repo.get("tokenizer.json").await.map_err(hub)?;
    let weights = repo.get("model.safetensors").await.map_err(hub)?;
    let sentence_config = repo.get("sentence_bert_config.json").await.ok();
    Ok(ModelFiles {
        config,
        tokenizer,
        weights,
        sentence_config,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_missing_its_weights_is_named_in_the_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("config.json"), "{}").expect("write");
        std::fs::write(dir.path().join("tokenizer.json"), "{}").expect("write");
        let err = ModelFiles::in_dir(dir.path()).expect_err("no weights");
        let message = err.to_string();
        assert!(message.contains("model.safetensors"), "{message}");
        assert!(
            message.contains(&dir.path().display().to_string()),
            "{message}"
        );
    }

    #[test]
    fn an_existing_directory_is_local_and_anything_else_is_a_hub_id() {
        let dir = tempfile::tempdir().expect("tempdir");
        let local = ModelSource::from_path_or_id(&dir.path().display().to_string());
        assert_eq!(local, ModelSource::Dir(dir.path().to_owned()));
        assert_eq!(
            ModelSource::from_path_or_id("sentence-transformers/all-MiniLM-L6-v2"),
            ModelSource::Hub("sentence-transformers/all-MiniLM-L6-v2".into())
        );
        assert_eq!(
            ModelSource::Hub("org/model".into()).default_id(),
            "org/model"
        );
    }
}
