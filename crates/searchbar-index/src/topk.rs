//! Bounded top-k selection with a deterministic order: score descending,
//! then doc ordinal ascending. A max-heap keyed on "worseness" keeps the
//! current worst candidate at the root, so each push is O(log k) and a full
//! scan never holds more than `k` entries.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// One search result: a doc ordinal and its similarity (inner product).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// Document ordinal (position in the corpus the index was built from).
    pub doc: u32,
    /// Inner-product score; higher is more similar.
    pub score: f32,
}

/// Ranking order: `a < b` means `a` ranks before `b`. `total_cmp` keeps the
/// order total even for non-finite scores (which validated inputs never produce).
pub(crate) fn rank_cmp(a: &Hit, b: &Hit) -> Ordering {
    b.score.total_cmp(&a.score).then(a.doc.cmp(&b.doc))
}

/// Heap entry ordered by [`rank_cmp`], so the heap's maximum is the worst hit.
#[derive(Debug, Clone, Copy)]
struct Worst(Hit);

impl PartialEq for Worst {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Worst {}
impl PartialOrd for Worst {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Worst {
    fn cmp(&self, other: &Self) -> Ordering {
        rank_cmp(&self.0, &other.0)
    }
}

/// Keeps the best `cap` hits seen so far.
#[derive(Debug)]
pub(crate) struct TopK {
    cap: usize,
    heap: BinaryHeap<Worst>,
}

impl TopK {
    /// `cap` must already be clamped by the caller to at most the corpus size,
    /// so the pre-allocation is bounded by data the index actually holds.
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            cap,
            heap: BinaryHeap::with_capacity(cap.saturating_add(1)),
        }
    }

    /// Offers a candidate; cheap rejection when it cannot enter.
    #[inline]
    pub(crate) fn push(&mut self, doc: u32, score: f32) {
        if self.cap == 0 {
            return;
        }
        let hit = Worst(Hit { doc, score });
        if self.heap.len() < self.cap {
            self.heap.push(hit);
        } else if let Some(mut worst) = self.heap.peek_mut() {
            if hit < *worst {
                *worst = hit;
            }
        }
    }

    /// Hits, best first.
    pub(crate) fn into_sorted(self) -> Vec<Hit> {
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|w| w.0)
            .collect()
    }
}

/// Selects the best `k` of `hits` (deterministic order), in place.
pub(crate) fn sort_truncate(hits: &mut Vec<Hit>, k: usize) {
    hits.sort_unstable_by(rank_cmp);
    hits.truncate(k);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_best_with_tie_break_on_doc() {
        let mut t = TopK::new(3);
        for (doc, score) in [(5, 0.5), (1, 0.9), (2, 0.5), (9, 0.1), (0, 0.5), (3, 0.9)] {
            t.push(doc, score);
        }
        let got: Vec<(u32, f32)> = t.into_sorted().iter().map(|h| (h.doc, h.score)).collect();
        assert_eq!(got, vec![(1, 0.9), (3, 0.9), (0, 0.5)]);
    }

    #[test]
    fn zero_cap_is_empty() {
        let mut t = TopK::new(0);
        t.push(1, 1.0);
        assert!(t.into_sorted().is_empty());
    }
}
