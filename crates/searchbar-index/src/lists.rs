//! Inverted lists outside the index file.
//!
//! An IVF-PQ index can keep its lists in a *lists file* (spec: docs/index-format.md, "Lists
//! file") while the index file, its *root*, holds the coarse centroids, the codebook, where each
//! list starts and an 8-byte digest per list. A page then downloads the root once and fetches
//! only the lists a query probes, by HTTP range, each checked against the root it already
//! verified. With external re-ranking rows, each entry also carries its row's digest, so the
//! root needs nothing per document.

use crate::error::RowError;
use crate::rows::{self, ROW_DIGEST_LEN};
use std::collections::BTreeMap;

/// Bytes of a list digest: the first 8 bytes of the list's SHA-256, as for rows.
pub const LIST_DIGEST_LEN: usize = ROW_DIGEST_LEN;

/// A digest of a list's or a row's bytes.
pub(crate) type Digest = [u8; ROW_DIGEST_LEN];

/// Bytes of one list entry: its doc ordinal, its PQ code and, with external rows, its row's
/// digest.
pub fn entry_len(m: usize, row_digests: bool) -> usize {
    4 + m + if row_digests { ROW_DIGEST_LEN } else { 0 }
}

/// One inverted list as it came from the lists file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct List {
    pub(crate) ids: Vec<u32>,
    pub(crate) codes: Vec<u8>,
    /// Each entry's row digest (empty without external rows).
    pub(crate) rows: Vec<Digest>,
}

/// What a lists file's entries hold, from the root: code bytes, whether row digests follow,
/// and the bounds a decoded entry must keep.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shape {
    pub(crate) m: usize,
    pub(crate) row_digests: bool,
    pub(crate) n_docs: usize,
    pub(crate) ksub: usize,
}

impl Shape {
    fn entry(&self) -> usize {
        entry_len(self.m, self.row_digests)
    }
}

/// The lists file of lists laid out as `offsets` over `ids` and `codes` (`m` bytes an entry),
/// with each doc's row digest where `rows` has them, and each list's digest.
pub(crate) fn encode(
    offsets: &[usize],
    ids: &[u32],
    codes: &[u8],
    m: usize,
    rows: Option<&[Digest]>,
) -> (Vec<u8>, Vec<Digest>) {
    let mut file = Vec::with_capacity(ids.len() * entry_len(m, rows.is_some()));
    let mut digests = Vec::with_capacity(offsets.len().saturating_sub(1));
    for w in offsets.windows(2) {
        let (start, end) = (w[0], w[1]);
        let at = file.len();
        for id in &ids[start..end] {
            file.extend_from_slice(&id.to_le_bytes());
        }
        file.extend_from_slice(&codes[start * m..end * m]);
        if let Some(rows) = rows {
            for &id in &ids[start..end] {
                file.extend_from_slice(&rows[id as usize]);
            }
        }
        digests.push(rows::digest(&file[at..]));
    }
    (file, digests)
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
    let expected = (count as u64).saturating_mul(shape.entry() as u64);
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
    let (codes, digests) = rest.split_at(count * shape.m);
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
    Ok(List {
        ids,
        codes: codes.to_vec(),
        rows: rows::digests(digests),
    })
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

    /// The row digest of each doc of `docs` (ascending) found in `lists` of those held, by
    /// doc: a search's candidates come from the lists it probed, not from every list kept.
    pub(crate) fn row_digests(
        &self,
        lists: impl Iterator<Item = u32>,
        docs: &[u32],
    ) -> Vec<(u32, Digest)> {
        let mut found = Vec::with_capacity(docs.len());
        for list in lists.filter_map(|l| self.lists.get(&l)) {
            for (id, d) in list.ids.iter().zip(&list.rows) {
                if docs.binary_search(id).is_ok() {
                    found.push((*id, *d));
                }
            }
        }
        found.sort_unstable_by_key(|(id, _)| *id);
        found.dedup_by_key(|(id, _)| *id);
        found
    }
}
