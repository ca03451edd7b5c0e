use crate::{ModelError, ModelLock};
use searchbar_encoder::prepare::{prepare_onnx, PrepareReport};
use searchbar_encoder::{Encoder, EncoderConfig, Pooling, DEFAULT_MAX_TOKENS};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// A model on disk: an ONNX encoder, its `tokenizer.json` and the sentence-transformers
/// settings read from the directory (or from the lock that produced it).
#[derive(Debug, Clone)]
pub struct ModelDir {
    pub dir: PathBuf,
    pub onnx: PathBuf,
    pub tokenizer: PathBuf,
    pub config: EncoderConfig,
}

#[derive(Deserialize)]
struct SbertConfig {
    max_seq_length: Option<usize>,
}

#[derive(Deserialize)]
struct PoolingConfig {
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_cls_token: bool,
}

impl ModelDir {
    /// Opens any sentence-transformers ONNX export: `model.onnx` (or `onnx/model.onnx`) and
    /// `tokenizer.json`, with `sentence_bert_config.json` and `1_Pooling/config.json` when
    /// present (defaults: 256 tokens, mean pooling).
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, ModelError> {
        let dir = dir.into();
        let bad = |message: String| ModelError::BadModelDir {
            dir: dir.clone(),
            message,
        };
        if !dir.is_dir() {
            return Err(bad("not a directory".into()));
        }
        let onnx = ["model.onnx", "onnx/model.onnx"]
            .iter()
            .map(|p| dir.join(p))
            .find(|p| p.is_file())
            .ok_or_else(|| bad("no model.onnx (or onnx/model.onnx) in it".into()))?;
        let tokenizer = dir.join("tokenizer.json");
        if !tokenizer.is_file() {
            return Err(bad("no tokenizer.json in it".into()));
        }
        let mut config = EncoderConfig::default();
        if let Some(c) = read_json::<SbertConfig>(&dir.join("sentence_bert_config.json"))? {
            config.max_tokens = c.max_seq_length.unwrap_or(DEFAULT_MAX_TOKENS);
        }
        if let Some(p) = read_json::<PoolingConfig>(&dir.join("1_Pooling/config.json"))? {
            config.pooling = match (p.pooling_mode_mean_tokens, p.pooling_mode_cls_token) {
                (true, false) => Pooling::Mean,
                (false, true) => Pooling::Cls,
                _ => {
                    return Err(bad(
                        "1_Pooling/config.json: only mean or cls pooling is supported".into(),
                    ))
                }
            };
        }
        Ok(Self {
            dir,
            onnx,
            tokenizer,
            config,
        })
    }

    /// Opens a cache directory written from `lock`, taking the settings from the lock.
    pub fn open_with_lock(dir: PathBuf, lock: &ModelLock) -> Result<Self, ModelError> {
        let mut m = Self::open(dir)?;
        m.config.max_tokens = lock.max_tokens;
        m.config.pooling = lock.pooling().map_err(|message| ModelError::Lock {
            origin: lock.name.clone(),
            message,
        })?;
        Ok(m)
    }

    /// The encoder as shipped: the ONNX file after [`prepare_onnx`].
    pub fn prepared_onnx(&self) -> Result<(Vec<u8>, PrepareReport), ModelError> {
        let raw = std::fs::read(&self.onnx).map_err(ModelError::io(&self.onnx))?;
        Ok(prepare_onnx(&raw)?)
    }

    pub fn tokenizer_json(&self) -> Result<Vec<u8>, ModelError> {
        std::fs::read(&self.tokenizer).map_err(ModelError::io(&self.tokenizer))
    }

    /// Loads the prepared encoder with `threads` matmul threads.
    pub fn load_encoder(&self, threads: usize) -> Result<Encoder, ModelError> {
        let (onnx, _) = self.prepared_onnx()?;
        let config = EncoderConfig {
            threads,
            ..self.config.clone()
        };
        Ok(Encoder::new(&onnx, &self.tokenizer_json()?, config)?)
    }
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>, ModelError> {
    match std::fs::read(path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| ModelError::BadModelDir {
                    dir: path.parent().unwrap_or(path).to_path_buf(),
                    message: format!("{}: {e}", path.display()),
                })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ModelError::io(path)(e)),
    }
}
