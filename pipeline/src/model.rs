//! The model a run embeds with: the supply's files (`searchbar-model`) joined to the encoder
//! that runs them (`searchbar-encoder`). Neither of those crates knows the other.

use anyhow::{Context, Result};
use searchbar_encoder::prepare::{prepare_onnx, split_token_rows, PrepareReport};
use searchbar_encoder::{Encoder, EncoderConfig, TokenRows};
use searchbar_model::ModelDir;

/// The encoder settings `dir` declares; a pooling the encoder does not run is an error naming
/// the directory.
pub fn encoder_config(dir: &ModelDir) -> Result<EncoderConfig> {
    EncoderConfig::declared(dir.max_tokens, dir.pooling.as_deref())
        .with_context(|| format!("model {}", dir.dir.display()))
}

/// The encoder as shipped: the ONNX file after [`prepare_onnx`], with its word-embedding table
/// split out as token rows ([`split_token_rows`]) where it has one, so that a page fetches only
/// its queries' rows. The pipeline runs the same split graph with the whole table.
pub struct Prepared {
    pub onnx: Vec<u8>,
    pub token_rows: Option<Vec<u8>>,
    pub report: PrepareReport,
}

impl Prepared {
    /// The encoder over this graph, given its token rows where it takes them.
    pub fn encoder(&self, tokenizer: &[u8], config: EncoderConfig) -> Result<Encoder> {
        let mut encoder = Encoder::new(&self.onnx, tokenizer, config)?;
        if let Some(rows) = &self.token_rows {
            encoder.set_token_rows(TokenRows::whole(rows.clone(), encoder.dim())?)?;
        }
        Ok(encoder)
    }

    /// The token digests file of [`Prepared::token_rows`].
    pub fn token_digests(&self, dim: usize) -> Result<Option<Vec<u8>>> {
        self.token_rows
            .as_ref()
            .map(|rows| {
                TokenRows::whole(rows.clone(), dim)?
                    .digests()
                    .context("a whole table has digests")
            })
            .transpose()
    }
}

pub fn prepared(dir: &ModelDir) -> Result<Prepared> {
    let (onnx, report) = prepare_onnx(&dir.onnx_bytes()?)?;
    Ok(match split_token_rows(&onnx)? {
        Some(split) => Prepared {
            onnx: split.onnx,
            token_rows: Some(split.token_rows),
            report,
        },
        None => Prepared {
            onnx,
            token_rows: None,
            report,
        },
    })
}

/// Loads the prepared encoder with `threads` matmul threads.
pub fn load_encoder(dir: &ModelDir, threads: usize) -> Result<Encoder> {
    let config = EncoderConfig {
        threads,
        ..encoder_config(dir)?
    };
    prepared(dir)?.encoder(&dir.tokenizer_json()?, config)
}
