//! Drift between two catalog versions: text-length PSI, vocabulary PSI and an optional
//! embedding domain-classifier AUC, compared against the `[drift]` thresholds.
//!
//! PSI reading guide (the usual rule of thumb): below 0.1 stable, 0.1–0.2 moderate, above 0.2 a
//! significant shift, hence the 0.2 defaults.

mod embedding;
mod psi;

pub use embedding::{domain_classifier_auc, roc_auc, FOLDS};
pub use psi::{
    length_bins, length_psi, psi, quantile_bins, quantile_psi, vocab_bins, vocab_psi, words,
    Binned, LENGTH_BINS, PSI_EPSILON, VOCAB_BINS, VOCAB_TOP_N,
};

use serde::{Deserialize, Serialize};

use crate::config::DriftConfig;
use crate::error::StoreError;
use searchbar_index::rng::sample_indices;

/// Seed of every random choice in drift statistics, so a report is reproducible.
pub const DRIFT_SEED: u64 = 0x5EA2_C4BA_2D21_F7ED;

/// Embeddings of the old and the new side, one L2-normalised vector per document.
pub type EmbeddingPair<'a> = (&'a [Vec<f32>], &'a [Vec<f32>]);

/// Outcome of [`drift_report`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftReport {
    /// PSI of per-document word counts.
    pub length_psi: f64,
    /// PSI of per-document vocabulary coverage (see [`vocab_psi`]).
    pub vocab_psi: f64,
    /// The bins behind the two PSIs (word counts; share of words in the old side's top
    /// [`VOCAB_TOP_N`]), for plots.
    #[serde(default)]
    pub length_bins: Binned,
    #[serde(default)]
    pub vocab_bins: Binned,
    /// Domain-classifier ROC AUC on embeddings, when embeddings were given.
    pub embedding: Option<f64>,
    /// One line per exceeded threshold: statistic, value, threshold and excess.
    pub flags: Vec<String>,
    /// True when any threshold was exceeded.
    pub drifted: bool,
}

/// Indices of the documents whose embeddings [`drift_report`] should receive: at most
/// `config.sample` of `len`, fixed seed. Embed only these to keep the cost bounded.
pub fn embedding_sample(len: usize, config: &DriftConfig) -> Vec<usize> {
    sample_indices(len, config.sample, DRIFT_SEED)
}

/// Compares old and new texts (all of them: PSI is cheap) and, optionally, embeddings of both
/// sides (L2-normalised; subsampled to `config.sample` per side if larger).
pub fn drift_report<S: AsRef<str>>(
    old_texts: &[S],
    new_texts: &[S],
    embeddings: Option<EmbeddingPair<'_>>,
    config: &DriftConfig,
) -> Result<DriftReport, StoreError> {
    let length_bins = length_bins(old_texts, new_texts);
    let vocab_bins = vocab_bins(old_texts, new_texts);
    let (length, vocab) = (length_bins.psi(), vocab_bins.psi());
    let embedding = match embeddings {
        Some((old, new)) => {
            let pick = |vectors: &[Vec<f32>], salt: u64| -> Vec<Vec<f32>> {
                sample_indices(vectors.len(), config.sample, DRIFT_SEED ^ salt)
                    .into_iter()
                    .map(|i| vectors[i].clone())
                    .collect()
            };
            Some(domain_classifier_auc(
                &pick(old, 1),
                &pick(new, 2),
                DRIFT_SEED,
            )?)
        }
        None => None,
    };
    let mut flags = Vec::new();
    let mut check = |name: &str, value: f64, limit: f64| {
        if value > limit {
            flags.push(format!(
                "{name} {value:.4} exceeds {limit} by {:.4}",
                value - limit
            ));
        }
    };
    check("length_psi", length, config.length_psi);
    check("vocab_psi", vocab, config.vocab_psi);
    if let Some(auc) = embedding {
        check("embedding_auc", auc, config.embedding_auc);
    }
    Ok(DriftReport {
        length_psi: length,
        vocab_psi: vocab,
        length_bins,
        vocab_bins,
        embedding,
        drifted: !flags.is_empty(),
        flags,
    })
}
