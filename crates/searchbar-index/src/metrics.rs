//! Retrieval metrics shared by the pipeline's evaluation and the browser.
//!
//! Definitions follow trec_eval as used by BEIR through pytrec_eval:
//! - **nDCG@k**: gain is the judged grade itself (linear, *not* `2^rel - 1`),
//!   discount `log2(rank + 1)` with 1-based rank, only grades `> 0` add gain;
//!   the ideal DCG sorts all judged grades of the query descending and cuts
//!   at `k`. nDCG is 0 when the query has no positive judgment.
//! - **MRR@k**: `1 / rank` of the first result with grade `> 0`, else 0.
//! - **Recall@k**: relevant (grade `> 0`) docs in the top `k`, divided by
//!   all relevant docs of the query (0 when there are none, as trec_eval).
//!
//! Results are evaluated in the order given. trec_eval re-sorts a run by
//! score (ties by doc id, descending); the two agree when scores are distinct.

use crate::qrels::{Judgments, Qrels};
use std::collections::{BTreeMap, HashSet};
use std::hash::Hash;

/// Fraction of the exact top-`k` that the approximate top-`k` recovers:
/// `|approx[..k] ∩ exact[..k]| / min(k, exact.len())` (1 when that is 0).
/// Used to compare an ANN index against exact search.
pub fn recall_at_k<T: Eq + Hash>(approx: &[T], exact: &[T], k: usize) -> f64 {
    let mut truth: HashSet<&T> = exact.iter().take(k).collect();
    let denom = truth.len();
    if denom == 0 {
        return 1.0;
    }
    // Removing on match counts a duplicated approx result once.
    let found = approx.iter().take(k).filter(|d| truth.remove(d)).count();
    found as f64 / denom as f64
}

fn grade<S: AsRef<str>>(judged: &Judgments, doc: &S) -> i32 {
    judged.get(doc.as_ref()).copied().unwrap_or(0)
}

/// nDCG@k of a ranked list of corpus ids (see module docs for the formula).
pub fn ndcg_at_k<S: AsRef<str>>(ranked: &[S], judged: &Judgments, k: usize) -> f64 {
    let discount = |i: usize| ((i + 2) as f64).log2(); // rank i+1 -> log2(rank + 1)
    let dcg: f64 = ranked
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, d)| f64::from(grade(judged, d).max(0)) / discount(i))
        .sum();
    let mut ideal: Vec<i32> = judged.values().copied().filter(|&g| g > 0).collect();
    ideal.sort_unstable_by(|a, b| b.cmp(a));
    let idcg: f64 = ideal
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, &g)| f64::from(g) / discount(i))
        .sum();
    if idcg > 0.0 {
        dcg / idcg
    } else {
        0.0
    }
}

/// Reciprocal rank of the first relevant (grade > 0) result within the top `k`.
pub fn mrr_at_k<S: AsRef<str>>(ranked: &[S], judged: &Judgments, k: usize) -> f64 {
    ranked
        .iter()
        .take(k)
        .position(|d| grade(judged, d) > 0)
        .map_or(0.0, |i| 1.0 / (i + 1) as f64)
}

/// Share of the relevant (grade > 0) docs found in the top `k`.
pub fn relevant_recall_at_k<S: AsRef<str>>(ranked: &[S], judged: &Judgments, k: usize) -> f64 {
    let relevant = judged.values().filter(|&&g| g > 0).count();
    if relevant == 0 {
        return 0.0;
    }
    let mut seen: HashSet<&str> = HashSet::new();
    let found = ranked
        .iter()
        .take(k)
        .map(AsRef::as_ref)
        .filter(|&d| grade(judged, &d) > 0 && seen.insert(d))
        .count();
    found as f64 / relevant as f64
}

/// Mean metrics over a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Queries present in both the run and the judgments (the averages' denominator).
    pub queries: usize,
    /// Judged queries with no entry in the run (not averaged, as in BEIR).
    pub missing_from_run: usize,
    /// Mean nDCG@10.
    pub ndcg_at_10: f64,
    /// Mean MRR@10.
    pub mrr_at_10: f64,
    /// Mean Recall@100.
    pub recall_at_100: f64,
}

/// Averages nDCG@10, MRR@10 and Recall@100 over the queries that are both
/// judged and in `run` (query id -> ranked corpus ids), which is what BEIR
/// reports (pytrec_eval only scores run queries that have judgments).
pub fn evaluate<S: AsRef<str>>(run: &BTreeMap<String, Vec<S>>, qrels: &Qrels) -> Summary {
    let mut s = Summary {
        queries: 0,
        missing_from_run: 0,
        ndcg_at_10: 0.0,
        mrr_at_10: 0.0,
        recall_at_100: 0.0,
    };
    for (query, judged) in qrels {
        let Some(ranked) = run.get(query) else {
            s.missing_from_run += 1;
            continue;
        };
        s.queries += 1;
        s.ndcg_at_10 += ndcg_at_k(ranked, judged, 10);
        s.mrr_at_10 += mrr_at_k(ranked, judged, 10);
        s.recall_at_100 += relevant_recall_at_k(ranked, judged, 100);
    }
    if s.queries > 0 {
        let n = s.queries as f64;
        s.ndcg_at_10 /= n;
        s.mrr_at_10 /= n;
        s.recall_at_100 /= n;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judged(pairs: &[(&str, i32)]) -> Judgments {
        pairs.iter().map(|&(d, g)| (d.to_owned(), g)).collect()
    }

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-9, "{a} != {b}");
    }

    #[test]
    fn ndcg_hand_computed() {
        // Judgments: a=3, b=2, c=0, e=1 (d unjudged).
        // Ranking [c, a, d, b]:
        //   DCG  = 0/log2(2) + 3/log2(3) + 0/log2(4) + 2/log2(5)
        //        = 0 + 1.8927892607 + 0 + 0.8613531161 = 2.7541423769
        //   IDCG = 3/log2(2) + 2/log2(3) + 1/log2(4)
        //        = 3 + 1.2618595071 + 0.5 = 4.7618595071
        //   nDCG = 2.7541423769 / 4.7618595071 = 0.5783753957
        let j = judged(&[("a", 3), ("b", 2), ("c", 0), ("e", 1)]);
        let dcg = 3.0 / 3f64.log2() + 2.0 / 5f64.log2();
        let idcg = 3.0 + 2.0 / 3f64.log2() + 0.5;
        close(ndcg_at_k(&["c", "a", "d", "b"], &j, 10), dcg / idcg);
        close(dcg / idcg, 0.578_375_395_7);
        // Cut at k = 1: DCG = 0 (c), so nDCG@1 = 0; perfect order gives 1.
        close(ndcg_at_k(&["c", "a"], &j, 1), 0.0);
        close(ndcg_at_k(&["a", "b", "e"], &j, 10), 1.0);
        // Linear gain, not 2^rel - 1: [b, a] with a=3, b=2:
        //   DCG = 2 + 3/log2(3) = 3.8927892607, IDCG(k=2) = 3 + 2/log2(3) = 4.2618595071
        //   nDCG@2 = 0.9134015925 (exponential gain 2^rel - 1 would give 0.8339912324)
        close(ndcg_at_k(&["b", "a"], &j, 2), 0.913_401_592_5);
        // No positive judgment: 0.
        close(ndcg_at_k(&["c"], &judged(&[("c", 0)]), 10), 0.0);
    }

    #[test]
    fn mrr_hand_computed() {
        let j = judged(&[("a", 1), ("b", 0)]);
        // First relevant at rank 3 -> 1/3.
        close(mrr_at_k(&["b", "x", "a"], &j, 10), 1.0 / 3.0);
        // Outside the cut -> 0.
        close(mrr_at_k(&["b", "x", "a"], &j, 2), 0.0);
    }

    #[test]
    fn relevant_recall_hand_computed() {
        // 3 relevant (a, b, c; d has grade 0). Top-2 of [a, d, b] holds a -> 1/3;
        // top-100 holds a and b -> 2/3. A duplicate does not count twice.
        let j = judged(&[("a", 1), ("b", 2), ("c", 1), ("d", 0)]);
        close(relevant_recall_at_k(&["a", "d", "b"], &j, 2), 1.0 / 3.0);
        close(
            relevant_recall_at_k(&["a", "d", "b", "a"], &j, 100),
            2.0 / 3.0,
        );
        close(relevant_recall_at_k(&["a"], &judged(&[("a", 0)]), 100), 0.0);
    }

    #[test]
    fn ann_recall_hand_computed() {
        // exact top-3 {1, 2, 3}; approx top-3 [1, 3, 9] recovers 2 of 3.
        close(recall_at_k(&[1, 3, 9, 2], &[1, 2, 3, 4], 3), 2.0 / 3.0);
        // Fewer exact results than k: denominator is exact.len().
        close(recall_at_k(&[5, 5], &[5], 10), 1.0);
        close(recall_at_k::<u32>(&[], &[], 10), 1.0);
    }

    #[test]
    fn evaluate_averages_over_judged_run_queries() {
        // q1: ranking [a]: nDCG 1, MRR 1, R@100 1. q2: ranking [x]: all 0.
        // q3 is judged but not in the run; q4 is in the run but not judged.
        let mut qrels = Qrels::new();
        qrels.insert("q1".into(), judged(&[("a", 1)]));
        qrels.insert("q2".into(), judged(&[("b", 1)]));
        qrels.insert("q3".into(), judged(&[("c", 1)]));
        let run: BTreeMap<String, Vec<&str>> =
            [("q1", vec!["a"]), ("q2", vec!["x"]), ("q4", vec!["a"])]
                .into_iter()
                .map(|(q, r)| (q.to_owned(), r))
                .collect();
        let s = evaluate(&run, &qrels);
        assert_eq!((s.queries, s.missing_from_run), (2, 1));
        close(s.ndcg_at_10, 0.5);
        close(s.mrr_at_10, 0.5);
        close(s.recall_at_100, 0.5);
    }
}
