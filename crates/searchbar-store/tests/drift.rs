//! Drift statistics: a hand-computed PSI, real text (SciFact vs. the project catalog) and
//! synthetic embeddings.

use std::path::PathBuf;

use searchbar_index::rng::SplitMix64;
use searchbar_store::drift::{
    domain_classifier_auc, drift_report, length_bins, length_psi, psi, roc_auc, vocab_bins,
    vocab_psi,
};
use searchbar_store::DriftConfig;

#[test]
fn psi_matches_a_hand_computed_value() {
    // shares 0.5/0.3/0.2 -> 0.3/0.3/0.4: -0.2·ln(0.6) + 0 + 0.2·ln(2) = 0.240794
    let value = psi(&[50, 30, 20], &[3, 3, 4]);
    assert!((value - 0.240_794).abs() < 1e-6, "{value}");
    // An empty bin uses the 1e-4 epsilon: (0.5-1)·ln(0.5) + (0.5-1e-4)·ln(0.5/1e-4) = 4.6043185
    let value = psi(&[10, 0], &[5, 5]);
    assert!((value - 4.604_318_5).abs() < 1e-6, "{value}");
    assert_eq!(psi(&[1, 2, 3], &[10, 20, 30]), 0.0);
    assert_eq!(psi(&[], &[1]), 0.0);
}

#[test]
fn auc_uses_average_ranks_for_ties() {
    let mut scored = vec![(0.1, false), (0.3, true), (0.35, false), (0.8, true)];
    assert_eq!(roc_auc(&mut scored), 0.75);
    let mut tied = vec![(1.0, false), (1.0, true)];
    assert_eq!(roc_auc(&mut tied), 0.5);
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// SciFact corpus texts (title + text): env SEARCHBAR_SCIFACT (the folder or corpus.jsonl),
/// else the shared datasets folder next to the repository. Missing data fails the test.
fn scifact() -> Option<Vec<String>> {
    let path = std::env::var_os("SEARCHBAR_SCIFACT")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("../shared/datasets/scifact"));
    if std::env::var_os("SEARCHBAR_SKIP_SCIFACT").is_some() {
        eprintln!("\n*** SKIPPED: SciFact drift test (SEARCHBAR_SKIP_SCIFACT is set) ***\n");
        return None;
    }
    let corpus = if path.is_dir() {
        path.join("corpus.jsonl")
    } else {
        path
    };
    let text = std::fs::read_to_string(&corpus).unwrap_or_else(|e| {
        panic!(
            "SciFact corpus not readable at {} ({e}): set SEARCHBAR_SCIFACT to the scifact folder or its corpus.jsonl",
            corpus.display()
        )
    });
    let docs = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let doc: serde_json::Value = serde_json::from_str(line).unwrap();
            format!(
                "{} {}",
                doc["title"].as_str().unwrap_or(""),
                doc["text"].as_str().unwrap_or("")
            )
        })
        .collect();
    Some(docs)
}

fn catalog_texts() -> Vec<String> {
    let mut reader = csv::Reader::from_path(repo_root().join("data/catalog/projects.csv")).unwrap();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            format!("{}. {} {} {}", &r[1], &r[2], &r[3], &r[4])
        })
        .collect()
}

fn halves(mut texts: Vec<String>, seed: u64) -> (Vec<String>, Vec<String>) {
    SplitMix64::new(seed).shuffle(&mut texts);
    let second = texts.split_off(texts.len() / 2);
    (texts, second)
}

#[test]
fn random_halves_of_scifact_do_not_drift() {
    let Some(corpus) = scifact() else { return };
    assert!(
        corpus.len() > 5000,
        "expected the full SciFact corpus, got {} docs",
        corpus.len()
    );
    for seed in [7, 8, 9] {
        let (a, b) = halves(corpus.clone(), seed);
        let report = drift_report(&a, &b, None, &DriftConfig::default()).unwrap();
        eprintln!("halves (seed {seed}): {report:?}");
        assert!(!report.drifted, "{:?}", report.flags);
        assert!(
            report.length_psi < 0.05 && report.vocab_psi < 0.1,
            "{report:?}"
        );
        assert_eq!(report.embedding, None);
    }
}

#[test]
fn scifact_with_a_fifth_replaced_by_catalog_text_drifts_in_vocabulary() {
    let Some(corpus) = scifact() else { return };
    let (a, mut b) = halves(corpus, 7);
    let catalog = catalog_texts();
    assert_eq!(catalog.len(), 171);
    let replaced = b.len() / 5;
    for (i, text) in b.iter_mut().take(replaced).enumerate() {
        *text = catalog[i % catalog.len()].clone();
    }
    let report = drift_report(&a, &b, None, &DriftConfig::default()).unwrap();
    eprintln!("mixed: {report:?}");
    assert!(report.drifted);
    assert!(
        report.flags.iter().any(|f| f.starts_with("vocab_psi")),
        "{:?}",
        report.flags
    );
    assert!(report.vocab_psi > 0.2, "{report:?}");
}

#[test]
fn length_psi_sees_a_length_shift() {
    let short: Vec<String> = (0..500).map(|i| "word ".repeat(10 + i % 20)).collect();
    let long: Vec<String> = (0..500).map(|i| "word ".repeat(25 + i % 20)).collect();
    assert!(length_psi(&short, &short) < 1e-12);
    assert!(length_psi(&short, &long) > 1.0);
    assert!(
        vocab_psi(&short, &long) < 1e-12,
        "same single word on both sides"
    );
    let other: Vec<String> = (0..500).map(|i| "term ".repeat(10 + i % 20)).collect();
    assert!(vocab_psi(&short, &other) > 1.0);

    // The bins a report plots are the ones the PSI came from: every document counted once,
    // cut at the old side's deciles, all of the long side above the short side's top cut.
    let bins = length_bins(&short, &long);
    assert_eq!(bins.psi(), length_psi(&short, &long));
    assert_eq!(bins.old.iter().sum::<u64>(), 500);
    assert_eq!(bins.new.iter().sum::<u64>(), 500);
    assert_eq!(bins.old.len(), bins.cuts.len() + 1);
    assert!(bins.cuts.windows(2).all(|w| w[0] < w[1]), "{bins:?}");
    assert!(*bins.new.last().unwrap() > 250, "{bins:?}");
    let report = drift_report(&short, &long, None, &DriftConfig::default()).unwrap();
    assert_eq!(report.length_bins, bins);
    assert_eq!(report.vocab_bins, vocab_bins(&short, &long));
}

/// L2-normalised points around `centers`, each picked with equal probability.
fn clustered(centers: &[Vec<f32>], n: usize, noise: f32, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = SplitMix64::new(seed);
    (0..n)
        .map(|_| {
            let center = &centers[rng.below(centers.len())];
            let v: Vec<f32> = center
                .iter()
                .map(|c| c + noise * (rng.unit() as f32 * 2.0 - 1.0))
                .collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.into_iter().map(|x| x / norm).collect()
        })
        .collect()
}

fn centers(k: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = SplitMix64::new(seed);
    (0..k)
        .map(|_| (0..dim).map(|_| rng.unit() as f32 * 2.0 - 1.0).collect())
        .collect()
}

#[test]
fn embedding_auc_separates_shifted_clusters_only() {
    let config = DriftConfig::default();
    let base = centers(4, 32, 1);
    let old = clustered(&base, 400, 0.5, 10);
    let same = clustered(&base, 400, 0.5, 11);
    let auc_same = domain_classifier_auc(&old, &same, 3).unwrap();
    assert!((auc_same - 0.5).abs() < 0.1, "{auc_same}");

    // The new documents come from topics the old catalog never had.
    let moved = centers(4, 32, 2);
    let shifted = clustered(&moved, 400, 0.5, 12);
    let auc_shifted = domain_classifier_auc(&old, &shifted, 3).unwrap();
    assert!(auc_shifted > config.embedding_auc, "{auc_shifted}");

    // Deterministic for a seed, and wired into the report with the threshold.
    assert_eq!(
        domain_classifier_auc(&old, &shifted, 3).unwrap(),
        auc_shifted
    );
    let texts = ["same text"; 3];
    let report = drift_report(&texts, &texts, Some((&old, &shifted)), &config).unwrap();
    assert!(
        report.drifted && report.flags[0].starts_with("embedding_auc"),
        "{report:?}"
    );
    let report = drift_report(&texts, &texts, Some((&old, &same)), &config).unwrap();
    assert!(!report.drifted, "{report:?}");
}

#[test]
fn embedding_input_errors_are_reported() {
    let few = vec![vec![1.0f32, 0.0]; 3];
    assert!(domain_classifier_auc(&few, &few, 1)
        .unwrap_err()
        .to_string()
        .contains("at least 5"));
    let a = vec![vec![1.0f32, 0.0]; 10];
    let b = vec![vec![1.0f32, 0.0, 0.0]; 10];
    assert!(domain_classifier_auc(&a, &b, 1)
        .unwrap_err()
        .to_string()
        .contains("dimensions"));
}
