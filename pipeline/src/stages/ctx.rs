//! What every stage needs: the project, its workspace and the model, resolved once.

use crate::config::Project;
use anyhow::{Context, Result};
use searchbar_encoder::Encoder;
use searchbar_model::{open_cached, ModelDir, ModelLock, DEFAULT_LOCK};
use sha2::{Digest, Sha256};
use std::cell::OnceCell;
use std::path::PathBuf;

#[derive(Debug)]
pub struct Ctx {
    pub project: Project,
    pub ws: PathBuf,
    model: OnceCell<(ModelDir, String)>,
    encoder: OnceCell<Encoder>,
}

impl Ctx {
    pub fn new(project: Project) -> Self {
        let ws = project.workspace();
        Self {
            project,
            ws,
            model: OnceCell::new(),
            encoder: OnceCell::new(),
        }
    }

    pub fn config(&self) -> &crate::config::Config {
        &self.project.config
    }

    fn resolve_model(&self) -> Result<&(ModelDir, String)> {
        if let Some(m) = self.model.get() {
            return Ok(m);
        }
        let cfg = &self.config().model;
        let dir = match (&cfg.dir, &cfg.lock) {
            (Some(dir), _) => ModelDir::open(self.project.path(dir))?,
            (None, Some(lock)) => open_cached(&ModelLock::load(&self.project.path(lock))?)?,
            (None, None) => match std::env::var_os("SEARCHBAR_MODEL_DIR") {
                Some(dir) => ModelDir::open(PathBuf::from(dir))?,
                None => open_cached(&ModelLock::parse(DEFAULT_LOCK, "built-in lock")?).context(
                    "the default model is not in the cache: run `searchbar model fetch`",
                )?,
            },
        };
        let fingerprint = fingerprint(&dir)?;
        Ok(self.model.get_or_init(|| (dir, fingerprint)))
    }

    pub fn model(&self) -> Result<&ModelDir> {
        Ok(&self.resolve_model()?.0)
    }

    /// Identifies the model as the embeddings depend on it: weights, tokenizer, settings.
    pub fn model_fingerprint(&self) -> Result<&str> {
        Ok(&self.resolve_model()?.1)
    }

    pub fn threads(&self) -> usize {
        match self.config().model.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }

    pub fn encoder(&self) -> Result<&Encoder> {
        if let Some(e) = self.encoder.get() {
            return Ok(e);
        }
        let encoder = crate::model::load_encoder(self.model()?, self.threads())?;
        Ok(self.encoder.get_or_init(|| encoder))
    }
}

fn fingerprint(dir: &ModelDir) -> Result<String> {
    let mut h = Sha256::new();
    for path in [&dir.onnx, &dir.tokenizer] {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        h.update(Sha256::digest(&bytes));
    }
    let config = crate::model::encoder_config(dir)?;
    h.update(format!(
        "{}|{}|{}",
        config.max_tokens,
        config.pooling.as_str(),
        config.normalize
    ));
    Ok(hex::encode(h.finalize()))
}

/// sha256 of a file's bytes, or "missing".
pub fn file_hash(path: &std::path::Path) -> String {
    std::fs::read(path).map_or_else(|_| "missing".into(), |b| hex::encode(Sha256::digest(&b)))
}
