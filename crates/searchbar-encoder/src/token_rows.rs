//! The word-embedding table outside the graph: a file of fixed-size rows, one per token id.
//!
//! The table is half of an int8 MiniLM's bytes (30,522 x 384), and a query reads about ten of
//! its rows. [`crate::prepare::split_token_rows`] moves it out of the prepared graph, which then
//! takes the looked-up rows as its `inputs_embeds` input; natively the whole table is at hand
//! ([`TokenRows::whole`]), while a page starts from the rows' digests alone
//! ([`TokenRows::fetched`]) and adds the rows of each query's tokens as they arrive by HTTP
//! range ([`TokenRows::spans`], [`TokenRows::insert_span`]), each checked against its digest.
//!
//! Spec (docs/ARCHITECTURE.md, "Token rows"): row `id` is bytes `id * (4 + dim) ..` of the
//! file: the row's f32 scale (little-endian), then `dim` int8 codes; its value is
//! `code as f32 * scale`, exactly what the graph's `Cast(Gather(q)) * Gather(scale)` computed.
//! The digests file holds the first 8 bytes of each row's SHA-256, in id order.

use crate::EncoderError;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::ops::Range;

/// Bytes of a row's digest: the first 8 bytes of its SHA-256 (the rule of the index's
/// re-ranking rows). The digests file is itself checked whole against the manifest.
pub const TOKEN_DIGEST_LEN: usize = 8;

/// Rows at most this far apart are fetched in one range (the rows between come along): a
/// request costs a round trip, while 8 rows of 388 bytes are 3 KB.
pub const MERGE_GAP_ROWS: u32 = 8;

/// A word-embedding table, whole or in part.
#[derive(Debug, Clone)]
pub struct TokenRows {
    dim: usize,
    vocab: usize,
    rows: Rows,
}

#[derive(Debug, Clone)]
enum Rows {
    /// The whole file (the pipeline, or a page given every row).
    Whole(Vec<u8>),
    /// The rows fetched so far, and every row's digest to check the next ones against.
    Fetched {
        digests: Vec<u8>,
        rows: BTreeMap<u32, Box<[u8]>>,
    },
}

/// A run of rows to fetch with one range request: rows `first ..first + count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowSpan {
    pub first: u32,
    pub count: u32,
}

/// Bytes of one row of a `dim`-wide table.
pub fn row_len(dim: usize) -> usize {
    4 + dim
}

/// The first [`TOKEN_DIGEST_LEN`] bytes of a row's SHA-256.
fn digest(row: &[u8]) -> [u8; TOKEN_DIGEST_LEN] {
    let full = Sha256::digest(row);
    let mut d = [0u8; TOKEN_DIGEST_LEN];
    d.copy_from_slice(&full[..TOKEN_DIGEST_LEN]);
    d
}

impl TokenRows {
    /// The whole table (`file`, as [`crate::prepare::split_token_rows`] wrote it).
    pub fn whole(file: Vec<u8>, dim: usize) -> Result<Self, EncoderError> {
        let len = row_len(dim);
        if dim == 0 || file.is_empty() || !file.len().is_multiple_of(len) {
            return Err(EncoderError::Model(format!(
                "the token rows file has {} bytes, not a whole number of {len}-byte rows",
                file.len()
            )));
        }
        Ok(Self {
            dim,
            vocab: file.len() / len,
            rows: Rows::Whole(file),
        })
    }

    /// No rows yet: each comes by [`TokenRows::insert_span`] and must match its digest in
    /// `digests` (the digests file, [`TokenRows::digests`]).
    pub fn fetched(digests: Vec<u8>, dim: usize) -> Result<Self, EncoderError> {
        if dim == 0 || digests.is_empty() || !digests.len().is_multiple_of(TOKEN_DIGEST_LEN) {
            return Err(EncoderError::Model(format!(
                "the token digests file has {} bytes, not a whole number of {TOKEN_DIGEST_LEN}-byte \
                 digests",
                digests.len()
            )));
        }
        Ok(Self {
            dim,
            vocab: digests.len() / TOKEN_DIGEST_LEN,
            rows: Rows::Fetched {
                digests,
                rows: BTreeMap::new(),
            },
        })
    }

    /// The digests file of a whole table; `None` for a table in part (its digests came from
    /// that file).
    pub fn digests(&self) -> Option<Vec<u8>> {
        match &self.rows {
            Rows::Whole(file) => Some(
                file.chunks_exact(row_len(self.dim))
                    .flat_map(digest)
                    .collect(),
            ),
            Rows::Fetched { .. } => None,
        }
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Rows in the table (the vocabulary's size).
    pub fn vocab(&self) -> usize {
        self.vocab
    }

    /// How many rows are at hand.
    pub fn at_hand(&self) -> usize {
        match &self.rows {
            Rows::Whole(_) => self.vocab,
            Rows::Fetched { rows, .. } => rows.len(),
        }
    }

    fn row(&self, id: u32) -> Option<&[u8]> {
        let len = row_len(self.dim);
        match &self.rows {
            Rows::Whole(file) => file.get(id as usize * len..(id as usize + 1) * len),
            Rows::Fetched { rows, .. } => rows.get(&id).map(|r| &r[..]),
        }
    }

    /// The rows of `ids` not at hand, as few spans as [`MERGE_GAP_ROWS`] allows, in id order.
    /// An id past the table is an error: it would never arrive.
    pub fn spans(&self, ids: &[u32]) -> Result<Vec<RowSpan>, EncoderError> {
        let mut missing: Vec<u32> = Vec::new();
        for &id in ids {
            self.check_id(id)?;
            if self.row(id).is_none() {
                missing.push(id);
            }
        }
        missing.sort_unstable();
        missing.dedup();
        let mut spans: Vec<RowSpan> = Vec::new();
        for id in missing {
            match spans.last_mut() {
                Some(s) if id - (s.first + s.count - 1) <= MERGE_GAP_ROWS => {
                    s.count = id - s.first + 1
                }
                _ => spans.push(RowSpan {
                    first: id,
                    count: 1,
                }),
            }
        }
        Ok(spans)
    }

    /// Byte range of `span` in the rows file.
    pub fn range(&self, span: RowSpan) -> Range<u64> {
        let len = row_len(self.dim) as u64;
        u64::from(span.first) * len..u64::from(span.first + span.count) * len
    }

    /// Keeps the rows of `span` from `bytes` (the span's range of the rows file), each checked
    /// against its digest first: nothing is kept unless every row matches.
    pub fn insert_span(&mut self, span: RowSpan, bytes: &[u8]) -> Result<(), EncoderError> {
        let len = row_len(self.dim);
        let last = span.first as usize + span.count as usize;
        if span.count == 0 || last > self.vocab || bytes.len() != span.count as usize * len {
            return Err(EncoderError::Model(format!(
                "token rows {}..{last}: {} bytes where {} rows of {len} bytes were asked for \
                 (the table has {} rows)",
                span.first,
                bytes.len(),
                span.count,
                self.vocab
            )));
        }
        let Rows::Fetched { digests, rows } = &mut self.rows else {
            // A whole table has every row already.
            return Ok(());
        };
        for (i, row) in bytes.chunks_exact(len).enumerate() {
            let id = span.first as usize + i;
            let expected = &digests[id * TOKEN_DIGEST_LEN..(id + 1) * TOKEN_DIGEST_LEN];
            if digest(row) != expected {
                return Err(EncoderError::Model(format!(
                    "token row {id} does not match its digest (corrupted, or from another model)"
                )));
            }
        }
        for (i, row) in bytes.chunks_exact(len).enumerate() {
            rows.insert(span.first + i as u32, row.into());
        }
        Ok(())
    }

    /// The rows at hand of a table in part, as records of the id (u32, little-endian) then the
    /// row: what a page keeps for its next visit ([`TokenRows::restore`]). Empty for a whole
    /// table.
    pub fn saved(&self) -> Vec<u8> {
        let Rows::Fetched { rows, .. } = &self.rows else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(rows.len() * (4 + row_len(self.dim)));
        for (id, row) in rows {
            out.extend_from_slice(&id.to_le_bytes());
            out.extend_from_slice(row);
        }
        out
    }

    /// Adds the rows of [`TokenRows::saved`]'s bytes, each checked against its digest like a
    /// fetched one; returns how many. On a damaged record the rest is dropped and the error
    /// names the row (the page then fetches what it needs again).
    pub fn restore(&mut self, saved: &[u8]) -> Result<usize, EncoderError> {
        let record = 4 + row_len(self.dim);
        if !saved.len().is_multiple_of(record) {
            return Err(EncoderError::Model(format!(
                "saved token rows: {} bytes, not a whole number of {record}-byte records",
                saved.len()
            )));
        }
        for r in saved.chunks_exact(record) {
            let id = u32::from_le_bytes([r[0], r[1], r[2], r[3]]);
            self.check_id(id)?;
            self.insert_span(
                RowSpan {
                    first: id,
                    count: 1,
                },
                &r[4..],
            )?;
        }
        Ok(saved.len() / record)
    }

    fn check_id(&self, id: u32) -> Result<(), EncoderError> {
        if id as usize >= self.vocab {
            return Err(EncoderError::Inference(format!(
                "token id {id} is past the {} rows of the token table",
                self.vocab
            )));
        }
        Ok(())
    }

    /// The embedding rows of `ids`, `ids.len() x dim` floats: what the graph's lookup gave.
    pub(crate) fn lookup(&self, ids: &[i64]) -> Result<Vec<f32>, EncoderError> {
        let mut out = Vec::with_capacity(ids.len() * self.dim);
        for &id in ids {
            let id = u32::try_from(id)
                .map_err(|_| EncoderError::Inference(format!("token id {id} is negative")))?;
            self.check_id(id)?;
            let row = self.row(id).ok_or_else(|| {
                EncoderError::Inference(format!("token row {id} has not been fetched"))
            })?;
            let scale = f32::from_le_bytes([row[0], row[1], row[2], row[3]]);
            out.extend(row[4..].iter().map(|&c| c as i8 as f32 * scale));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table of `vocab` rows of width 3 whose row `i` has scale `i + 1` and codes `i, -i, 1`.
    fn table(vocab: u32) -> Vec<u8> {
        (0..vocab)
            .flat_map(|i| {
                let mut row = ((i + 1) as f32).to_le_bytes().to_vec();
                row.extend([i as i8 as u8, (-(i as i8)) as u8, 1]);
                row
            })
            .collect()
    }

    #[test]
    fn a_fetched_table_looks_up_what_the_whole_one_does_once_its_rows_arrive() {
        let file = table(40);
        let whole = TokenRows::whole(file.clone(), 3).unwrap();
        let mut part = TokenRows::fetched(whole.digests().unwrap(), 3).unwrap();
        assert_eq!(part.vocab(), 40);
        let ids = [2i64, 30, 5, 2];
        assert_eq!(
            &whole.lookup(&ids).unwrap()[..6],
            &[6.0, -6.0, 3.0, 31.0 * 30.0, -31.0 * 30.0, 31.0]
        );
        let e = part.lookup(&ids).unwrap_err().to_string();
        assert!(e.contains("token row 2 has not been fetched"), "{e}");
        // 2 and 5 are close enough for one span; 30 is not.
        let spans = part.spans(&[2, 30, 5, 2]).unwrap();
        assert_eq!(
            spans,
            [
                RowSpan { first: 2, count: 4 },
                RowSpan {
                    first: 30,
                    count: 1
                }
            ]
        );
        for s in &spans {
            let r = part.range(*s);
            part.insert_span(*s, &file[r.start as usize..r.end as usize])
                .unwrap();
        }
        assert_eq!(part.at_hand(), 5);
        assert_eq!(part.lookup(&ids).unwrap(), whole.lookup(&ids).unwrap());
        assert!(part.spans(&[3, 30]).unwrap().is_empty());
    }

    #[test]
    fn a_corrupted_or_misplaced_row_is_refused_and_nothing_of_its_span_is_kept() {
        let file = table(10);
        let digests = TokenRows::whole(file.clone(), 3)
            .unwrap()
            .digests()
            .unwrap();
        let mut part = TokenRows::fetched(digests, 3).unwrap();
        let span = RowSpan { first: 1, count: 2 };
        let r = part.range(span);
        let mut bytes = file[r.start as usize..r.end as usize].to_vec();
        bytes[9] ^= 1;
        let e = part.insert_span(span, &bytes).unwrap_err().to_string();
        assert!(e.contains("token row 2 does not match its digest"), "{e}");
        assert_eq!(part.at_hand(), 0);
        // Row 1's bytes offered as row 3.
        let row1 = &file[7..14];
        let e = part
            .insert_span(RowSpan { first: 3, count: 1 }, row1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("token row 3"), "{e}");
        let e = part
            .insert_span(RowSpan { first: 9, count: 2 }, &file[..14])
            .unwrap_err()
            .to_string();
        assert!(e.contains("the table has 10 rows"), "{e}");
        let e = part.spans(&[10]).unwrap_err().to_string();
        assert!(e.contains("token id 10 is past the 10 rows"), "{e}");
    }

    #[test]
    fn rows_saved_by_one_page_are_restored_by_the_next_and_damage_is_caught() {
        let file = table(50);
        let digests = TokenRows::whole(file.clone(), 3)
            .unwrap()
            .digests()
            .unwrap();
        let mut first = TokenRows::fetched(digests.clone(), 3).unwrap();
        for span in first.spans(&[4, 40]).unwrap() {
            let r = first.range(span);
            first
                .insert_span(span, &file[r.start as usize..r.end as usize])
                .unwrap();
        }
        let saved = first.saved();
        assert_eq!(saved.len(), 2 * 11);
        let mut next = TokenRows::fetched(digests.clone(), 3).unwrap();
        assert_eq!(next.restore(&saved).unwrap(), 2);
        assert!(next.spans(&[4, 40]).unwrap().is_empty());
        assert_eq!(next.lookup(&[40]).unwrap(), first.lookup(&[40]).unwrap());
        let mut damaged = saved.clone();
        damaged[12 + 4 + 5] ^= 1;
        let mut other = TokenRows::fetched(digests, 3).unwrap();
        let e = other.restore(&damaged).unwrap_err().to_string();
        assert!(e.contains("token row 40 does not match"), "{e}");
        assert!(other.restore(&saved[..5]).is_err());
        assert!(TokenRows::whole(file, 3).unwrap().saved().is_empty());
    }

    #[test]
    fn files_of_the_wrong_length_are_refused() {
        let e = TokenRows::whole(vec![0; 13], 3).unwrap_err().to_string();
        assert!(
            e.contains("13 bytes, not a whole number of 7-byte rows"),
            "{e}"
        );
        let e = TokenRows::fetched(vec![0; 12], 3).unwrap_err().to_string();
        assert!(e.contains("12 bytes"), "{e}");
    }
}
