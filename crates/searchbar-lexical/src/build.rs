//! The writing side: documents in, a root and its fragments out.
//!
//! Scores are BM25F (Robertson and Zaragoza's form: field term frequencies, each normalised
//! by its field's length and weighted, summed before the saturation), computed once here and
//! stored per posting as an 8-bit impact. A query then only adds impacts: no document
//! lengths, no floating point that could differ between the pipeline and the page.

use crate::analyze::{Analysis, Analyzer};
use crate::format::{Block, BlockRef, DictChunks, Entry, Fragment, Meta, Root, Segment, TypoEntry};
use crate::LexicalError;
use std::collections::HashMap;

/// Terms of at least this many chars get typo keys (a 5-letter query word one insertion away
/// from a 4-letter term must find it).
pub(crate) const TYPO_MIN_TERM_CHARS: usize = 4;

/// The default postings budget, chosen on SciFact's training queries (BENCHMARKS.md, "Lexical
/// index"): among a million documents, where their words' lists run to hundreds of thousands
/// of postings, they rank as well at 2,048 to 65,536 as with every block read, and at
/// SciFact's own size 4,096 leaves nearly every top 10 as it was (2,048 begins to change
/// them). About 20 KB of blocks a query at a million documents.
pub const DEFAULT_BUDGET: u32 = 4 * 1024;

/// How the index is built.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildConfig {
    pub analysis: Analysis,
    /// BM25 term-frequency saturation.
    pub k1: f32,
    /// BM25 length normalisation (0: none, 1: full).
    pub b: f32,
    /// A title occurrence counts this many body occurrences.
    pub title_weight: f32,
    pub text_weight: f32,
    /// A fragment is closed once it reaches this many bytes. A posting list longer than a
    /// quarter of it keeps only its head in line and the rest in blocks of about this size.
    pub fragment_bytes: usize,
    /// The most postings a query reads from those blocks, highest impacts first
    /// (docs/lexical-format.md, "Scoring").
    pub budget: u32,
}

impl Default for BuildConfig {
    fn default() -> Self {
        Self {
            analysis: Analysis::default(),
            k1: 0.9,
            b: 0.4,
            title_weight: 1.0,
            text_weight: 1.0,
            fragment_bytes: 4 * 1024,
            budget: DEFAULT_BUDGET,
        }
    }
}

impl BuildConfig {
    /// The first bad value, named by its key.
    pub fn check(&self) -> Result<(), LexicalError> {
        Analyzer::new(&self.analysis)?;
        let bad =
            |key: &str, v: f32, why: &str| Err(LexicalError::Config(format!("{key} = {v} {why}")));
        if !(self.k1.is_finite() && self.k1 > 0.0) {
            return bad("k1", self.k1, "must be above 0");
        }
        if !(0.0..=1.0).contains(&self.b) {
            return bad("b", self.b, "must be between 0 and 1");
        }
        for (key, v) in [
            ("title_weight", self.title_weight),
            ("text_weight", self.text_weight),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(key, v, "must be a number ≥ 0");
            }
        }
        if self.title_weight + self.text_weight <= 0.0 {
            return bad(
                "title_weight",
                self.title_weight,
                "and text_weight are both 0",
            );
        }
        if self.fragment_bytes < 256 {
            return Err(LexicalError::Config(format!(
                "fragment_bytes = {} must be at least 256",
                self.fragment_bytes
            )));
        }
        if self.budget == 0 {
            return Err(LexicalError::Config(
                "budget = 0 must be at least 1 posting".into(),
            ));
        }
        Ok(())
    }
}

/// A built index: the root, then the fragments in the order the root numbers them.
#[derive(Debug, Clone)]
pub struct Built {
    pub root: Vec<u8>,
    pub fragments: Vec<Vec<u8>>,
    pub terms: usize,
    pub postings: usize,
    /// Terms whose list continues in postings blocks.
    pub long_lists: usize,
}

/// Builds the index of `docs` (title, body), in index ordinal order.
pub fn build<'a>(
    cfg: &BuildConfig,
    docs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<Built, LexicalError> {
    cfg.check()?;
    let analyzer = Analyzer::new(&cfg.analysis)?;
    let mut ids: HashMap<String, u32> = HashMap::new();
    // Per term: (doc, title tf, body tf).
    let mut postings: Vec<Vec<(u32, u32, u32)>> = Vec::new();
    let mut lengths: Vec<(u32, u32)> = Vec::new();
    let mut local: HashMap<u32, (u32, u32)> = HashMap::new();
    for (doc, (title, text)) in docs.into_iter().enumerate() {
        let doc = u32::try_from(doc)
            .map_err(|_| LexicalError::Config("more than 2^32 documents".into()))?;
        local.clear();
        let mut len = (0u32, 0u32);
        for (field, t) in [(0, title), (1, text)] {
            for term in analyzer.terms(t) {
                let next = ids.len() as u32;
                let id = *ids.entry(term).or_insert(next);
                if id == next {
                    postings.push(Vec::new());
                }
                let tf = local.entry(id).or_default();
                if field == 0 {
                    tf.0 += 1;
                    len.0 += 1;
                } else {
                    tf.1 += 1;
                    len.1 += 1;
                }
            }
        }
        lengths.push(len);
        for (&id, &(a, b)) in &local {
            postings[id as usize].push((doc, a, b));
        }
    }
    let n = lengths.len();
    let avg = |f: fn(&(u32, u32)) -> u32| {
        let total: f64 = lengths.iter().map(|l| f64::from(f(l))).sum();
        (total / n.max(1) as f64).max(1e-9)
    };
    let (avg_title, avg_text) = (avg(|l| l.0), avg(|l| l.1));
    let (k1, b) = (f64::from(cfg.k1), f64::from(cfg.b));
    let norm = |len: u32, avg: f64| 1.0 - b + b * f64::from(len) / avg;
    let mut scored: Vec<Vec<(u32, f64)>> = Vec::with_capacity(postings.len());
    let mut max_score = 0f64;
    for list in &postings {
        let df = list.len() as f64;
        let idf = (1.0 + (n as f64 - df + 0.5) / (df + 0.5)).ln();
        let s: Vec<(u32, f64)> = list
            .iter()
            .map(|&(doc, tt, tb)| {
                let (lt, lb) = lengths[doc as usize];
                let tf = f64::from(cfg.title_weight) * f64::from(tt) / norm(lt, avg_title)
                    + f64::from(cfg.text_weight) * f64::from(tb) / norm(lb, avg_text);
                let score = idf * tf / (k1 + tf);
                max_score = max_score.max(score);
                (doc, score)
            })
            .collect();
        scored.push(s);
    }
    let mut terms: Vec<(String, u32)> = ids.into_iter().collect();
    terms.sort_unstable();
    let total_postings: usize = postings.iter().map(Vec::len).sum();

    // Each list's head stays in line; a long list's tail goes to blocks, numbered once the
    // dictionary and typo chunks are counted.
    let mut entries = Vec::with_capacity(terms.len());
    let mut tails: Vec<Vec<Block>> = Vec::with_capacity(terms.len());
    for (ordinal, (term, id)) in terms.iter().enumerate() {
        let mut by_impact: Vec<(u8, u32)> = scored[*id as usize]
            .iter()
            .map(|&(doc, s)| (impact(s, max_score), doc))
            .collect();
        by_impact.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut parts = split_list(&by_impact, cfg.fragment_bytes).into_iter();
        let head = parts.next().map_or_else(Vec::new, segments);
        let tail: Vec<Block> = parts
            .map(|p| Block {
                ordinal: ordinal as u32,
                segments: segments(p),
            })
            .collect();
        entries.push(Entry {
            term: term.clone(),
            ordinal: ordinal as u32,
            df: postings[*id as usize].len() as u32,
            segments: head,
            blocks: Vec::new(),
        });
        tails.push(tail);
    }

    let mut keys: Vec<(String, u32)> = Vec::new();
    for (ordinal, (term, _)) in terms.iter().enumerate() {
        if term.chars().count() >= TYPO_MIN_TERM_CHARS {
            for key in crate::search::typo_keys(term) {
                keys.push((key, ordinal as u32));
            }
        }
    }
    keys.sort_unstable();
    keys.dedup();
    let mut typo: Vec<TypoEntry> = Vec::new();
    for (key, ordinal) in keys {
        match typo.last_mut() {
            Some(e) if e.key == key => e.ordinals.push(ordinal),
            _ => typo.push(TypoEntry {
                key,
                ordinals: vec![ordinal],
            }),
        }
    }

    let long = tails.iter().filter(|t| !t.is_empty()).count();
    let dict_chunks = chunk(entries, cfg.fragment_bytes, |e| {
        12 + e.term.len() + e.segments.iter().map(|s| 2 + s.1.len() * 2).sum::<usize>()
    });
    let typo_chunks = chunk(typo, cfg.fragment_bytes, |e| {
        3 + e.key.len() + e.ordinals.len() * 2
    });
    let mut next_block = dict_chunks.len() + typo_chunks.len();
    let mut dict_chunks = dict_chunks;
    for e in dict_chunks.iter_mut().flatten() {
        for b in &tails[e.ordinal as usize] {
            e.blocks.push(BlockRef {
                fragment: next_block,
                max_impact: b.segments[0].0,
                postings: b.segments.iter().map(|s| s.1.len() as u32).sum(),
            });
            next_block += 1;
        }
    }
    let blocks: Vec<Block> = tails.into_iter().flatten().collect();
    let root = Root {
        meta: Meta {
            analysis: cfg.analysis.clone(),
            documents: n as u32,
            k1: cfg.k1,
            b: cfg.b,
            title_weight: cfg.title_weight,
            text_weight: cfg.text_weight,
            max_score: max_score as f32,
            budget: cfg.budget,
        },
        dict: DictChunks {
            keys: dict_chunks.iter().map(|c| c[0].term.as_str()).collect(),
            ordinals: dict_chunks.iter().map(|c| c[0].ordinal).collect(),
        },
        typo: typo_chunks.iter().map(|c| c[0].key.as_str()).collect(),
        terms: terms.len() as u32,
        blocks: blocks.len() as u32,
    };
    let mut fragments = Vec::with_capacity(root.fragments());
    for c in dict_chunks {
        let number = fragments.len() as u32;
        fragments.push(Fragment::Dict(c).to_bytes(number));
    }
    for c in typo_chunks {
        let number = fragments.len() as u32;
        fragments.push(Fragment::Typo(c).to_bytes(number));
    }
    for b in blocks {
        let number = fragments.len() as u32;
        fragments.push(Fragment::Postings(b).to_bytes(number));
    }
    Ok(Built {
        root: root.to_bytes(),
        fragments,
        terms: terms.len(),
        postings: total_postings,
        long_lists: long,
    })
}

/// A score as an impact: 1..=255, proportional to the index's highest score.
fn impact(score: f64, max: f64) -> u8 {
    if max <= 0.0 {
        return 1;
    }
    (score / max * 255.0).round().clamp(1.0, 255.0) as u8
}

/// Impact-ordered postings as segments (one per impact, documents ascending).
fn segments(postings: &[(u8, u32)]) -> Vec<Segment> {
    let mut out: Vec<Segment> = Vec::new();
    for &(imp, doc) in postings {
        match out.last_mut() {
            Some((i, docs)) if *i == imp => docs.push(doc),
            _ => out.push((imp, vec![doc])),
        }
    }
    out
}

/// A list's encoded bytes up to each posting: a new segment costs its impact and count,
/// a posting its gap's varint.
fn encoded_sizes(postings: &[(u8, u32)]) -> impl Iterator<Item = usize> + '_ {
    let mut prev: Option<(u8, u32)> = None;
    postings.iter().map(move |&(imp, doc)| {
        let cost = match prev {
            Some((i, d)) if i == imp => varint_len(doc - d - 1),
            _ => 3 + varint_len(doc),
        };
        prev = Some((imp, doc));
        cost
    })
}

fn varint_len(v: u32) -> usize {
    (32 - v.max(1).leading_zeros() as usize).div_ceil(7)
}

/// Splits an impact-ordered list into its head and its blocks. A list of up to a quarter of
/// `fragment_bytes` stays whole in line; a longer one keeps a sixteenth in line, so that a
/// query's best postings of every term (a prefix completes to up to 16) come with the
/// dictionary, and the rest goes to blocks of about `fragment_bytes`.
fn split_list(postings: &[(u8, u32)], fragment_bytes: usize) -> Vec<&[(u8, u32)]> {
    let costs: Vec<usize> = encoded_sizes(postings).collect();
    if costs.iter().sum::<usize>() <= fragment_bytes / 4 {
        return vec![postings];
    }
    let mut parts = Vec::new();
    let (mut start, mut bytes, mut target) = (0, 0, fragment_bytes / 16);
    for (i, cost) in costs.into_iter().enumerate() {
        bytes += cost;
        if bytes >= target {
            parts.push(&postings[start..=i]);
            (start, bytes, target) = (i + 1, 0, fragment_bytes);
        }
    }
    if start < postings.len() {
        parts.push(&postings[start..]);
    }
    parts
}

/// Consecutive runs of about `target` (estimated) bytes, never empty.
fn chunk<T>(items: Vec<T>, target: usize, size: impl Fn(&T) -> usize) -> Vec<Vec<T>> {
    let mut out: Vec<Vec<T>> = Vec::new();
    let mut current: Vec<T> = Vec::new();
    let mut bytes = 0;
    for item in items {
        bytes += size(&item);
        current.push(item);
        if bytes >= target {
            out.push(std::mem::take(&mut current));
            bytes = 0;
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}
