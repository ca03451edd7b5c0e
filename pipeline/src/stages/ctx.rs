//! What every stage needs: the project, its workspace and the model, resolved once.

use crate::config::Project;
use crate::model::{int4_for, prepared_with, Prepared};
use anyhow::{Context, Result};
use searchbar_encoder::int4::Int4Plan;
use searchbar_encoder::Encoder;
use searchbar_model::{open_cached, ModelDir, ModelLock, DEFAULT_LOCK};
use sha2::{Digest, Sha256};
use std::cell::OnceCell;
use std::path::PathBuf;

#[derive(Debug)]
pub struct Ctx {
    pub project: Project,
    pub ws: PathBuf,
    model: OnceCell<Model>,
    prepared: OnceCell<Prepared>,
    encoder: OnceCell<Encoder>,
}

/// The model a run embeds with, as resolved once.
#[derive(Debug)]
struct Model {
    dir: ModelDir,
    int4: Option<Int4Plan>,
    fingerprint: String,
}

impl Ctx {
    pub fn new(project: Project) -> Self {
        let ws = project.workspace();
        Self {
            project,
            ws,
            model: OnceCell::new(),
            prepared: OnceCell::new(),
            encoder: OnceCell::new(),
        }
    }

    pub fn config(&self) -> &crate::config::Config {
        &self.project.config
    }

    fn resolve_model(&self) -> Result<&Model> {
        if let Some(m) = self.model.get() {
            return Ok(m);
        }
        let cfg = &self.config().model;
        let lock = match &cfg.lock {
            Some(lock) => ModelLock::load(&self.project.path(lock))?,
            None => ModelLock::parse(DEFAULT_LOCK, "built-in lock")?,
        };
        let dir = match (&cfg.dir, &cfg.lock) {
            (Some(dir), _) => ModelDir::open(self.project.path(dir))?,
            (None, Some(_)) => open_cached(&lock)?,
            (None, None) => match std::env::var_os("SEARCHBAR_MODEL_DIR") {
                Some(dir) => ModelDir::open(PathBuf::from(dir))?,
                None => open_cached(&lock).context(
                    "the default model is not in the cache: run `searchbar model fetch`",
                )?,
            },
        };
        // model.onnx is read and hashed once, for the lock's plan and the fingerprint.
        let onnx_digest = Sha256::digest(dir.onnx_bytes()?);
        let int4 = int4_for(&hex::encode(onnx_digest), &lock, cfg.weights);
        let fingerprint = fingerprint(&dir, &onnx_digest, int4.as_ref())?;
        Ok(self.model.get_or_init(|| Model {
            dir,
            int4,
            fingerprint,
        }))
    }

    pub fn model(&self) -> Result<&ModelDir> {
        Ok(&self.resolve_model()?.dir)
    }

    /// The 4-bit packing of the encoder's weights, if it has them.
    pub fn int4(&self) -> Result<Option<&Int4Plan>> {
        Ok(self.resolve_model()?.int4.as_ref())
    }

    /// Identifies the model as the embeddings depend on it: weights, tokenizer, settings.
    pub fn model_fingerprint(&self) -> Result<&str> {
        Ok(&self.resolve_model()?.fingerprint)
    }

    /// The encoder graph as it ships, prepared once per run (4-bit weights take seconds).
    pub fn prepared(&self) -> Result<&Prepared> {
        if let Some(p) = self.prepared.get() {
            return Ok(p);
        }
        let prepared = prepared_with(self.model()?, self.int4()?)?;
        Ok(self.prepared.get_or_init(|| prepared))
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
        let config = searchbar_encoder::EncoderConfig {
            threads: self.threads(),
            ..crate::model::encoder_config(self.model()?)?
        };
        let encoder = self
            .prepared()?
            .encoder(&self.model()?.tokenizer_json()?, config)?;
        Ok(self.encoder.get_or_init(|| encoder))
    }
}

fn fingerprint(dir: &ModelDir, onnx_digest: &[u8], int4: Option<&Int4Plan>) -> Result<String> {
    let mut h = Sha256::new();
    h.update(onnx_digest);
    let tokenizer = &dir.tokenizer;
    let bytes =
        std::fs::read(tokenizer).with_context(|| format!("reading {}", tokenizer.display()))?;
    h.update(Sha256::digest(&bytes));
    let config = crate::model::encoder_config(dir)?;
    h.update(format!(
        "{}|{}|{}",
        config.max_tokens,
        config.pooling.as_str(),
        config.normalize
    ));
    // int8 weights add nothing, so that an int8 run keeps the fingerprint it had before 4-bit
    // weights existed (and its embedding cache).
    if let Some(int4) = int4 {
        h.update(format!("|{}", int4.identity()));
    }
    Ok(hex::encode(h.finalize()))
}

/// sha256 of a file's bytes, or "missing".
pub fn file_hash(path: &std::path::Path) -> String {
    std::fs::read(path).map_or_else(|_| "missing".into(), |b| hex::encode(Sha256::digest(&b)))
}
