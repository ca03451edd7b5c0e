use crate::{ModelError, ModelLock};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// A model on disk: an ONNX encoder, its `tokenizer.json` and the sentence-transformers
/// settings its directory (or the lock that produced it) declares. What the encoder makes of
/// those settings, and which it supports, is the encoder's business: this crate only supplies
/// files and reads what they say.
#[derive(Debug, Clone)]
pub struct ModelDir {
    pub dir: PathBuf,
    pub onnx: PathBuf,
    pub tokenizer: PathBuf,
    /// `max_seq_length` of `sentence_bert_config.json`; `None` where nothing says.
    pub max_tokens: Option<usize>,
    /// The pooling mode by its sentence-transformers name (`mean`, `cls`, `max`, ...) from
    /// `1_Pooling/config.json`; `None` where nothing says.
    pub pooling: Option<String>,
}

#[derive(Deserialize)]
struct SbertConfig {
    max_seq_length: Option<usize>,
}

/// `1_Pooling/config.json`'s mode flags and the name each stands for.
const POOLING_MODES: [(&str, &str); 6] = [
    ("pooling_mode_mean_tokens", "mean"),
    ("pooling_mode_cls_token", "cls"),
    ("pooling_mode_max_tokens", "max"),
    ("pooling_mode_mean_sqrt_len_tokens", "mean_sqrt_len"),
    ("pooling_mode_weightedmean_tokens", "weightedmean"),
    ("pooling_mode_lasttoken", "lasttoken"),
];

impl ModelDir {
    /// Opens any sentence-transformers ONNX export: `model.onnx` (or `onnx/model.onnx`) and
    /// `tokenizer.json`, with `sentence_bert_config.json` and `1_Pooling/config.json` when
    /// present.
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
        let max_tokens = read_json::<SbertConfig>(&dir.join("sentence_bert_config.json"))?
            .and_then(|c| c.max_seq_length);
        let pooling = match read_json::<serde_json::Value>(&dir.join("1_Pooling/config.json"))? {
            None => None,
            Some(flags) => {
                let on: Vec<&str> = POOLING_MODES
                    .iter()
                    .filter(|(key, _)| flags.get(key).and_then(|v| v.as_bool()) == Some(true))
                    .map(|(_, name)| *name)
                    .collect();
                match on[..] {
                    [name] => Some(name.to_string()),
                    _ => {
                        return Err(bad(format!(
                            "1_Pooling/config.json: {} pooling modes are on ({}); one must be",
                            on.len(),
                            on.join(", ")
                        )))
                    }
                }
            }
        };
        Ok(Self {
            dir,
            onnx,
            tokenizer,
            max_tokens,
            pooling,
        })
    }

    /// Opens a cache directory written from `lock`, taking the settings from the lock.
    pub fn open_with_lock(dir: PathBuf, lock: &ModelLock) -> Result<Self, ModelError> {
        Ok(Self {
            max_tokens: Some(lock.max_tokens),
            pooling: Some(lock.pooling.clone()),
            ..Self::open(dir)?
        })
    }

    pub fn onnx_bytes(&self) -> Result<Vec<u8>, ModelError> {
        std::fs::read(&self.onnx).map_err(ModelError::io(&self.onnx))
    }

    pub fn tokenizer_json(&self) -> Result<Vec<u8>, ModelError> {
        std::fs::read(&self.tokenizer).map_err(ModelError::io(&self.tokenizer))
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
