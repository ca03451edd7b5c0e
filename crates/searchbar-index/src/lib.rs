//! Vector index for the searchbar: a versioned binary format holding either
//! a flat int8 index or an IVF-PQ index (with int8 re-ranking), searched by
//! inner product over L2-normalised embeddings (so IP = cosine), plus the
//! retrieval metrics and BEIR judgment parsing shared by the pipeline's
//! evaluation and the browser.
//!
//! Pure Rust, no `unsafe` (the browser kernels' simd128 loads and stores are
//! `searchbar-simd`'s), builds for native targets and `wasm32-unknown-unknown`.
//! Training (k-means, PQ) happens in FAISS on the pipeline side; this crate
//! assembles, stores, loads and searches.
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
pub mod lists;
pub mod metrics;
mod pq;
pub mod qrels;
pub mod rng;
mod row_tree;
pub mod rows;
pub mod testing;
mod topk;

pub use error::{BuildError, FormatError, ParseError, RowError, SearchError};
pub use filter::AllowList;
pub use flat::{FlatInt8, Int8Store};
pub use format::SectionKind;
pub use ivfpq::{Candidates, InvertedList, IvfPq, RerankRows, RerankStore};
pub use lists::FetchedLists;
pub use pq::PqCodebook;
pub use rows::{FetchedRows, Row, RowSource};
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
    /// the int8 vectors: a search keeps `max(k, rerank)` candidates and
    /// re-scores the best `rerank` of them; any others keep their first-stage
    /// scores (PQ estimates or the int8 integer scan), which `0` returns for
    /// all.
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

/// Which kind of index a file or [`Index`] holds; `flat` or `ivfpq` in configuration, reports
/// and manifests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum IndexKind {
    /// Exhaustive scan over int8 vectors.
    #[serde(rename = "flat")]
    FlatInt8,
    /// Inverted file + product quantization, int8 re-ranking.
    #[serde(rename = "ivfpq")]
    IvfPq,
}

impl IndexKind {
    /// The kind's name in configuration, reports and manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            IndexKind::FlatInt8 => "flat",
            IndexKind::IvfPq => "ivfpq",
        }
    }
}

/// Either index kind, with the common API and (de)serialization.
// A process holds one or two indexes: boxing the larger variant would save nothing.
#[allow(clippy::large_enum_variant)]
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

    /// The int8 vectors in memory (the whole flat index, or IVF-PQ's
    /// re-ranking store unless the index is compact or its separate rows file
    /// is not attached).
    pub fn store(&self) -> Option<&Int8Store> {
        match self {
            Index::FlatInt8(f) => Some(&f.store),
            Index::IvfPq(i) => i.store.as_ref(),
        }
    }

    /// Top-`k` docs by inner product with `query`, best first; ties are
    /// broken by ascending doc ordinal. Docs outside `filter` are skipped.
    /// An IVF-PQ index with a separate, unattached rows file answers
    /// [`SearchError::RowsNotAttached`] when asked to re-rank: search it in
    /// two stages ([`Index::candidates`], fetch, [`Index::rerank`]).
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

    /// First stage of a two-stage search: the candidates, and (when
    /// [`Candidates::needs_rows`]) the docs whose rows [`Index::rerank`]
    /// needs. Only an IVF-PQ index with a separate, unattached rows file
    /// needs rows from the caller; every other index finishes in memory.
    pub fn candidates(
        &self,
        query: &[f32],
        k: usize,
        params: &SearchParams,
        filter: Option<&AllowList>,
    ) -> Result<Candidates, SearchError> {
        self.candidates_in(query, k, params, filter, &FetchedLists::new())
    }

    /// [`Index::candidates`] for an index whose lists are in a lists file
    /// that is not attached: the lists it probes come from `fetched` (each
    /// verified by [`Index::insert_list`]; see [`Index::missing_lists`]).
    pub fn candidates_in(
        &self,
        query: &[f32],
        k: usize,
        params: &SearchParams,
        filter: Option<&AllowList>,
        fetched: &FetchedLists,
    ) -> Result<Candidates, SearchError> {
        match self {
            Index::FlatInt8(f) => Ok(Candidates::done(f.search(query, k, params, filter)?, k)),
            Index::IvfPq(i) => i.candidates_in(query, k, params, filter, fetched),
        }
    }

    /// The lists a search for `query` would probe that are neither in memory
    /// nor in `have`, best first, each with its byte range in the lists file
    /// (for HTTP range requests): empty for an index that keeps its lists in
    /// its own file, or whose lists file is attached.
    pub fn missing_lists(
        &self,
        query: &[f32],
        params: &SearchParams,
        have: &FetchedLists,
    ) -> Result<Vec<(u32, std::ops::Range<u64>)>, SearchError> {
        match self {
            Index::FlatInt8(f) => {
                check_query(f.store.dim, query)?;
                Ok(Vec::new())
            }
            Index::IvfPq(i) => Ok(i
                .missing_lists(query, params, have)?
                .into_iter()
                .filter_map(|l| Some((l, i.list_range(l)?)))
                .collect()),
        }
    }

    /// Verifies list `l`, fetched from the lists file, against the index's
    /// digest for it and adds it to `lists`.
    pub fn insert_list(
        &self,
        lists: &mut FetchedLists,
        l: u32,
        record: &[u8],
    ) -> Result<(), RowError> {
        match self {
            Index::FlatInt8(_) => Err(RowError::NoListsFile),
            Index::IvfPq(i) => i.insert_list(lists, l, record),
        }
    }

    /// Whether this index keeps its inverted lists in a separate lists file.
    pub fn has_lists_file(&self) -> bool {
        matches!(self, Index::IvfPq(i) if i.has_lists_file())
    }

    /// Whether every list a search reads is in memory (no lists file, or
    /// one attached with [`Index::attach_lists`]).
    pub fn lists_in_memory(&self) -> bool {
        match self {
            Index::FlatInt8(_) => true,
            Index::IvfPq(i) => i.lists_in_memory(),
        }
    }

    /// Loads a whole lists file after checking its length and every list.
    pub fn attach_lists(&mut self, file: &[u8]) -> Result<(), RowError> {
        match self {
            Index::FlatInt8(_) => Err(RowError::NoListsFile),
            Index::IvfPq(i) => i.attach_lists(file),
        }
    }

    /// Second stage: re-scores `candidates` with the int8 vectors in memory
    /// when the index has them, else with `fetched` (records of the rows
    /// file, each verified by [`Candidates::insert_row`]); keeps the best `k`.
    /// [`Index::search`] is exactly these two stages with the rows in memory.
    pub fn rerank(
        &self,
        query: &[f32],
        candidates: Candidates,
        fetched: &FetchedRows,
    ) -> Result<Vec<Hit>, SearchError> {
        match self.store() {
            Some(store) => candidates.rerank(query, store),
            None => candidates.rerank(query, fetched),
        }
    }

    /// Two-stage search with the whole rows file at hand (read from disk):
    /// each candidate's record is cut from `rows_file` and verified exactly
    /// as a client verifies one it fetched, then [`Index::rerank`] runs. For
    /// an index without a separate rows file this is [`Index::search`].
    pub fn search_rows_file(
        &self,
        query: &[f32],
        k: usize,
        params: &SearchParams,
        filter: Option<&AllowList>,
        rows_file: &[u8],
    ) -> Result<Vec<Hit>, SearchError> {
        let candidates = self.candidates(query, k, params, filter)?;
        let mut fetched = FetchedRows::new();
        if self.store().is_none() {
            for doc in candidates.docs() {
                let record = self
                    .row_range(doc)
                    .and_then(|r| rows_file.get(r.start as usize..r.end as usize))
                    .ok_or(SearchError::MissingRow(doc))?;
                candidates.insert_row(&mut fetched, doc, record)?;
            }
        }
        self.rerank(query, candidates, &fetched)
    }

    /// Whether this index re-ranks with a separate rows file (attached or not).
    pub fn has_rows_file(&self) -> bool {
        matches!(self, Index::IvfPq(i) if matches!(i.rerank_rows(), RerankRows::External { .. }))
    }

    /// Byte range of `doc`'s record in this index's rows file (for an HTTP
    /// range request); `None` unless the index has a separate rows file.
    pub fn row_range(&self, doc: u32) -> Option<std::ops::Range<u64>> {
        match self {
            Index::FlatInt8(_) => None,
            Index::IvfPq(i) => i.row_range(doc),
        }
    }

    /// Verifies a record fetched from the rows file against `doc`'s digest
    /// and adds it to `rows`.
    pub fn insert_row(
        &self,
        rows: &mut FetchedRows,
        doc: u32,
        record: &[u8],
    ) -> Result<(), RowError> {
        match self {
            Index::FlatInt8(_) => Err(RowError::NotExternal),
            Index::IvfPq(i) => i.insert_row(rows, doc, record),
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
