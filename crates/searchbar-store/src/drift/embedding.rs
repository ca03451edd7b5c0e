//! Embedding drift as a domain classifier, the way Evidently does it: if a linear classifier can
//! tell old from new embeddings (out-of-fold ROC AUC well above 0.5), the distribution moved.
//!
//! The classifier is a diagonal linear discriminant (class-mean difference scaled by the pooled
//! per-dimension variance): closed form, so there is no learning rate or iteration count to tune
//! and the result is exactly reproducible. Scores come from stratified k-fold cross-validation, and
//! the AUC is the Mann-Whitney rank statistic with average ranks for ties.

use crate::error::StoreError;
use searchbar_index::rng::SplitMix64;

/// Cross-validation folds.
pub const FOLDS: usize = 5;
/// Keeps the variance scaling finite for dimensions that are constant in a training fold.
const VARIANCE_FLOOR: f64 = 1e-9;

/// Out-of-fold ROC AUC of a classifier separating `old` (label 0) from `new` (label 1).
/// About 0.5 means indistinguishable; 1.0 means perfectly separable. Fails when a side has fewer
/// than [`FOLDS`] vectors or the dimensions disagree.
pub fn domain_classifier_auc(
    old: &[Vec<f32>],
    new: &[Vec<f32>],
    seed: u64,
) -> Result<f64, StoreError> {
    if old.len() < FOLDS || new.len() < FOLDS {
        let message = format!(
            "need at least {FOLDS} vectors per side, got {} old and {} new",
            old.len(),
            new.len()
        );
        return Err(StoreError::DriftInput { message });
    }
    let dim = old[0].len();
    if let Some(v) = old.iter().chain(new).find(|v| v.len() != dim) {
        let message = format!("vectors have dimensions {dim} and {}", v.len());
        return Err(StoreError::DriftInput { message });
    }
    let samples: Vec<(&[f32], bool)> = old
        .iter()
        .map(|v| (v.as_slice(), false))
        .chain(new.iter().map(|v| (v.as_slice(), true)))
        .collect();

    // Stratified folds: shuffle each class, then deal its members round-robin.
    let mut rng = SplitMix64::new(seed);
    let mut fold = vec![0usize; samples.len()];
    for label in [false, true] {
        let mut members: Vec<usize> = (0..samples.len())
            .filter(|&i| samples[i].1 == label)
            .collect();
        rng.shuffle(&mut members);
        for (k, i) in members.into_iter().enumerate() {
            fold[i] = k % FOLDS;
        }
    }

    let mut scored = Vec::with_capacity(samples.len());
    for k in 0..FOLDS {
        let train = || {
            samples
                .iter()
                .zip(&fold)
                .filter(move |(_, f)| **f != k)
                .map(|(s, _)| *s)
        };
        let weights = fit(train(), dim);
        for (sample, _) in samples.iter().zip(&fold).filter(|(_, f)| **f == k) {
            let score: f64 = weights
                .iter()
                .zip(sample.0)
                .map(|(w, x)| w * f64::from(*x))
                .sum();
            scored.push((score, sample.1));
        }
    }
    Ok(roc_auc(&mut scored))
}

/// Diagonal LDA direction: (mean_new − mean_old) / pooled variance, per dimension.
fn fit<'a>(train: impl Iterator<Item = (&'a [f32], bool)> + Clone, dim: usize) -> Vec<f64> {
    let mut sums = [vec![0f64; dim], vec![0f64; dim]];
    let mut counts = [0usize; 2];
    for (x, label) in train.clone() {
        counts[usize::from(label)] += 1;
        for (s, v) in sums[usize::from(label)].iter_mut().zip(x) {
            *s += f64::from(*v);
        }
    }
    let means: Vec<Vec<f64>> = (0..2)
        .map(|c| sums[c].iter().map(|s| s / counts[c] as f64).collect())
        .collect();
    let mut variance = vec![0f64; dim];
    for (x, label) in train {
        for ((var, v), m) in variance.iter_mut().zip(x).zip(&means[usize::from(label)]) {
            *var += (f64::from(*v) - m).powi(2);
        }
    }
    let dof = (counts[0] + counts[1]).saturating_sub(2).max(1) as f64;
    (0..dim)
        .map(|j| (means[1][j] - means[0][j]) / (variance[j] / dof).max(VARIANCE_FLOOR))
        .collect()
}

/// Mann-Whitney AUC: probability that a random positive outscores a random negative (ties ½).
pub fn roc_auc(scored: &mut [(f64, bool)]) -> f64 {
    scored.sort_by(|a, b| a.0.total_cmp(&b.0));
    let positives = scored.iter().filter(|s| s.1).count();
    let negatives = scored.len() - positives;
    if positives == 0 || negatives == 0 {
        return 0.5;
    }
    let mut rank_sum = 0f64;
    let mut i = 0;
    while i < scored.len() {
        let mut j = i;
        while j + 1 < scored.len() && scored[j + 1].0 == scored[i].0 {
            j += 1;
        }
        // Ranks are 1-based; tied scores share the average of their ranks.
        let average_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += average_rank * scored[i..=j].iter().filter(|s| s.1).count() as f64;
        i = j + 1;
    }
    let p = positives as f64;
    (rank_sum - p * (p + 1.0) / 2.0) / (p * negatives as f64)
}
