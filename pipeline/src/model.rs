//! The model a run embeds with: the supply's files (`searchbar-model`) joined to the encoder
//! that runs them (`searchbar-encoder`). Neither of those crates knows the other.

use anyhow::{Context, Result};
use searchbar_encoder::int4::{pack_int4_weights, Int4Plan, Int4Report};
use searchbar_encoder::prepare::{prepare_onnx, split_token_rows, PrepareReport};
use searchbar_encoder::{Encoder, EncoderConfig, TokenRows};
use searchbar_model::{ModelDir, ModelLock};
use sha2::{Digest, Sha256};

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

/// The 4-bit packing `choice` gives `dir`, judged by `lock` (the configured one, else the built-in
/// one): its `[int4]` plan holds only for the `model.onnx` it pins.
pub fn int4_for(dir: &ModelDir, lock: &ModelLock, choice: WeightsChoice) -> Result<Option<Int4>> {
    let measured = match (&lock.int4, lock.onnx_sha256()) {
        (Some(plan), Some(pinned)) => {
            let onnx = dir.onnx_bytes()?;
            (hex::encode(Sha256::digest(&onnx)) == pinned).then_some(plan)
        }
        _ => None,
    };
    let int4 = |keep: &[String]| Int4 {
        plan: Int4Plan {
            keep_int8: keep.to_vec(),
        },
    };
    Ok(match choice {
        WeightsChoice::Int8 => None,
        WeightsChoice::Int4 => Some(int4(measured.map_or(&[][..], |p| &p.keep_int8))),
        WeightsChoice::Auto => measured.map(|p| int4(&p.keep_int8)),
    })
}

/// The int8 graph as prepared, without 4-bit weights.
pub fn prepared(dir: &ModelDir) -> Result<Prepared> {
    prepared_with(dir, None)
}

/// How [`prepared_with`] packs 4-bit weights.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Int4 {
    pub plan: Int4Plan,
}

/// [`prepared`], with the matmul weights in 4 bits but for those `int4` keeps int8.
pub fn prepared_with(dir: &ModelDir, int4: Option<&Int4>) -> Result<Prepared> {
    let (mut onnx, report) = prepare_onnx(&dir.onnx_bytes()?)?;
    let mut int4_report = None;
    if let Some(int4) = int4 {
        let (packed, packing) = pack_int4_weights(&onnx, &int4.plan)
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

impl Int4 {
    /// What changes the embeddings, for a model fingerprint: the packing's version and the plan.
    pub fn identity(&self) -> String {
        format!(
            "{}|keep={}",
            searchbar_encoder::int4::PACKING,
            self.plan.keep_int8.join(",")
        )
    }
}

/// Loads the prepared encoder with `threads` matmul threads.
pub fn load_encoder(dir: &ModelDir, int4: Option<&Int4>, threads: usize) -> Result<Encoder> {
    let config = EncoderConfig {
        threads,
        ..encoder_config(dir)?
    };
    prepared_with(dir, int4)?.encoder(&dir.tokenizer_json()?, config)
}
