//! The reading side's query path: which fragments a query needs, then its ranking.
//!
//! [`LexicalIndex::search`] is stateless: given the fragments at hand it either answers or
//! names the fragments it still needs, so the page can fetch them (async) and call again,
//! while the pipeline and the CLI, holding every fragment, get the answer in one call.

use crate::analyze::{ends_in_word, Analyzer, Word};
use crate::format::{Block, Entry, Fragment, Root};
use crate::LexicalError;
use std::collections::{BTreeSet, HashMap};

/// The last word of a query still being typed matches as a prefix once it has this many
/// chars.
pub const MIN_PREFIX_CHARS: usize = 2;
/// Words of at least this many chars are matched with one typo when they match nothing.
pub const MIN_TYPO_CHARS: usize = 5;
/// A prefix reads at most this many dictionary fragments (a short prefix of a large
/// vocabulary would otherwise read many).
const MAX_PREFIX_FRAGMENTS: usize = 4;
/// The most frequent completions of a prefix kept, and corrections of a typo.
const MAX_COMPLETIONS: usize = 16;
const MAX_CORRECTIONS: usize = 4;
/// Impact multipliers, in fifths so that scores stay integers (identical in every build):
/// an exact term counts 5/5, a completion or a correction 4/5.
const EXACT: u32 = 5;
const EXPANDED: u32 = 4;

/// One ranked document.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    pub doc: u32,
    /// Approximately the document's BM25F score for the query.
    pub score: f32,
}

/// A query's answer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Matches {
    /// Best first (ties by ordinal), at most `k`.
    pub hits: Vec<Hit>,
    /// The index terms that matched (exact, completed or corrected), for highlighting.
    pub terms: Vec<String>,
}

/// [`LexicalIndex::search`]'s outcome.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Done(Matches),
    /// Fetch these fragments (by number) and search again.
    Need(Vec<usize>),
}

/// A parsed root with its analyser: what a page holds before any query.
#[derive(Debug)]
pub struct LexicalIndex {
    root: Root,
    analyzer: Analyzer,
    /// The postings budget searches run with: the root's, unless set for a measurement.
    budget: u32,
}

/// How one query word is looked up.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Plan {
    /// The index term, unless the word is a stop word.
    exact: Option<String>,
    /// Prefixes to complete (the last word while typed).
    prefixes: Vec<String>,
    /// The term to correct when nothing else matches.
    typo: Option<String>,
}

impl LexicalIndex {
    pub fn from_root(bytes: &[u8], file: &str) -> Result<Self, LexicalError> {
        let root = Root::from_bytes(bytes, file)?;
        let analyzer = Analyzer::new(&root.meta.analysis).map_err(|e| LexicalError::Invalid {
            file: file.to_string(),
            message: e.to_string(),
        })?;
        let budget = root.meta.budget;
        Ok(Self {
            root,
            analyzer,
            budget,
        })
    }

    /// The same index searched with another postings budget (`u32::MAX`: every block), to
    /// measure what the root's budget costs in ranking and saves in bytes.
    pub fn with_budget(mut self, budget: u32) -> Self {
        self.budget = budget;
        self
    }

    pub fn root(&self) -> &Root {
        &self.root
    }

    pub fn fragments(&self) -> usize {
        self.root.fragments()
    }

    pub fn documents(&self) -> u32 {
        self.root.meta.documents
    }

    /// Parses fragment `number`; `file` names it in errors.
    pub fn fragment(
        &self,
        number: usize,
        bytes: &[u8],
        file: &str,
    ) -> Result<Fragment, LexicalError> {
        if number >= self.fragments() {
            return Err(LexicalError::Invalid {
                file: file.to_string(),
                message: format!("fragment {number} of {}", self.fragments()),
            });
        }
        Fragment::from_bytes(bytes, &self.root, number, file)
    }

    fn plans(&self, text: &str) -> BTreeSet<Plan> {
        let words: Vec<Word> = self.analyzer.words(text);
        let open = ends_in_word(text);
        let last = words.len().saturating_sub(1);
        let mut plans = BTreeSet::new();
        for (i, w) in words.into_iter().enumerate() {
            let typing = open && i == last;
            let mut prefixes = Vec::new();
            if typing && w.folded.chars().count() >= MIN_PREFIX_CHARS {
                prefixes.push(w.folded.clone());
                if !w.folded.starts_with(&w.term) && !w.term.is_empty() {
                    prefixes.push(w.term.clone());
                }
            }
            if w.stop && prefixes.is_empty() {
                continue;
            }
            let typo =
                (w.folded.chars().count() >= MIN_TYPO_CHARS && !w.stop).then(|| w.term.clone());
            plans.insert(Plan {
                exact: (!w.stop && !w.term.is_empty()).then_some(w.term),
                prefixes,
                typo,
            });
        }
        plans
    }

    /// The dictionary fragment that would hold `term`.
    fn dict_for(&self, term: &str) -> Option<usize> {
        self.root
            .dict
            .keys
            .partition_point(|first| first <= term)
            .checked_sub(1)
    }

    fn prefix_fragments(&self, prefix: &str) -> std::ops::Range<usize> {
        let start = self.dict_for(prefix).unwrap_or(0);
        let mut end = start + 1;
        while end < self.root.dict.len()
            && end - start < MAX_PREFIX_FRAGMENTS
            && self.root.dict.keys.get(end).starts_with(prefix)
        {
            end += 1;
        }
        start..end.min(self.root.dict.len())
    }

    fn typo_for(&self, key: &str) -> Option<usize> {
        self.root
            .typo
            .partition_point(|first| first <= key)
            .checked_sub(1)
            .map(|j| self.root.dict.len() + j)
    }

    fn dict_of_ordinal(&self, ordinal: u32) -> Option<usize> {
        self.root
            .dict
            .ordinals
            .partition_point(|o| *o <= ordinal)
            .checked_sub(1)
    }

    /// Ranks the documents for `text` (the top `k`), or names the fragments still needed.
    /// `loaded(n)` gives fragment `n` where it is at hand.
    pub fn search<'f>(
        &self,
        text: &str,
        k: usize,
        loaded: &dyn Fn(usize) -> Option<&'f Fragment>,
    ) -> Result<Outcome, LexicalError> {
        let plans = self.plans(text);
        if plans.is_empty() || self.root.dict.is_empty() {
            return Ok(Outcome::Done(Matches::default()));
        }
        // Round one: the dictionary fragments of every term and prefix.
        let mut need = BTreeSet::new();
        for p in &plans {
            need.extend(p.exact.as_deref().and_then(|t| self.dict_for(t)));
            for prefix in &p.prefixes {
                need.extend(self.prefix_fragments(prefix));
            }
        }
        if let Some(missing) = missing(&need, loaded) {
            return Ok(Outcome::Need(missing));
        }
        let dict = |n: usize| -> &'f [Entry] {
            match loaded(n) {
                Some(Fragment::Dict(e)) => e.as_slice(),
                _ => &[],
            }
        };
        let find = |term: &str| -> Option<&'f Entry> {
            let entries = dict(self.dict_for(term)?);
            let i = entries
                .binary_search_by(|e| e.term.as_str().cmp(term))
                .ok()?;
            Some(&entries[i])
        };

        let mut chosen: Vec<Vec<(&Entry, u32)>> = Vec::with_capacity(plans.len());
        for p in &plans {
            let mut terms: Vec<(&Entry, u32)> = Vec::new();
            if let Some(e) = p.exact.as_deref().and_then(find) {
                terms.push((e, EXACT));
            }
            let mut completions: Vec<&Entry> = Vec::new();
            for prefix in &p.prefixes {
                for n in self.prefix_fragments(prefix) {
                    completions.extend(
                        dict(n)
                            .iter()
                            .filter(|e| e.term.starts_with(prefix.as_str())),
                    );
                }
            }
            completions.retain(|e| Some(&e.term) != p.exact.as_ref());
            completions.sort_by(|a, b| b.df.cmp(&a.df).then(a.term.cmp(&b.term)));
            completions.dedup_by(|a, b| a.term == b.term);
            terms.extend(
                completions
                    .into_iter()
                    .take(MAX_COMPLETIONS)
                    .map(|e| (e, EXPANDED)),
            );
            chosen.push(terms);
        }

        // Rounds two and three, only for words that matched nothing: their typo keys, then
        // the dictionary fragments of the terms those keys name.
        let mut need = BTreeSet::new();
        let typos: Vec<(usize, &str)> = plans
            .iter()
            .enumerate()
            .filter(|(i, _)| chosen[*i].is_empty())
            .filter_map(|(i, p)| Some((i, p.typo.as_deref()?)))
            .collect();
        for (_, term) in &typos {
            need.extend(typo_keys(term).iter().filter_map(|k| self.typo_for(k)));
        }
        if let Some(missing) = missing(&need, loaded) {
            return Ok(Outcome::Need(missing));
        }
        let mut corrections: Vec<(usize, &str, BTreeSet<u32>)> = Vec::new();
        for (i, term) in typos {
            let mut ordinals = BTreeSet::new();
            for key in typo_keys(term) {
                let Some(Fragment::Typo(entries)) = self.typo_for(&key).and_then(loaded) else {
                    continue;
                };
                if let Ok(j) = entries.binary_search_by(|e| e.key.as_str().cmp(&key)) {
                    ordinals.extend(entries[j].ordinals.iter().copied());
                }
            }
            corrections.push((i, term, ordinals));
        }
        let need: BTreeSet<usize> = corrections
            .iter()
            .flat_map(|(_, _, o)| o.iter().filter_map(|&o| self.dict_of_ordinal(o)))
            .collect();
        if let Some(missing) = missing(&need, loaded) {
            return Ok(Outcome::Need(missing));
        }
        for (i, term, ordinals) in corrections {
            let mut found: Vec<&Entry> = ordinals
                .into_iter()
                .filter_map(|o| {
                    let n = self.dict_of_ordinal(o)?;
                    let start = self.root.dict.ordinals[n];
                    dict(n).get((o - start) as usize)
                })
                .filter(|e| within_one_edit(term, &e.term))
                .collect();
            found.sort_by(|a, b| b.df.cmp(&a.df).then(a.term.cmp(&b.term)));
            chosen[i].extend(
                found
                    .into_iter()
                    .take(MAX_CORRECTIONS)
                    .map(|e| (e, EXPANDED)),
            );
        }

        // Last round: the postings blocks the budget reaches. Which ones depends only on the
        // dictionary entries (each block's bound and size), so a page fetches them all at
        // once and every reader, holding all blocks or some, reads the same postings.
        let scheduled = self.schedule(&chosen);
        let need: BTreeSet<usize> = scheduled
            .iter()
            .map(|&(w, t, b)| chosen[w][t].0.blocks[b].fragment)
            .collect();
        if let Some(missing) = missing(&need, loaded) {
            return Ok(Outcome::Need(missing));
        }
        let mut read: Vec<Vec<Vec<&'f Block>>> =
            chosen.iter().map(|w| vec![Vec::new(); w.len()]).collect();
        for (w, t, b) in scheduled {
            let entry = chosen[w][t].0;
            let r = entry.blocks[b];
            let block = match loaded(r.fragment) {
                Some(Fragment::Postings(block)) => block,
                _ => return Err(bad_block(r.fragment, "is not a postings block")),
            };
            let postings: usize = block.segments.iter().map(|s| s.1.len()).sum();
            if block.ordinal != entry.ordinal
                || block.segments[0].0 != r.max_impact
                || postings != r.postings as usize
            {
                return Err(bad_block(
                    r.fragment,
                    &format!("does not continue the postings of {:?}", entry.term),
                ));
            }
            read[w][t].push(block);
        }
        Ok(Outcome::Done(self.rank(&chosen, &read, k)))
    }

    /// The blocks a query reads, as (word, term, block) indices: highest weighted bound
    /// first (ties by position), while fewer than the budget's postings have been read. Each
    /// term's blocks are taken in order, since their bounds never rise.
    fn schedule(&self, chosen: &[Vec<(&Entry, u32)>]) -> Vec<(usize, usize, usize)> {
        let mut all: Vec<(u32, (usize, usize, usize))> = Vec::new();
        for (w, word) in chosen.iter().enumerate() {
            for (t, (entry, weight)) in word.iter().enumerate() {
                for (b, r) in entry.blocks.iter().enumerate() {
                    all.push((u32::from(r.max_impact) * weight, (w, t, b)));
                }
            }
        }
        all.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut used: u64 = 0;
        let mut out = Vec::new();
        for (_, (w, t, b)) in all {
            if used >= u64::from(self.budget) {
                break;
            }
            used += u64::from(chosen[w][t].0.blocks[b].postings);
            out.push((w, t, b));
        }
        out
    }

    /// Sums, over the query's words, each document's best weighted impact for the word,
    /// from each term's head and the blocks `read` of it.
    fn rank(&self, chosen: &[Vec<(&Entry, u32)>], read: &[Vec<Vec<&Block>>], k: usize) -> Matches {
        let mut total: HashMap<u32, u32> = HashMap::new();
        let mut best: HashMap<u32, u32> = HashMap::new();
        let mut terms = Vec::new();
        for (word, blocks) in chosen.iter().zip(read) {
            best.clear();
            for ((entry, weight), blocks) in word.iter().zip(blocks) {
                terms.push(entry.term.clone());
                let segments = entry
                    .segments
                    .iter()
                    .chain(blocks.iter().flat_map(|b| &b.segments));
                for (impact, docs) in segments {
                    let s = u32::from(*impact) * weight;
                    for &d in docs {
                        let b = best.entry(d).or_default();
                        *b = (*b).max(s);
                    }
                }
            }
            for (&d, &s) in &best {
                *total.entry(d).or_default() += s;
            }
        }
        let mut ranked: Vec<(u32, u32)> = total.into_iter().collect();
        ranked.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked.truncate(k);
        let unit = self.root.meta.max_score / (255 * EXACT) as f32;
        terms.sort();
        terms.dedup();
        Matches {
            hits: ranked
                .into_iter()
                .map(|(doc, s)| Hit {
                    doc,
                    score: s as f32 * unit,
                })
                .collect(),
            terms,
        }
    }
}

fn bad_block(fragment: usize, why: &str) -> LexicalError {
    LexicalError::Invalid {
        file: format!("lexical fragment {fragment}"),
        message: why.to_string(),
    }
}

fn missing<'f>(
    need: &BTreeSet<usize>,
    loaded: &dyn Fn(usize) -> Option<&'f Fragment>,
) -> Option<Vec<usize>> {
    let m: Vec<usize> = need
        .iter()
        .copied()
        .filter(|&n| loaded(n).is_none())
        .collect();
    (!m.is_empty()).then_some(m)
}

/// A term and each of its one-char deletions: two words within one edit (insertion,
/// deletion, substitution or adjacent swap) share at least one such key.
pub fn typo_keys(term: &str) -> Vec<String> {
    let chars: Vec<char> = term.chars().collect();
    let mut keys = vec![term.to_string()];
    for i in 0..chars.len() {
        let k: String = chars[..i].iter().chain(&chars[i + 1..]).collect();
        keys.push(k);
    }
    keys.sort();
    keys.dedup();
    keys
}

/// Damerau–Levenshtein distance (adjacent swaps) of at most one.
pub fn within_one_edit(a: &str, b: &str) -> bool {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let (short, long) = if a.len() <= b.len() {
        (&a, &b)
    } else {
        (&b, &a)
    };
    match long.len() - short.len() {
        0 => {
            let diff: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
            match diff.as_slice() {
                [] | [_] => true,
                [i, j] => *j == i + 1 && a[*i] == b[*j] && a[*j] == b[*i],
                _ => false,
            }
        }
        1 => {
            let i = (0..short.len())
                .find(|&i| short[i] != long[i])
                .unwrap_or(short.len());
            short[i..] == long[i + 1..]
        }
        _ => false,
    }
}

/// Fragments of an index, parsed: every one for the pipeline and the CLI, those fetched so
/// far for a page. Kept by number in a map, so a root's fragment count sizes nothing.
#[derive(Debug, Default)]
pub struct Loaded {
    fragments: usize,
    parts: HashMap<usize, Fragment>,
}

impl Loaded {
    pub fn new(fragments: usize) -> Self {
        Self {
            fragments,
            parts: HashMap::new(),
        }
    }

    /// Keeps fragment `number` (one beyond the index's count is ignored).
    pub fn insert(&mut self, number: usize, fragment: Fragment) {
        if number < self.fragments {
            self.parts.insert(number, fragment);
        }
    }

    pub fn contains(&self, number: usize) -> bool {
        self.parts.contains_key(&number)
    }

    pub fn get(&self, number: usize) -> Option<&Fragment> {
        self.parts.get(&number)
    }

    /// Searches with what is loaded; a fragment still missing is an error naming it.
    pub fn search(
        &self,
        index: &LexicalIndex,
        text: &str,
        k: usize,
    ) -> Result<Matches, LexicalError> {
        match index.search(text, k, &|n| self.get(n))? {
            Outcome::Done(m) => Ok(m),
            Outcome::Need(n) => Err(LexicalError::Missing(n)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_edit_means_one_insertion_deletion_substitution_or_swap() {
        for (a, b) in [
            ("quality", "quality"),
            ("quality", "qualty"),
            ("quality", "qualitty"),
            ("quality", "qualiky"),
            ("quality", "qaulity"),
            ("quality", "uality"),
        ] {
            assert!(within_one_edit(a, b) && within_one_edit(b, a), "{a} {b}");
        }
        for (a, b) in [
            ("quality", "qualtiy1"),
            ("quality", "qalty"),
            ("xab", "aby"),
        ] {
            assert!(!within_one_edit(a, b), "{a} {b}");
        }
    }

    #[test]
    fn words_one_edit_apart_share_a_typo_key() {
        for (a, b) in [
            ("quality", "qualty"),
            ("quality", "qaulity"),
            ("quality", "qualiky"),
        ] {
            let ka = typo_keys(a);
            assert!(typo_keys(b).iter().any(|k| ka.contains(k)), "{a} {b}");
        }
    }
}
