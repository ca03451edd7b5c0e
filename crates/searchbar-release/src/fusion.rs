//! Hybrid ranking: how the dense and the lexical lists of one query become its results.
//!
//! One function, [`rank`], decides it for the pipeline's evaluation, `searchbar query` and the
//! page alike, so the gate judges the ranking users get. The convex combination of min-max
//! normalised scores is the default: Bruch, Gai and Ingber ("An Analysis of Fusion Functions
//! for Hybrid Retrieval", TOIS 2023) find it beats reciprocal rank fusion once its weight is
//! tuned on a few judged queries, which the pipeline does.

use serde::{Deserialize, Serialize};

/// Which lists a query is ranked from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SearchMode {
    /// Both lists, fused.
    #[default]
    Hybrid,
    Dense,
    Lexical,
}

impl SearchMode {
    pub const ALL: [SearchMode; 3] = [SearchMode::Lexical, SearchMode::Dense, SearchMode::Hybrid];

    /// The mode of a manifest written before hybrid search (serde's default there).
    pub fn dense() -> Self {
        SearchMode::Dense
    }

    pub fn name(self) -> &'static str {
        match self {
            SearchMode::Hybrid => "hybrid",
            SearchMode::Dense => "dense",
            SearchMode::Lexical => "lexical",
        }
    }

    pub fn uses_dense(self) -> bool {
        self != SearchMode::Lexical
    }

    pub fn uses_lexical(self) -> bool {
        self != SearchMode::Dense
    }
}

/// How the two lists of a hybrid query are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fusion {
    /// `alpha · dense + (1 − alpha) · lexical`, each min-max normalised over its own list.
    #[default]
    Convex,
    /// Reciprocal rank fusion: the sum of `1 / (RRF_K + rank)` (Cormack et al., 2009).
    Rrf,
}

/// RRF's rank offset, as in the paper that introduced it.
pub const RRF_K: f32 = 60.0;

/// How deep each list is read before fusion: a document ranked below this in both lists
/// cannot reach the top 10 of their fusion in practice, and 100 candidates is what the index
/// re-ranks anyway.
pub const FUSION_DEPTH: usize = 100;

/// Everything [`rank`] needs besides the lists (the manifest's `search` section).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ranking {
    pub mode: SearchMode,
    pub fusion: Fusion,
    /// Convex fusion's dense weight, 0..=1.
    pub alpha: f32,
    /// A query whose best dense hit scores below this is ranked by its words alone (and shows
    /// no results where it matches none) rather than by distances that rank noise.
    pub floor: Option<f32>,
}

/// The results of one query, best first (ties by document ordinal), at most `k`.
///
/// `dense` and `lexical` are (document, score) lists, best first; `None` is a list not
/// computed (a page whose encoder is still loading ranks by the lexical list alone, and a
/// hybrid query without the dense list is exactly that).
pub fn rank(
    r: &Ranking,
    dense: Option<&[(u32, f32)]>,
    lexical: Option<&[(u32, f32)]>,
    k: usize,
) -> Vec<(u32, f32)> {
    // A dense list whose best hit is below the floor is no evidence at all: a half-typed
    // word or a string of nonsense is still some distance from every document, and those
    // distances rank noise. Above it, the whole list counts (a relevant document may score
    // well below the best one).
    let dense: Option<Vec<(u32, f32)>> = dense.map(|d| match (r.floor, d.first()) {
        (Some(floor), Some(top)) if top.1 < floor => Vec::new(),
        _ => d.to_vec(),
    });
    let mut out = match (r.mode, dense, lexical) {
        (SearchMode::Lexical, _, Some(l)) | (SearchMode::Hybrid, None, Some(l)) => l.to_vec(),
        (SearchMode::Dense, Some(d), _) | (SearchMode::Hybrid, Some(d), None) => d,
        // One list empty: the other ranks alone, whatever its weight (a word being typed
        // is ranked by its completions even where alpha says dense counts most).
        (SearchMode::Hybrid, Some(d), Some(l)) if d.is_empty() => l.to_vec(),
        (SearchMode::Hybrid, Some(d), Some([])) => d,
        (SearchMode::Hybrid, Some(d), Some(l)) => match r.fusion {
            Fusion::Convex => convex(&d, l, r.alpha),
            Fusion::Rrf => rrf(&d, l),
        },
        _ => Vec::new(),
    };
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    out.truncate(k);
    out
}

/// Each list min-max normalised to 0..=1 over its own entries (a single entry, or all equal:
/// 1), then weighted and summed; a document absent from a list scores 0 there.
fn convex(dense: &[(u32, f32)], lexical: &[(u32, f32)], alpha: f32) -> Vec<(u32, f32)> {
    let mut sum: Vec<(u32, f32)> = Vec::with_capacity(dense.len() + lexical.len());
    for (list, weight) in [(dense, alpha), (lexical, 1.0 - alpha)] {
        let (lo, hi) = list
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), e| {
                (lo.min(e.1), hi.max(e.1))
            });
        for &(doc, s) in list {
            let norm = if hi > lo { (s - lo) / (hi - lo) } else { 1.0 };
            sum.push((doc, weight * norm));
        }
    }
    merge(sum)
}

fn rrf(dense: &[(u32, f32)], lexical: &[(u32, f32)]) -> Vec<(u32, f32)> {
    let mut sum = Vec::with_capacity(dense.len() + lexical.len());
    for list in [dense, lexical] {
        for (i, &(doc, _)) in list.iter().enumerate() {
            sum.push((doc, 1.0 / (RRF_K + i as f32 + 1.0)));
        }
    }
    merge(sum)
}

/// Adds the parts of each document, always dense part first (one order of additions, so
/// every build computes the same sums).
fn merge(mut parts: Vec<(u32, f32)>) -> Vec<(u32, f32)> {
    // Stable: a document's dense part stays before its lexical part.
    parts.sort_by_key(|p| p.0);
    let mut out: Vec<(u32, f32)> = Vec::with_capacity(parts.len());
    for (doc, s) in parts {
        match out.last_mut() {
            Some(last) if last.0 == doc => last.1 += s,
            _ => out.push((doc, s)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hybrid(alpha: f32, floor: Option<f32>) -> Ranking {
        Ranking {
            mode: SearchMode::Hybrid,
            fusion: Fusion::Convex,
            alpha,
            floor,
        }
    }

    const DENSE: &[(u32, f32)] = &[(1, 0.9), (2, 0.7), (3, 0.5)];
    const LEXICAL: &[(u32, f32)] = &[(3, 12.0), (4, 8.0), (1, 4.0)];

    #[test]
    fn alpha_moves_the_ranking_from_lexical_to_dense() {
        let docs = |r: Vec<(u32, f32)>| r.into_iter().map(|e| e.0).collect::<Vec<_>>();
        assert_eq!(
            docs(rank(&hybrid(1.0, None), Some(DENSE), Some(LEXICAL), 2)),
            [1, 2]
        );
        assert_eq!(
            docs(rank(&hybrid(0.0, None), Some(DENSE), Some(LEXICAL), 2)),
            [3, 4]
        );
        // Halfway: 1 is top of dense and last of lexical (0.5), 3 the reverse (0.5): the tie
        // goes to the lower ordinal; 2 (0.25) and 4 (0.25) the same.
        let mid = rank(&hybrid(0.5, None), Some(DENSE), Some(LEXICAL), 4);
        assert_eq!(docs(mid.clone()), [1, 3, 2, 4]);
        assert!((mid[0].1 - 0.5).abs() < 1e-6 && (mid[2].1 - 0.25).abs() < 1e-6);
    }

    #[test]
    fn rrf_sums_reciprocal_ranks() {
        let r = Ranking {
            fusion: Fusion::Rrf,
            ..hybrid(0.5, None)
        };
        let out = rank(&r, Some(DENSE), Some(LEXICAL), 10);
        // 1: ranks 1 and 3; 3: ranks 3 and 1: equal, so by ordinal.
        assert_eq!(out[0].0, 1);
        assert_eq!(out[1].0, 3);
        assert!((out[0].1 - (1.0 / 61.0 + 1.0 / 63.0)).abs() < 1e-7);
        assert_eq!(out.len(), 4);
    }

    #[test]
    fn a_dense_list_below_the_floor_does_not_count() {
        // Its best (0.9) is below: the words alone rank, with their own scores, even where
        // alpha gives them no weight.
        let out = rank(&hybrid(1.0, Some(0.95)), Some(DENSE), Some(LEXICAL), 10);
        assert_eq!(out, LEXICAL.to_vec());
        // Above it, every dense hit counts, the ones below the floor too.
        let out = rank(&hybrid(1.0, Some(0.6)), Some(DENSE), Some(LEXICAL), 10);
        assert_eq!(out[0], (1, 1.0));
        assert_eq!(out[1].0, 2);
    }

    #[test]
    fn the_floor_empties_a_query_that_matches_no_term_and_is_far_from_everything() {
        let weak: &[(u32, f32)] = &[(5, 0.2), (6, 0.1)];
        assert!(rank(&hybrid(0.5, Some(0.3)), Some(weak), Some(&[]), 10).is_empty());
        // A word match shows results whatever the dense score.
        assert_eq!(
            rank(&hybrid(0.5, Some(0.3)), Some(weak), Some(&[(6, 1.0)]), 10)[0].0,
            6
        );
        // A paraphrase (no word in common) close enough in meaning shows dense results.
        assert_eq!(
            rank(&hybrid(0.5, Some(0.3)), Some(DENSE), Some(&[]), 10).len(),
            3
        );
        let dense = Ranking {
            mode: SearchMode::Dense,
            ..hybrid(0.5, Some(0.3))
        };
        assert!(rank(&dense, Some(weak), None, 10).is_empty());
        assert_eq!(rank(&dense, Some(DENSE), None, 10).len(), 3);
    }

    #[test]
    fn without_the_dense_list_a_hybrid_query_ranks_by_words() {
        let out = rank(&hybrid(0.5, Some(0.3)), None, Some(LEXICAL), 10);
        assert_eq!(out, LEXICAL.to_vec());
        let lexical = Ranking {
            mode: SearchMode::Lexical,
            ..hybrid(0.5, None)
        };
        assert_eq!(rank(&lexical, Some(DENSE), Some(LEXICAL), 1), [(3, 12.0)]);
        assert!(rank(&lexical, Some(DENSE), None, 10).is_empty());
    }
}
