//! The model a run embeds with: the supply's files (`searchbar-model`) joined to the encoder
//! that runs them (`searchbar-encoder`). Neither of those crates knows the other.

use anyhow::{Context, Result};
use searchbar_encoder::int4::{pack_int4_weights, Int4Plan, Int4Report};
use searchbar_encoder::prepare::{prepare_onnx, split_token_rows, PrepareReport};
use searchbar_encoder::{Encoder, EncoderConfig, TokenRows};
use searchbar_model::{ModelDir, ModelLock};

/// The encoder settings `dir` declares; a pooling the encoder does not run is an error naming
/// the directory.
pub fn encoder_config(dir: &ModelDir) -> Result<EncoderConfig> {
    EncoderConfig::declared(dir.max_tokens, dir.pooling.as_deref())
        .with_context(|| format!("model {}", dir.dir.display()))
}

/// The encoder as shipped: the ONNX file after [`prepare_onnx`], with its word-embedding table
/// split out as token rows ([`split_token_rows`]) where it has one, so that a page fetches only
/// its queries' rows. The pipeline runs the same split graph with the whole table.
#[derive(Debug)]
pub struct Prepared {
    pub onnx: Vec<u8>,
    pub token_rows: Option<Vec<u8>>,
    pub report: PrepareReport,
    /// What 4-bit packing did, where the weights are 4-bit.
    pub int4: Option<Int4Report>,
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

/// Which weights an encoder holds: a project's `model.weights`, or `--weights`.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum WeightsChoice {
    /// 4-bit where the model lock records a measured plan for this very `model.onnx`, else int8.
    #[default]
    Auto,
    Int8,
    /// 4-bit, keeping int8 what the lock's plan keeps (all 4-bit for an unmeasured model).
    Int4,
}

/// The 4-bit plan `choice` gives the model whose `model.onnx` has the sha256 `onnx_sha256`
/// (lower-case hex), judged by `lock` (the configured one, else the built-in one): its `[int4]`
/// plan holds only for the `model.onnx` it pins.
pub fn int4_for(onnx_sha256: &str, lock: &ModelLock, choice: WeightsChoice) -> Option<Int4Plan> {
    let measured = lock
        .int4
        .as_ref()
        .filter(|_| lock.onnx_sha256() == Some(onnx_sha256));
    let plan = |keep: &[String]| Int4Plan {
        keep_int8: keep.to_vec(),
    };
    match choice {
        WeightsChoice::Int8 => None,
        WeightsChoice::Int4 => Some(plan(measured.map_or(&[][..], |p| &p.keep_int8))),
        WeightsChoice::Auto => measured.map(|p| plan(&p.keep_int8)),
    }
}

/// The encoder as shipped from `dir`, with its matmul weights in 4 bits but for those `int4`
/// keeps int8, or int8 without a plan.
pub fn prepared_with(dir: &ModelDir, int4: Option<&Int4Plan>) -> Result<Prepared> {
    let (mut onnx, report) = prepare_onnx(&dir.onnx_bytes()?)?;
    let mut int4_report = None;
    if let Some(int4) = int4 {
        let (packed, packing) = pack_int4_weights(&onnx, int4)
            .with_context(|| format!("model {}", dir.dir.display()))?;
        onnx = packed;
        int4_report = Some(packing);
    }
    Ok(match split_token_rows(&onnx)? {
        Some(split) => Prepared {
            onnx: split.onnx,
            token_rows: Some(split.token_rows),
            report,
            int4: int4_report,
        },
        None => Prepared {
            onnx,
            token_rows: None,
            report,
            int4: int4_report,
        },
    })
}

/// Loads the prepared encoder with `threads` matmul threads.
pub fn load_encoder(dir: &ModelDir, int4: Option<&Int4Plan>, threads: usize) -> Result<Encoder> {
    let config = EncoderConfig {
        threads,
        ..encoder_config(dir)?
    };
    prepared_with(dir, int4)?.encoder(&dir.tokenizer_json()?, config)
}
