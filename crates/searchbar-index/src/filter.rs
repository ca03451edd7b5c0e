//! Doc-ordinal allow-list, a plain bitset: one bit test per candidate.

/// Set of doc ordinals a search may return. Docs not in the set are skipped
/// during the scan (so `k` results are still returned when enough allowed
/// docs are reachable).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    words: Vec<u64>,
}

impl AllowList {
    /// An empty list (allows nothing), with room for ordinals `< n_docs`.
    pub fn new(n_docs: usize) -> Self {
        Self {
            words: vec![0; n_docs.div_ceil(64)],
        }
    }

    /// A list allowing every ordinal `< n_docs`.
    pub fn all(n_docs: usize) -> Self {
        let mut list = Self {
            words: vec![u64::MAX; n_docs.div_ceil(64)],
        };
        if !n_docs.is_multiple_of(64) {
            if let Some(last) = list.words.last_mut() {
                *last = (1u64 << (n_docs % 64)) - 1;
            }
        }
        list
    }

    /// Allows `doc`, growing the set as needed.
    pub fn insert(&mut self, doc: u32) {
        let w = (doc / 64) as usize;
        if w >= self.words.len() {
            self.words.resize(w + 1, 0);
        }
        self.words[w] |= 1 << (doc % 64);
    }

    /// Disallows `doc`.
    pub fn remove(&mut self, doc: u32) {
        if let Some(word) = self.words.get_mut((doc / 64) as usize) {
            *word &= !(1 << (doc % 64));
        }
    }

    /// Whether `doc` is allowed (ordinals beyond the set are not).
    #[inline]
    pub fn contains(&self, doc: u32) -> bool {
        self.words
            .get((doc / 64) as usize)
            .is_some_and(|w| w & (1 << (doc % 64)) != 0)
    }

    /// Number of allowed ordinals.
    pub fn count(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }
}

impl FromIterator<u32> for AllowList {
    fn from_iter<I: IntoIterator<Item = u32>>(iter: I) -> Self {
        let mut list = Self::default();
        for doc in iter {
            list.insert(doc);
        }
        list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_ops() {
        let mut a = AllowList::new(10);
        assert!(!a.contains(3));
        a.insert(3);
        a.insert(200);
        assert!(a.contains(3) && a.contains(200) && !a.contains(199));
        a.remove(3);
        assert!(!a.contains(3));
        assert_eq!(AllowList::all(65).count(), 65);
        assert!(!AllowList::all(65).contains(65));
        let b: AllowList = [1u32, 2, 2].into_iter().collect();
        assert_eq!(b.count(), 2);
    }
}
