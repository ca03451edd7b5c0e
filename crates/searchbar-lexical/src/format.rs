//! The lexical index's files, both ways (docs/lexical-format.md is the spec): a small root
//! and fragments, each fetched only when a query needs it.
//!
//! Readers never trust a length: every count is checked against the bytes left before it
//! sizes anything, every varint is bounded, every key must be valid UTF-8 in strictly
//! ascending order, every document ordinal must be below the root's document count.

use crate::analyze::Analysis;
use crate::LexicalError;
use serde::{Deserialize, Serialize};

pub const ROOT_MAGIC: &[u8; 8] = b"SBLXROOT";
pub const FRAGMENT_MAGIC: &[u8; 8] = b"SBLXFRAG";
/// Version of the root and fragment layout this build writes. Readers also take version 1
/// (every posting list in line, no postings budget): a live release built before version 2
/// still answers `searchbar query`.
pub const FORMAT_VERSION: u32 = 2;
const OLDEST_VERSION: u32 = 1;

/// Scoring and matching settings, stored in the root so that every reader scores alike.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    pub analysis: Analysis,
    pub documents: u32,
    /// BM25F parameters the impacts were computed with (for the record).
    pub k1: f32,
    pub b: f32,
    pub title_weight: f32,
    pub text_weight: f32,
    /// Impact 255 is this BM25F score: impact × scale / 255 is a posting's score.
    pub max_score: f32,
    /// The most postings a query reads from out-of-line blocks (docs/lexical-format.md,
    /// "Scoring"); absent in version 1, whose lists are all in line.
    #[serde(default = "unlimited")]
    pub budget: u32,
}

fn unlimited() -> u32 {
    u32::MAX
}

/// The root: settings plus where each key range lives.
#[derive(Debug, Clone, PartialEq)]
pub struct Root {
    pub meta: Meta,
    /// Dictionary chunk `i` (fragment `i`): its first term (`keys`) and that term's ordinal.
    pub dict: DictChunks,
    /// Typo chunk `j` (fragment `dict.len() + j`): its first deletion key.
    pub typo: Keys,
    /// Terms in the dictionary.
    pub terms: u32,
    /// Postings blocks (fragments `dict.len() + typo.len()` onwards).
    pub blocks: u32,
}

/// Strings kept in one buffer: a root's chunk keys, read without an allocation each (a
/// 1,000,000-document root holds about 14,000; with a `String` each its parse took 8 ms of a
/// first visit in Chromium).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Keys {
    text: String,
    ends: Vec<u32>,
}

impl Keys {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Key `i`; panics past the end, as indexing a `Vec` does.
    pub fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.text[start..self.ends[i] as usize]
    }

    pub fn last(&self) -> Option<&str> {
        self.len().checked_sub(1).map(|i| self.get(i))
    }

    pub fn push(&mut self, key: &str) {
        self.text.push_str(key);
        self.ends.push(self.text.len() as u32);
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        (0..self.len()).map(|i| self.get(i))
    }

    /// The number of leading keys for which `pred` holds (`slice::partition_point`).
    pub fn partition_point(&self, pred: impl Fn(&str) -> bool) -> usize {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if pred(self.get(mid)) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }
}

impl<'a> FromIterator<&'a str> for Keys {
    fn from_iter<I: IntoIterator<Item = &'a str>>(iter: I) -> Self {
        let mut keys = Self::default();
        for k in iter {
            keys.push(k);
        }
        keys
    }
}

/// The dictionary chunks of a root: chunk `i`'s first term and that term's ordinal.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DictChunks {
    pub keys: Keys,
    pub ordinals: Vec<u32>,
}

impl DictChunks {
    pub fn len(&self) -> usize {
        self.ordinals.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ordinals.is_empty()
    }

    pub fn push(&mut self, term: &str, ordinal: u32) {
        self.keys.push(term);
        self.ordinals.push(ordinal);
    }
}

/// Postings of one impact: (impact 1..=255, ascending document ordinals).
pub type Segment = (u8, Vec<u32>);

/// One term of a dictionary chunk, postings grouped by impact, highest first: the head in
/// line, the rest (for a long list) in postings blocks.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub term: String,
    pub ordinal: u32,
    pub df: u32,
    /// The list's head, impacts strictly descending.
    pub segments: Vec<Segment>,
    /// The rest of the list, in order: each block's fragment, highest impact and postings.
    pub blocks: Vec<BlockRef>,
}

/// Where the next part of a long posting list is, and what reading it can add.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockRef {
    pub fragment: usize,
    /// The block's first (highest) impact: a bound on every posting in it.
    pub max_impact: u8,
    pub postings: u32,
}

/// A postings block: the continuation of term `ordinal`'s list, impacts strictly descending.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    pub ordinal: u32,
    pub segments: Vec<Segment>,
}

/// A deletion key and the ordinals of the terms it stands for (ascending).
#[derive(Debug, Clone, PartialEq)]
pub struct TypoEntry {
    pub key: String,
    pub ordinals: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Fragment {
    Dict(Vec<Entry>),
    Typo(Vec<TypoEntry>),
    Postings(Block),
}

const KIND_DICT: u8 = 0;
const KIND_TYPO: u8 = 1;
const KIND_POSTINGS: u8 = 2;

// ---- writing ----

pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u32);
    out.extend_from_slice(s.as_bytes());
}

/// A key stored as the bytes it shares with the previous key plus its own suffix.
fn put_key(out: &mut Vec<u8>, prev: &str, key: &str) {
    let shared = prev
        .bytes()
        .zip(key.bytes())
        .take_while(|(a, b)| a == b)
        .count();
    put_varint(out, shared as u32);
    put_varint(out, (key.len() - shared) as u32);
    out.extend_from_slice(&key.as_bytes()[shared..]);
}

/// Ascending ordinals as gaps: the first as is, each next as `next - prev - 1`.
fn put_ascending(out: &mut Vec<u8>, ids: &[u32]) {
    put_varint(out, ids.len() as u32);
    let mut prev: Option<u32> = None;
    for &d in ids {
        put_varint(out, prev.map_or(d, |p| d - p - 1));
        prev = Some(d);
    }
}

impl Root {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(ROOT_MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        let meta = serde_json::to_vec(&self.meta).expect("meta serializes");
        put_varint(&mut out, meta.len() as u32);
        out.extend_from_slice(&meta);
        put_varint(&mut out, self.terms);
        put_varint(&mut out, self.dict.len() as u32);
        for (term, ordinal) in self.dict.keys.iter().zip(&self.dict.ordinals) {
            put_str(&mut out, term);
            put_varint(&mut out, *ordinal);
        }
        put_varint(&mut out, self.typo.len() as u32);
        for key in self.typo.iter() {
            put_str(&mut out, key);
        }
        put_varint(&mut out, self.blocks);
        out
    }

    pub fn fragments(&self) -> usize {
        self.dict.len() + self.typo.len() + self.blocks as usize
    }

    /// The number of the first postings block.
    pub fn first_block(&self) -> usize {
        self.dict.len() + self.typo.len()
    }
}

impl Fragment {
    /// Fragment `number` of its index.
    pub fn to_bytes(&self, number: u32) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(FRAGMENT_MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        put_varint(&mut out, number);
        let mut prev = String::new();
        match self {
            Fragment::Dict(entries) => {
                out.push(KIND_DICT);
                put_varint(&mut out, entries.len() as u32);
                for e in entries {
                    put_key(&mut out, &prev, &e.term);
                    put_varint(&mut out, e.df);
                    put_segments(&mut out, &e.segments);
                    put_varint(&mut out, e.blocks.len() as u32);
                    if let Some(first) = e.blocks.first() {
                        put_varint(&mut out, first.fragment as u32);
                    }
                    for b in &e.blocks {
                        out.push(b.max_impact);
                        put_varint(&mut out, b.postings);
                    }
                    prev.clone_from(&e.term);
                }
            }
            Fragment::Postings(block) => {
                out.push(KIND_POSTINGS);
                put_varint(&mut out, block.ordinal);
                put_segments(&mut out, &block.segments);
            }
            Fragment::Typo(entries) => {
                out.push(KIND_TYPO);
                put_varint(&mut out, entries.len() as u32);
                for e in entries {
                    put_key(&mut out, &prev, &e.key);
                    put_ascending(&mut out, &e.ordinals);
                    prev.clone_from(&e.key);
                }
            }
        }
        out
    }
}

fn put_segments(out: &mut Vec<u8>, segments: &[Segment]) {
    put_varint(out, segments.len() as u32);
    for (impact, docs) in segments {
        out.push(*impact);
        put_ascending(out, docs);
    }
}

// ---- reading ----

/// A bounds-checked reader; every error names the file.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
    file: &'a str,
    /// The file's format version, once its header is read.
    version: u32,
}

impl<'a> Cursor<'a> {
    fn new(bytes: &'a [u8], file: &'a str) -> Self {
        Self {
            bytes,
            pos: 0,
            file,
            version: 0,
        }
    }

    /// An entry's block table: consecutive fragments among the root's postings blocks, each
    /// bound at most the one before (the head's lowest impact, `after`, for the first).
    fn blocks(&mut self, root: &Root, after: u8) -> Result<Vec<BlockRef>, LexicalError> {
        let n = self.count(2)?;
        if n == 0 {
            return Ok(Vec::new());
        }
        let first = self.varint()? as usize;
        let blocks = root.first_block()..root.fragments();
        if first < blocks.start || first.saturating_add(n) > blocks.end {
            return Err(self.bad(format!(
                "postings blocks {first}.. are not among fragments {blocks:?}"
            )));
        }
        let mut out: Vec<BlockRef> = Vec::with_capacity(n);
        let mut bound = after;
        for i in 0..n {
            let max_impact = self.u8()?;
            let postings = self.varint()?;
            if max_impact == 0 || max_impact > bound || postings == 0 {
                return Err(self.bad("postings blocks out of impact order, or empty"));
            }
            bound = max_impact;
            out.push(BlockRef {
                fragment: first + i,
                max_impact,
                postings,
            });
        }
        Ok(out)
    }

    fn bad(&self, message: impl Into<String>) -> LexicalError {
        LexicalError::Invalid {
            file: self.file.to_string(),
            message: format!("{} (at byte {})", message.into(), self.pos),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], LexicalError> {
        if self.bytes.len() - self.pos < n {
            return Err(self.bad(format!("truncated: {n} more bytes expected")));
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, LexicalError> {
        Ok(self.take(1)?[0])
    }

    fn varint(&mut self) -> Result<u32, LexicalError> {
        let mut v: u64 = 0;
        for shift in (0..35).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return u32::try_from(v).map_err(|_| self.bad("varint over 32 bits"));
            }
        }
        Err(self.bad("varint longer than 5 bytes"))
    }

    /// A count of items each at least `min_bytes` long: refused if they cannot fit.
    fn count(&mut self, min_bytes: usize) -> Result<usize, LexicalError> {
        let n = self.varint()? as usize;
        let left = self.bytes.len() - self.pos;
        if n.saturating_mul(min_bytes) > left {
            return Err(self.bad(format!("{n} items cannot fit in the {left} bytes left")));
        }
        Ok(n)
    }

    fn utf8(&self, b: Vec<u8>) -> Result<String, LexicalError> {
        String::from_utf8(b).map_err(|_| self.bad("a key is not UTF-8"))
    }

    fn str(&mut self) -> Result<&'a str, LexicalError> {
        let n = self.count(1)?;
        let b = self.take(n)?;
        std::str::from_utf8(b).map_err(|_| self.bad("a key is not UTF-8"))
    }

    fn key(&mut self, prev: &str) -> Result<String, LexicalError> {
        let shared = self.varint()? as usize;
        if shared > prev.len() {
            return Err(self.bad("a key shares more bytes than the previous key has"));
        }
        let n = self.count(1)?;
        let mut b = prev.as_bytes()[..shared].to_vec();
        b.extend_from_slice(self.take(n)?);
        let key = self.utf8(b)?;
        if !prev.is_empty() && key.as_str() <= prev {
            return Err(self.bad(format!("key {key:?} is not after {prev:?}")));
        }
        Ok(key)
    }

    /// Ascending ordinals, each below `limit`.
    fn ascending(&mut self, limit: u32) -> Result<Vec<u32>, LexicalError> {
        let n = self.count(1)?;
        let mut out = Vec::with_capacity(n);
        let mut prev: Option<u32> = None;
        for _ in 0..n {
            let gap = self.varint()?;
            let d = match prev {
                None => Some(gap),
                Some(p) => p.checked_add(gap).and_then(|v| v.checked_add(1)),
            };
            match d {
                Some(d) if d < limit => {
                    out.push(d);
                    prev = Some(d);
                }
                _ => return Err(self.bad(format!("an ordinal is not below {limit}"))),
            }
        }
        Ok(out)
    }

    fn header(&mut self, magic: &[u8; 8]) -> Result<(), LexicalError> {
        if self.take(8).ok() != Some(&magic[..]) {
            return Err(self.bad("not a searchbar lexical index file"));
        }
        let v = u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes"));
        if !(OLDEST_VERSION..=FORMAT_VERSION).contains(&v) {
            return Err(self.bad(format!(
                "lexical format {v} is not supported (this build reads {OLDEST_VERSION} to \
                 {FORMAT_VERSION})"
            )));
        }
        self.version = v;
        Ok(())
    }

    /// Segments: impacts strictly descending above 0, ordinals ascending below `docs`.
    fn segments(&mut self, docs: u32) -> Result<(Vec<Segment>, u64), LexicalError> {
        let n = self.count(2)?;
        let mut segments: Vec<Segment> = Vec::with_capacity(n);
        let mut total = 0u64;
        for _ in 0..n {
            let impact = self.u8()?;
            if impact == 0 || segments.last().is_some_and(|(p, _)| impact >= *p) {
                return Err(self.bad("impacts are not strictly descending above 0"));
            }
            let ids = self.ascending(docs)?;
            total += ids.len() as u64;
            segments.push((impact, ids));
        }
        Ok((segments, total))
    }

    fn end(&self) -> Result<(), LexicalError> {
        if self.pos != self.bytes.len() {
            return Err(self.bad("trailing bytes"));
        }
        Ok(())
    }
}

impl Root {
    /// Parses a root; `file` names it in errors.
    pub fn from_bytes(bytes: &[u8], file: &str) -> Result<Self, LexicalError> {
        let mut c = Cursor::new(bytes, file);
        c.header(ROOT_MAGIC)?;
        let n = c.count(1)?;
        let meta: Meta =
            serde_json::from_slice(c.take(n)?).map_err(|e| c.bad(format!("settings: {e}")))?;
        for (name, v) in [
            ("k1", meta.k1),
            ("b", meta.b),
            ("title_weight", meta.title_weight),
            ("text_weight", meta.text_weight),
            ("max_score", meta.max_score),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(c.bad(format!("{name} = {v} is not a finite number ≥ 0")));
            }
        }
        let terms = c.varint()?;
        let n = c.count(2)?;
        let mut dict = DictChunks::default();
        for _ in 0..n {
            let term = c.str()?;
            let ordinal = c.varint()?;
            if let (Some(p), Some(o)) = (dict.keys.last(), dict.ordinals.last()) {
                if term <= p || ordinal <= *o {
                    return Err(c.bad("dictionary chunks are not in ascending order"));
                }
            } else if ordinal != 0 {
                return Err(c.bad("the first dictionary chunk does not start at ordinal 0"));
            }
            if ordinal >= terms {
                return Err(c.bad(format!(
                    "chunk ordinal {ordinal} is not below {terms} terms"
                )));
            }
            dict.push(term, ordinal);
        }
        let n = c.count(1)?;
        let mut typo = Keys::default();
        for _ in 0..n {
            let key = c.str()?;
            if typo.last().is_some_and(|p| key <= p) {
                return Err(c.bad("typo chunks are not in ascending order"));
            }
            typo.push(key);
        }
        let blocks = if c.version >= 2 { c.varint()? } else { 0 };
        c.end()?;
        if dict.is_empty() && terms > 0 {
            return Err(c.bad(format!("{terms} terms but no dictionary chunk")));
        }
        if (dict.len() + typo.len())
            .checked_add(blocks as usize)
            .is_none()
        {
            return Err(c.bad(format!("{blocks} postings blocks")));
        }
        Ok(Self {
            meta,
            dict,
            typo,
            terms,
            blocks,
        })
    }

    /// The ordinals dictionary chunk `i` may hold: up to the next chunk's first.
    pub(crate) fn ordinals(&self, i: usize) -> std::ops::Range<u32> {
        let start = self.dict.ordinals[i];
        let end = self.dict.ordinals.get(i + 1).map_or(self.terms, |o| *o);
        start..end
    }
}

impl Fragment {
    /// Parses fragment `number` of `root`: a dictionary chunk for `number < root.dict.len()`,
    /// else a typo chunk. `file` names it in errors.
    pub fn from_bytes(
        bytes: &[u8],
        root: &Root,
        number: usize,
        file: &str,
    ) -> Result<Self, LexicalError> {
        let mut c = Cursor::new(bytes, file);
        c.header(FRAGMENT_MAGIC)?;
        let stored = c.varint()? as usize;
        if stored != number {
            return Err(c.bad(format!("fragment {stored} given as fragment {number}")));
        }
        let kind = c.u8()?;
        let docs = root.meta.documents;
        let expected = if number < root.dict.len() {
            KIND_DICT
        } else if number < root.first_block() {
            KIND_TYPO
        } else {
            KIND_POSTINGS
        };
        if kind != expected {
            return Err(c.bad(format!("kind {kind} does not belong at fragment {number}")));
        }
        let out = match kind {
            KIND_DICT => {
                let ordinals = root.ordinals(number);
                let n = c.count(4)?;
                if n as u64 > u64::from(ordinals.end - ordinals.start) {
                    return Err(c.bad(format!(
                        "{n} terms in a chunk holding ordinals {ordinals:?}"
                    )));
                }
                let mut entries: Vec<Entry> = Vec::with_capacity(n);
                let mut prev = String::new();
                for i in 0..n {
                    let term = c.key(&prev)?;
                    if i == 0 && term != root.dict.keys.get(number) {
                        return Err(c.bad("the chunk's first term is not the root's"));
                    }
                    let df = c.varint()?;
                    let (segments, mut total) = c.segments(docs)?;
                    let blocks = if c.version >= 2 {
                        c.blocks(root, segments.last().map_or(u8::MAX, |s| s.0))?
                    } else {
                        Vec::new()
                    };
                    total += blocks.iter().map(|b| u64::from(b.postings)).sum::<u64>();
                    if total != u64::from(df) {
                        return Err(c.bad(format!("term {term:?}: df {df}, {total} postings")));
                    }
                    prev.clone_from(&term);
                    entries.push(Entry {
                        term,
                        ordinal: ordinals.start + i as u32,
                        df,
                        segments,
                        blocks,
                    });
                }
                Fragment::Dict(entries)
            }
            KIND_TYPO => {
                let n = c.count(3)?;
                let mut entries: Vec<TypoEntry> = Vec::with_capacity(n);
                let mut prev = String::new();
                for _ in 0..n {
                    let key = c.key(&prev)?;
                    let ordinals = c.ascending(root.terms)?;
                    prev.clone_from(&key);
                    entries.push(TypoEntry { key, ordinals });
                }
                Fragment::Typo(entries)
            }
            _ => {
                let ordinal = c.varint()?;
                if ordinal >= root.terms {
                    return Err(c.bad(format!("term {ordinal} is not below {}", root.terms)));
                }
                let (segments, _) = c.segments(docs)?;
                if segments.is_empty() {
                    return Err(c.bad("an empty postings block"));
                }
                Fragment::Postings(Block { ordinal, segments })
            }
        };
        c.end()?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_read_back_as_pushed_and_split_as_a_slice_would() {
        let words = ["", "a", "ab", "abc", "b", "ü", "zz"];
        let keys: Keys = words.iter().copied().collect();
        assert_eq!(keys.len(), words.len());
        assert_eq!(keys.iter().collect::<Vec<_>>(), words);
        assert_eq!(keys.last(), Some("zz"));
        for probe in ["", "a", "aa", "abd", "c", "ü", "zzz"] {
            assert_eq!(
                keys.partition_point(|k| k <= probe),
                words.partition_point(|k| *k <= probe),
                "{probe}"
            );
        }
        assert!(Keys::default().last().is_none());
    }

    #[test]
    fn varints_round_trip_and_overlong_ones_are_refused() {
        for v in [0u32, 1, 127, 128, 300, 1 << 21, u32::MAX] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            let mut c = Cursor::new(&b, "t");
            assert_eq!(c.varint().unwrap(), v);
        }
        let b = [0xffu8, 0xff, 0xff, 0xff, 0x7f];
        let mut c = Cursor::new(&b, "t");
        assert!(c.varint().is_err());
        let b = [0x80u8; 6];
        let mut c = Cursor::new(&b, "t");
        assert!(c.varint().unwrap_err().to_string().starts_with("t:"));
    }
}
