//! Re-ranking rows: the int8 vectors a search re-scores its candidates with,
//! wherever they live.
//!
//! An IVF-PQ index can keep them outside its file, in a *rows file* of `n`
//! fixed-size records (spec: docs/index-format.md, "Rows file"), while the
//! index file holds an 8-byte digest per doc. A static site then ships the
//! compact index and leaves the rows file on the CDN: a query fetches only its
//! candidates' records (HTTP range requests), and each record is checked
//! against the digest in the index the client already verified.

use crate::error::{RowError, SearchError};
use crate::flat::Int8Store;
use crate::kernels::dot_f32_i8;
use crate::row_tree;
use crate::topk::{sort_truncate, Hit};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::ops::Range;

/// Bytes of a row digest: the first 8 bytes of the record's SHA-256. Enough
/// to catch corruption, truncation and rows of another release; the index
/// that holds the digests is itself verified by full SHA-256.
pub const ROW_DIGEST_LEN: usize = 8;

/// One doc's re-ranking vector: `x ≈ scale * codes`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row<'a> {
    /// Dequantization scale.
    pub scale: f32,
    /// int8 components.
    pub codes: &'a [i8],
}

/// Where the second search stage finds candidates' rows: the index's own
/// int8 store, or rows fetched for one query ([`FetchedRows`]).
pub trait RowSource {
    /// The row of `doc`, if this source has it.
    fn row(&self, doc: u32) -> Option<Row<'_>>;
}

impl RowSource for Int8Store {
    fn row(&self, doc: u32) -> Option<Row<'_>> {
        let i = doc as usize;
        Some(Row {
            scale: *self.scales.get(i)?,
            codes: self.codes.get(i * self.dim..(i + 1) * self.dim)?,
        })
    }
}

/// Bytes of one record of a rows file: the f32 scale, then `dim` int8 codes.
pub fn record_len(dim: usize) -> usize {
    4 + dim
}

/// Byte range of `doc`'s record in a rows file whose records carry paths of `levels` digests
/// (0: none, records of [`record_len`] bytes).
pub(crate) fn record_range(dim: usize, levels: u32, doc: u32) -> Range<u64> {
    let len = (record_len(dim) + row_tree::path_len(levels)) as u64;
    let start = u64::from(doc) * len;
    start..start + len
}

/// How a fetched record is checked: against its doc's digest, or along the path it carries to
/// the root of the tree over its list's rows (entry `at` of that list; [`crate::row_tree`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RowCheck {
    Digest([u8; ROW_DIGEST_LEN]),
    Path {
        root: [u8; ROW_DIGEST_LEN],
        at: u32,
        levels: u32,
    },
}

/// Checks one record of `doc` as `check` says and decodes its row.
pub(crate) fn decode_checked(
    dim: usize,
    check: &RowCheck,
    doc: u32,
    record: &[u8],
) -> Result<(f32, Vec<i8>), RowError> {
    match *check {
        RowCheck::Digest(want) => decode_with(dim, &want, doc, record),
        RowCheck::Path { root, at, levels } => {
            let expected = record_len(dim) + row_tree::path_len(levels);
            if record.len() != expected {
                return Err(RowError::Length {
                    what: format!("row of doc {doc}"),
                    expected: expected as u64,
                    got: record.len() as u64,
                });
            }
            let (row, path) = record.split_at(record_len(dim));
            if row_tree::root_of(row, at, path) != root {
                return Err(RowError::DigestMismatch(doc));
            }
            Ok(row_of(row))
        }
    }
}

/// The scale and codes of a record's row bytes (checked by the caller).
fn row_of(row: &[u8]) -> (f32, Vec<i8>) {
    let scale = f32::from_le_bytes([row[0], row[1], row[2], row[3]]);
    (scale, row[4..].iter().map(|&b| b as i8).collect())
}

pub(crate) fn digest(record: &[u8]) -> [u8; ROW_DIGEST_LEN] {
    let full = Sha256::digest(record);
    let mut d = [0u8; ROW_DIGEST_LEN];
    d.copy_from_slice(&full[..ROW_DIGEST_LEN]);
    d
}

/// Digests laid end to end (a section of the index file, or a list's entries) as an array.
pub(crate) fn digests(b: &[u8]) -> Vec<[u8; ROW_DIGEST_LEN]> {
    b.chunks_exact(ROW_DIGEST_LEN)
        .map(|c| {
            let mut d = [0u8; ROW_DIGEST_LEN];
            d.copy_from_slice(c);
            d
        })
        .collect()
}

/// The rows file of `store` and the digest of each of its records.
pub(crate) fn encode(store: &Int8Store) -> (Vec<u8>, Vec<[u8; ROW_DIGEST_LEN]>) {
    let mut file = Vec::with_capacity(store.len() * record_len(store.dim));
    let mut digests = Vec::with_capacity(store.len());
    for (codes, scale) in store.codes.chunks_exact(store.dim).zip(&store.scales) {
        let start = file.len();
        file.extend_from_slice(&scale.to_le_bytes());
        file.extend(codes.iter().map(|&c| c as u8));
        digests.push(digest(&file[start..]));
    }
    (file, digests)
}

/// Checks one record against its digest and decodes it.
pub(crate) fn decode(
    dim: usize,
    digests: &[[u8; ROW_DIGEST_LEN]],
    doc: u32,
    record: &[u8],
) -> Result<(f32, Vec<i8>), RowError> {
    let want = digests.get(doc as usize).ok_or(RowError::DocOutOfRange {
        doc,
        n: digests.len(),
    })?;
    decode_with(dim, want, doc, record)
}

/// Checks one record of `doc` against the digest `want` and decodes it.
pub(crate) fn decode_with(
    dim: usize,
    want: &[u8; ROW_DIGEST_LEN],
    doc: u32,
    record: &[u8],
) -> Result<(f32, Vec<i8>), RowError> {
    if record.len() != record_len(dim) {
        return Err(RowError::Length {
            what: format!("row of doc {doc}"),
            expected: record_len(dim) as u64,
            got: record.len() as u64,
        });
    }
    // The digest covers the scale, so a matching record has the scale the
    // pipeline wrote (finite, non-negative).
    if digest(record) != *want {
        return Err(RowError::DigestMismatch(doc));
    }
    Ok(row_of(record))
}

/// Verifies a whole rows file against the digests and decodes it into a store.
pub(crate) fn decode_file(
    dim: usize,
    digests: &[[u8; ROW_DIGEST_LEN]],
    file: &[u8],
) -> Result<Int8Store, RowError> {
    let expected = (digests.len() as u64).saturating_mul(record_len(dim) as u64);
    if file.len() as u64 != expected {
        return Err(RowError::Length {
            what: "rows file".into(),
            expected,
            got: file.len() as u64,
        });
    }
    let mut codes = Vec::with_capacity(digests.len() * dim);
    let mut scales = Vec::with_capacity(digests.len());
    for (doc, record) in (0u32..).zip(file.chunks_exact(record_len(dim))) {
        let (scale, row) = decode(dim, digests, doc, record)?;
        scales.push(scale);
        codes.extend(row);
    }
    Ok(Int8Store { dim, codes, scales })
}

/// Rows fetched for one query, each verified on insertion
/// ([`Index::insert_row`](crate::Index::insert_row)).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FetchedRows {
    pub(crate) rows: BTreeMap<u32, (f32, Vec<i8>)>,
}

impl FetchedRows {
    /// No rows yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of rows held.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether no rows are held.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

impl RowSource for FetchedRows {
    fn row(&self, doc: u32) -> Option<Row<'_>> {
        self.rows.get(&doc).map(|(scale, codes)| Row {
            scale: *scale,
            codes,
        })
    }
}

/// The second stage shared by every index and row source: re-scores each of
/// the best `rescore` candidates (best first by their first-stage scores) as
/// `scale * <query, codes>` and keeps the best `k` of all. Candidates past
/// `rescore` keep their first-stage scores, estimates of the same inner
/// product: a hybrid query ranks `FUSION_DEPTH` dense hits but needs exact
/// scores only near the top, and each re-scored row of an index with a rows
/// file is one range request.
pub(crate) fn rerank(
    query: &[f32],
    mut candidates: Vec<Hit>,
    rescore: usize,
    k: usize,
    rows: &dyn RowSource,
) -> Result<Vec<Hit>, SearchError> {
    for hit in candidates.iter_mut().take(rescore) {
        let row = rows.row(hit.doc).ok_or(SearchError::MissingRow(hit.doc))?;
        if row.codes.len() != query.len() {
            return Err(SearchError::DimensionMismatch {
                expected: row.codes.len(),
                got: query.len(),
            });
        }
        hit.score = row.scale * dot_f32_i8(query, row.codes);
    }
    sort_truncate(&mut candidates, k);
    Ok(candidates)
}
