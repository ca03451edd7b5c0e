//! The model a run embeds with: the supply's files (`searchbar-model`) joined to the encoder
//! that runs them (`searchbar-encoder`). Neither of those crates knows the other.

use anyhow::{Context, Result};
use searchbar_encoder::prepare::{prepare_onnx, PrepareReport};
use searchbar_encoder::{Encoder, EncoderConfig};
use searchbar_model::ModelDir;

/// The encoder settings `dir` declares; a pooling the encoder does not run is an error naming
/// the directory.
pub fn encoder_config(dir: &ModelDir) -> Result<EncoderConfig> {
    EncoderConfig::declared(dir.max_tokens, dir.pooling.as_deref())
        .with_context(|| format!("model {}", dir.dir.display()))
}

/// The encoder as shipped: the ONNX file after [`prepare_onnx`].
pub fn prepared_onnx(dir: &ModelDir) -> Result<(Vec<u8>, PrepareReport)> {
    Ok(prepare_onnx(&dir.onnx_bytes()?)?)
}

/// Loads the prepared encoder with `threads` matmul threads.
pub fn load_encoder(dir: &ModelDir, threads: usize) -> Result<Encoder> {
    let config = EncoderConfig {
        threads,
        ..encoder_config(dir)?
    };
    let (onnx, _) = prepared_onnx(dir)?;
    Ok(Encoder::new(&onnx, &dir.tokenizer_json()?, config)?)
}
