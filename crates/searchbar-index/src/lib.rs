//! Vector index for the searchbar: a versioned binary format holding either
//! a flat int8 index or an IVF-PQ index (with int8 re-ranking), searched by
//! inner product over L2-normalised embeddings (so IP = cosine), plus the
//! retrieval metrics and BEIR judgment parsing shared by the pipeline's
//! evaluation and the browser.
//!
//! Pure Rust, no `unsafe`, builds for native targets and
//! `wasm32-unknown-unknown`. Training (k-means, PQ) happens in FAISS on the
//! pipeline side; this crate assembles, stores, loads and searches.
//!
//! ```
//! use searchbar_index::{FlatInt8, Index, SearchParams};
//!
//! // Two 2-d unit vectors; the index is serialized and loaded back.
//! let flat = FlatInt8::build(2, &[1.0, 0.0, 0.6, 0.8]).unwrap();
//! let bytes = Index::from(flat).to_bytes();
//! let index = Index::from_bytes(&bytes).unwrap();
//! let hits = index.search(&[0.0, 1.0], 1, &SearchParams::default(), None).unwrap();
//! assert_eq!(hits[0].doc, 1);
//! ```

pub mod error;
mod filter;
mod flat;
pub mod format;
mod ivfpq;
mod kernels;
pub mod metrics;
mod pq;
pub mod qrels;
pub mod testing;
mod topk;

pub use error::{BuildError, FormatError, ParseError, SearchError};
pub use filter::AllowList;
pub use flat::{FlatInt8, Int8Store};
pub use format::SectionKind;
pub use ivfpq::{InvertedList, IvfPq};
pub use pq::PqCodebook;
pub use topk::Hit;

/// Largest supported vector dimension. Bounds int8 dot products so the
/// i32 accumulator cannot overflow (128 * 128 * 65536 = 2^30).
pub const MAX_DIM: usize = 65536;

/// Search knobs shared by both index kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchParams {
    /// IVF-PQ: number of inverted lists to scan, clamped to `1..=nlist`.
    /// Ignored by the flat index.
    pub nprobe: usize,
    /// Number of first-stage candidates re-scored with the f32 query against
    /// the int8 vectors (at least `k` are). `0` disables re-ranking and
    /// returns first-stage scores (PQ estimates or the int8 integer scan).
    pub rerank: usize,
}

impl Default for SearchParams {
    /// `nprobe = 16`, `rerank = 100`: a starting point; tune per corpus.
    fn default() -> Self {
        Self {
            nprobe: 16,
            rerank: 100,
        }
    }
}

/// Which kind of index a file or [`Index`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IndexKind {
    /// Exhaustive scan over int8 vectors.
    FlatInt8,
    /// Inverted file + product quantization, int8 re-ranking.
    IvfPq,
}

/// Either index kind, with the common API and (de)serialization.
#[derive(Debug, Clone, PartialEq)]
pub enum Index {
    /// Flat int8 index.
    FlatInt8(FlatInt8),
    /// IVF-PQ index.
    IvfPq(IvfPq),
}

impl Index {
    /// Serializes to the format described in `docs/index-format.md`.
    pub fn to_bytes(&self) -> Vec<u8> {
        format::write(self)
    }

    /// Loads and fully validates an index. Never panics and never allocates
    /// more than a small multiple of `bytes.len()`, whatever the input.
    pub fn from_bytes(bytes: &[u8]) -> Result<Index, FormatError> {
        format::read(bytes)
    }

    /// Which kind this is.
    pub fn kind(&self) -> IndexKind {
        match self {
            Index::FlatInt8(_) => IndexKind::FlatInt8,
            Index::IvfPq(_) => IndexKind::IvfPq,
        }
    }

    /// Number of documents.
    pub fn len(&self) -> usize {
        match self {
            Index::FlatInt8(f) => f.store.len(),
            Index::IvfPq(i) => i.len(),
        }
    }

    /// Whether the index holds no documents.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Vector dimension.
    pub fn dim(&self) -> usize {
        match self {
            Index::FlatInt8(f) => f.store.dim,
            Index::IvfPq(i) => i.dim,
        }
    }

    /// The int8 vectors (the whole flat index, or IVF-PQ's re-ranking store
    /// unless the index is compact).
    pub fn store(&self) -> Option<&Int8Store> {
        match self {
            Index::FlatInt8(f) => Some(&f.store),
            Index::IvfPq(i) => i.store.as_ref(),
        }
    }

    /// Top-`k` docs by inner product with `query`, best first; ties are
    /// broken by ascending doc ordinal. Docs outside `filter` are skipped.
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        params: &SearchParams,
        filter: Option<&AllowList>,
    ) -> Result<Vec<Hit>, SearchError> {
        match self {
            Index::FlatInt8(f) => f.search(query, k, params, filter),
            Index::IvfPq(i) => i.search(query, k, params, filter),
        }
    }
}

impl From<FlatInt8> for Index {
    fn from(f: FlatInt8) -> Self {
        Index::FlatInt8(f)
    }
}

impl From<IvfPq> for Index {
    fn from(i: IvfPq) -> Self {
        Index::IvfPq(i)
    }
}

/// Rejects queries of the wrong length or with non-finite values.
pub(crate) fn check_query(dim: usize, query: &[f32]) -> Result<(), SearchError> {
    if query.len() != dim {
        return Err(SearchError::DimensionMismatch {
            expected: dim,
            got: query.len(),
        });
    }
    if query.iter().any(|v| !v.is_finite()) {
        return Err(SearchError::NonFiniteQuery);
    }
    Ok(())
}
