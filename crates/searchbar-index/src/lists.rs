//! Inverted lists outside the index file.
//!
//! An IVF-PQ index can keep its lists in a *lists file* (spec: docs/index-format.md, "Lists
//! file") while the index file, its *root*, holds the coarse centroids, the codebook, where each
//! list starts and an 8-byte digest per list. A page then downloads the root once and fetches
//! only the lists a query probes, by HTTP range, each checked against the root it already
//! verified. With external re-ranking rows, each list also ends with the root of the hash tree
//! over its rows, whose records in the rows file carry their paths ([`crate::row_tree`];
//! format version 4 put each row's digest in its entry instead, 8 bytes an entry that a query
//! fetched for every entry it scanned), so the root needs nothing per document.

use crate::error::RowError;
use crate::row_tree;
use crate::rows::{self, RowCheck, ROW_DIGEST_LEN};
use std::collections::BTreeMap;

/// Bytes of a list digest: the first 8 bytes of the list's SHA-256, as for rows.
pub const LIST_DIGEST_LEN: usize = ROW_DIGEST_LEN;

/// A digest of a list's or a row's bytes.
pub(crate) type Digest = [u8; ROW_DIGEST_LEN];

/// Bytes of one list entry: its doc ordinal, its PQ code and, in a version 4 lists file with
/// external rows, its row's digest.
pub fn entry_len(m: usize, row_digests: bool) -> usize {
    4 + m + if row_digests { ROW_DIGEST_LEN } else { 0 }
}

/// What a lists file says of its entries' re-ranking rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListRows {
    /// Nothing: the index has no rows (compact).
    None,
    /// Each entry carries its row's digest (format version 4).
    Digests,
    /// Each list ends with the root of the tree over its rows, `levels` high, and each record
    /// of the rows file carries its path (version 5; [`crate::row_tree`]).
    Tree { levels: u32 },
}

impl ListRows {
    /// Bytes after a list's entries: its rows' root, with a tree.
    fn tail(self) -> usize {
        match self {
            ListRows::Tree { .. } => ROW_DIGEST_LEN,
            _ => 0,
        }
    }

    /// Bytes of the path each record of the rows file carries: with a tree, its levels'.
    fn path_len(self) -> usize {
        match self {
            ListRows::Tree { levels } => row_tree::path_len(levels),
            _ => 0,
        }
    }
}

/// One inverted list as it came from the lists file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct List {
    pub(crate) ids: Vec<u32>,
    pub(crate) codes: Vec<u8>,
    /// Each entry's row digest (version 4 with external rows; else empty).
    pub(crate) rows: Vec<Digest>,
    /// The root of the tree over its rows, and the tree's levels (version 5 with external
    /// rows).
    pub(crate) tree: Option<(Digest, u32)>,
}

/// What a lists file's entries hold, from the root: code bytes, what follows of the rows, and
/// the bounds a decoded entry must keep.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shape {
    pub(crate) m: usize,
    pub(crate) rows: ListRows,
    pub(crate) n_docs: usize,
    pub(crate) ksub: usize,
}

impl Shape {
    /// Bytes of one entry.
    pub(crate) fn entry(&self) -> usize {
        entry_len(self.m, self.rows == ListRows::Digests)
    }

    /// Byte range of the record of the list whose entries are `start..end` and which is list
    /// `l` of the file.
    pub(crate) fn record(&self, l: usize, start: usize, end: usize) -> std::ops::Range<u64> {
        let (entry, tail) = (self.entry() as u64, self.rows.tail() as u64);
        start as u64 * entry + l as u64 * tail..end as u64 * entry + (l as u64 + 1) * tail
    }

    /// Bytes of a whole lists file of `nlist` lists over `n` entries.
    pub(crate) fn file_len(&self, nlist: usize, n: usize) -> u64 {
        self.record(nlist, n, n).start
    }
}

/// A lists file, and what its rows need beside it.
pub(crate) struct Encoded {
    pub(crate) file: Vec<u8>,
    /// Each list's digest.
    pub(crate) digests: Vec<Digest>,
    /// With a tree: each list's root.
    pub(crate) roots: Vec<Digest>,
    /// With a tree: each doc's path, by doc (`path_len` bytes each), for its record in the
    /// rows file.
    pub(crate) paths: Vec<u8>,
    path_len: usize,
}

impl Encoded {
    /// `rows` (a rows file of `record`-byte records, by doc) with each record followed by its
    /// doc's path: the rows file these lists check.
    pub(crate) fn with_paths(&self, rows: &[u8], record: usize) -> Vec<u8> {
        let p = self.path_len;
        let mut out = Vec::with_capacity(rows.len() + self.paths.len());
        for (doc, row) in rows.chunks_exact(record).enumerate() {
            out.extend_from_slice(row);
            out.extend_from_slice(&self.paths[doc * p..(doc + 1) * p]);
        }
        out
    }
}

/// The lists file of lists laid out as `offsets` over `ids` and `codes` (`m` bytes an entry),
/// each followed by what `rows` says of its rows, made from `row_digests` (each doc's row
/// digest, by doc; empty for [`ListRows::None`]).
pub(crate) fn encode(
    offsets: &[usize],
    ids: &[u32],
    codes: &[u8],
    m: usize,
    rows: ListRows,
    row_digests: &[Digest],
) -> Encoded {
    let shape = Shape {
        m,
        rows,
        n_docs: row_digests.len(),
        ksub: 0,
    };
    let nlist = offsets.len().saturating_sub(1);
    let mut out = Encoded {
        file: Vec::with_capacity(shape.file_len(nlist, ids.len()) as usize),
        digests: Vec::with_capacity(nlist),
        roots: Vec::new(),
        paths: Vec::new(),
        path_len: rows.path_len(),
    };
    let path_len = out.path_len;
    out.paths.resize(row_digests.len() * path_len, 0);
    for w in offsets.windows(2) {
        let (start, end) = (w[0], w[1]);
        let at = out.file.len();
        for id in &ids[start..end] {
            out.file.extend_from_slice(&id.to_le_bytes());
        }
        out.file.extend_from_slice(&codes[start * m..end * m]);
        let leaves = || ids[start..end].iter().map(|&id| row_digests[id as usize]);
        match rows {
            ListRows::None => {}
            ListRows::Digests => leaves().for_each(|d| out.file.extend_from_slice(&d)),
            ListRows::Tree { levels } => {
                let (root, paths) = row_tree::build(&leaves().collect::<Vec<_>>(), levels);
                out.file.extend_from_slice(&root);
                out.roots.push(root);
                for (&id, path) in ids[start..end].iter().zip(paths.chunks_exact(path_len)) {
                    let doc = id as usize * path_len;
                    out.paths[doc..doc + path_len].copy_from_slice(path);
                }
            }
        }
        out.digests.push(rows::digest(&out.file[at..]));
    }
    out
}

/// Checks list `l`'s record (`count` entries) against its digest and decodes it; an entry
/// naming a doc or a code the index cannot have is refused too.
pub(crate) fn decode(
    shape: Shape,
    l: u32,
    count: usize,
    want: &Digest,
    record: &[u8],
) -> Result<List, RowError> {
    let expected = (count as u64).saturating_mul(shape.entry() as u64) + shape.rows.tail() as u64;
    if record.len() as u64 != expected {
        return Err(RowError::Length {
            what: format!("list {l}"),
            expected,
            got: record.len() as u64,
        });
    }
    if rows::digest(record) != *want {
        return Err(RowError::ListDigestMismatch(l));
    }
    let (ids, rest) = record.split_at(count * 4);
    let (codes, rest) = rest.split_at(count * shape.m);
    let ids: Vec<u32> = ids
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    // A matching digest means the pipeline wrote these bytes; the bounds keep a search of a
    // damaged release from indexing out of range all the same.
    if let Some(id) = ids.iter().find(|&&id| id as usize >= shape.n_docs) {
        return Err(RowError::InvalidList {
            list: l,
            reason: format!("doc {id} >= {} docs", shape.n_docs),
        });
    }
    if let Some(c) = codes.iter().find(|&&c| usize::from(c) >= shape.ksub) {
        return Err(RowError::InvalidList {
            list: l,
            reason: format!("code {c} >= ksub {}", shape.ksub),
        });
    }
    let (rows, tree) = match shape.rows {
        ListRows::None => (Vec::new(), None),
        ListRows::Digests => (rows::digests(rest), None),
        ListRows::Tree { levels } => {
            let mut root = [0u8; ROW_DIGEST_LEN];
            root.copy_from_slice(rest);
            (Vec::new(), Some((root, levels)))
        }
    };
    Ok(List {
        ids,
        codes: codes.to_vec(),
        rows,
        tree,
    })
}

/// How each of `docs` (ascending) is checked, by doc, for those found in `lists` (each list's
/// ids, the digests its entries carry, or its tree's root and levels): a search's candidates
/// come from the lists it probed.
pub(crate) fn row_checks<'a>(
    lists: impl Iterator<Item = (&'a [u32], &'a [Digest], Option<(Digest, u32)>)>,
    docs: &[u32],
) -> Vec<(u32, RowCheck)> {
    let mut found = Vec::with_capacity(docs.len());
    for (ids, digests, tree) in lists {
        for (at, &id) in (0u32..).zip(ids) {
            if docs.binary_search(&id).is_err() {
                continue;
            }
            let check = match tree {
                Some((root, levels)) => RowCheck::Path { root, at, levels },
                None => match digests.get(at as usize) {
                    Some(d) => RowCheck::Digest(*d),
                    None => continue,
                },
            };
            found.push((id, check));
        }
    }
    found.sort_unstable_by_key(|(id, _)| *id);
    found.dedup_by_key(|(id, _)| *id);
    found
}

/// The lists a page has fetched, each verified on insertion
/// ([`Index::insert_list`](crate::Index::insert_list)); kept across queries, since nearby
/// queries probe the same lists.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FetchedLists {
    pub(crate) lists: BTreeMap<u32, List>,
}

impl FetchedLists {
    /// No lists yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of lists held.
    pub fn len(&self) -> usize {
        self.lists.len()
    }

    /// Whether no list is held.
    pub fn is_empty(&self) -> bool {
        self.lists.is_empty()
    }

    /// Whether list `l` is held.
    pub fn contains(&self, l: u32) -> bool {
        self.lists.contains_key(&l)
    }

    /// Forgets every list (a page bounds what it keeps this way).
    pub fn clear(&mut self) {
        self.lists.clear();
    }

    /// Entries held, over all lists.
    pub fn entries(&self) -> usize {
        self.lists.values().map(|l| l.ids.len()).sum()
    }

    /// How each doc of `docs` (ascending) found in `lists` of those held is checked, by doc:
    /// a search's candidates come from the lists it probed, not from every list kept.
    pub(crate) fn row_checks(
        &self,
        lists: impl Iterator<Item = u32>,
        docs: &[u32],
    ) -> Vec<(u32, RowCheck)> {
        row_checks(
            lists
                .filter_map(|l| self.lists.get(&l))
                .map(|l| (&l.ids[..], &l.rows[..], l.tree)),
            docs,
        )
    }
}
