//! Population stability index over text lengths and vocabulary.

use std::collections::HashMap;

/// Stand-in for an empty bin's share, so that `ln(actual / expected)` stays finite; an empty bin
/// facing a 1 % share then contributes about 0.05.
pub const PSI_EPSILON: f64 = 1e-4;
/// Length bins, cut at the old sample's deciles.
pub const LENGTH_BINS: usize = 10;
/// Vocabulary bins: the most frequent words of both sides together, plus one bin for the rest.
pub const VOCAB_TOP_N: usize = 1000;

/// `Σ (a − e) · ln(a / e)` over the bins' shares, each share at least [`PSI_EPSILON`].
/// Counts are normalized per side; missing bins count as 0; 0 when either side is empty.
pub fn psi(expected: &[u64], actual: &[u64]) -> f64 {
    let (total_e, total_a) = (expected.iter().sum::<u64>(), actual.iter().sum::<u64>());
    if total_e == 0 || total_a == 0 {
        return 0.0;
    }
    let bins = expected.len().max(actual.len());
    (0..bins)
        .map(|i| {
            let e =
                (expected.get(i).copied().unwrap_or(0) as f64 / total_e as f64).max(PSI_EPSILON);
            let a = (actual.get(i).copied().unwrap_or(0) as f64 / total_a as f64).max(PSI_EPSILON);
            (a - e) * (a / e).ln()
        })
        .sum()
}

/// Lowercase runs of letters and digits.
pub fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

/// PSI of word counts per document, binned at the old side's deciles (ties merge bins).
pub fn length_psi<S: AsRef<str>>(old: &[S], new: &[S]) -> f64 {
    let lengths =
        |texts: &[S]| -> Vec<usize> { texts.iter().map(|t| words(t.as_ref()).count()).collect() };
    let (mut old_lengths, new_lengths) = (lengths(old), lengths(new));
    if old_lengths.is_empty() || new_lengths.is_empty() {
        return 0.0;
    }
    old_lengths.sort_unstable();
    let n = old_lengths.len();
    let mut cuts: Vec<usize> = (1..LENGTH_BINS)
        .map(|i| old_lengths[i * n / LENGTH_BINS])
        .collect();
    cuts.dedup();
    // Bin k holds lengths in [cuts[k-1], cuts[k]).
    let histogram = |values: &[usize]| {
        let mut counts = vec![0u64; cuts.len() + 1];
        for &v in values {
            counts[cuts.partition_point(|&c| c <= v)] += 1;
        }
        counts
    };
    psi(&histogram(&old_lengths), &histogram(&new_lengths))
}

/// PSI of word-token shares over the [`VOCAB_TOP_N`] most frequent words of both sides, plus one
/// bin for every other word (ties broken alphabetically, so the result is deterministic).
pub fn vocab_psi<S: AsRef<str>>(old: &[S], new: &[S]) -> f64 {
    let count = |texts: &[S]| {
        let mut counts: HashMap<String, u64> = HashMap::new();
        for text in texts {
            for word in words(text.as_ref()) {
                *counts.entry(word).or_default() += 1;
            }
        }
        counts
    };
    let (old_counts, new_counts) = (count(old), count(new));
    let mut union: HashMap<&str, u64> = HashMap::new();
    for (word, n) in old_counts.iter().chain(&new_counts) {
        *union.entry(word.as_str()).or_default() += n;
    }
    let mut ranked: Vec<(&str, u64)> = union.into_iter().collect();
    ranked.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    ranked.truncate(VOCAB_TOP_N);
    let histogram = |counts: &HashMap<String, u64>| {
        let mut bins: Vec<u64> = ranked
            .iter()
            .map(|(w, _)| counts.get(*w).copied().unwrap_or(0))
            .collect();
        let total: u64 = counts.values().sum();
        bins.push(total - bins.iter().sum::<u64>());
        bins
    };
    psi(&histogram(&old_counts), &histogram(&new_counts))
}
