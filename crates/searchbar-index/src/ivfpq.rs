//! IVF-PQ: inverted file over coarse centroids with product-quantized codes,
//! inner-product metric, optional residual encoding, and int8 re-ranking.
//!
//! Scoring follows FAISS `IndexIVFPQ` with `METRIC_INNER_PRODUCT`:
//! with `by_residual`, a doc in list `l` scores `<q, c_l> + <q, pq_decode(code)>`;
//! without, `<q, pq_decode(code)>`. The PQ term is a sum of lookups in a
//! per-query table, which for inner product is shared by all lists.

use crate::error::{BuildError, RowError, SearchError};
use crate::filter::AllowList;
use crate::flat::{check_dim, Int8Store};
use crate::format::SectionKind;
use crate::kernels::{dot_f32, lut_sum};
use crate::lists::{self, Digest, FetchedLists, ListRows, Shape};
use crate::pq::PqCodebook;
use crate::row_tree;
use crate::rows::{self, FetchedRows, RowCheck, RowSource, ROW_DIGEST_LEN};
use crate::topk::{Hit, TopK};
use crate::{check_query, SearchParams};

/// One inverted list as produced by training/export: doc ordinals and their
/// PQ codes (`ids.len() * m` bytes, in the same order).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InvertedList {
    /// Doc ordinals in this list.
    pub ids: Vec<u32>,
    /// Concatenated codes, `m` bytes per id.
    pub codes: Vec<u8>,
}

impl From<(Vec<u32>, Vec<u8>)> for InvertedList {
    fn from((ids, codes): (Vec<u32>, Vec<u8>)) -> Self {
        Self { ids, codes }
    }
}

/// IVF-PQ index. Lists are stored contiguously: list `l` owns entries
/// `offsets[l]..offsets[l + 1]` of `ids` (and `m` times that range of `codes`).
#[derive(Debug, Clone, PartialEq)]
pub struct IvfPq {
    pub(crate) dim: usize,
    pub(crate) centroids: Vec<f32>,
    pub(crate) pq: PqCodebook,
    pub(crate) by_residual: bool,
    pub(crate) offsets: Vec<usize>,
    pub(crate) ids: Vec<u32>,
    pub(crate) codes: Vec<u8>,
    /// Corpus size: every list id is below it.
    pub(crate) n_docs: usize,
    /// int8 copies of the vectors for re-ranking; `None` in a compact index
    /// (PQ codes only, for corpora whose int8 vectors are too big to ship)
    /// and in an external one whose rows file was not attached.
    pub(crate) store: Option<Int8Store>,
    /// External re-ranking rows: the digest of each doc's record in the rows
    /// file (see [`crate::rows`]). When set, the store is never serialized.
    /// Empty while the lists are in a lists file that is not attached (the
    /// digests are in the lists' entries then), and always with row trees
    /// (each row is checked along its path to its list's root instead).
    pub(crate) digests: Option<Vec<[u8; ROW_DIGEST_LEN]>>,
    /// Lists kept in a separate lists file (see [`crate::lists`]); `ids` and
    /// `codes` are empty until it is attached.
    pub(crate) lists_file: Option<ListsFile>,
}

/// An IVF-PQ index's lists file, as its root knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListsFile {
    /// Each list's digest.
    pub(crate) digests: Vec<Digest>,
    /// Whether the lists are in memory (`ids`, `codes` and the row digests or roots).
    pub(crate) attached: bool,
    /// What the lists say of their rows (external re-ranking rows: digests or trees).
    pub(crate) rows: ListRows,
    /// With row trees and the lists attached, each list's root.
    pub(crate) row_roots: Vec<Digest>,
}

impl ListsFile {
    /// The levels of its row trees, where it has them.
    fn tree_levels(&self) -> Option<u32> {
        match self.rows {
            ListRows::Tree { levels } => Some(levels),
            _ => None,
        }
    }
}

/// An index whose lists moved into a lists file ([`IvfPq::into_split`]): the index (its
/// root), the lists file, and, with external rows, the rows file their lists check.
pub type Split = (IvfPq, Vec<u8>, Option<Vec<u8>>);

/// How an IVF-PQ index re-ranks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RerankRows {
    /// int8 vectors inside the index file.
    Embedded,
    /// int8 vectors in a separate rows file, verified by per-doc digests
    /// (`attached` once the whole file was loaded with [`IvfPq::attach_rows`]).
    External {
        /// Whether the rows file is loaded into memory.
        attached: bool,
    },
    /// None: PQ scores only (`rerank = 0`).
    Compact,
}

/// A broken invariant, tagged with the file section it lives in so the
/// loader and the in-memory constructor can report it their own way.
pub(crate) type Invalid = (SectionKind, String);

impl IvfPq {
    /// Assembles an index from externally trained parts (e.g. FAISS):
    /// `centroids` is `nlist * dim` row-major, `lists` has `nlist` entries,
    /// `store` holds the int8 vectors of all docs (its length is the corpus
    /// size; every list id must be `< store.len()` and appear at most once).
    pub fn from_parts(
        dim: usize,
        centroids: Vec<f32>,
        pq: PqCodebook,
        lists: Vec<InvertedList>,
        by_residual: bool,
        store: Int8Store,
    ) -> Result<Self, BuildError> {
        check_dim(dim)?;
        let total: usize = lists.iter().map(|l| l.ids.len()).sum();
        let mut offsets = Vec::with_capacity(lists.len() + 1);
        let mut ids = Vec::with_capacity(total);
        let mut codes = Vec::with_capacity(total.saturating_mul(pq.m));
        offsets.push(0);
        for (l, list) in lists.into_iter().enumerate() {
            let expected = list.ids.len().saturating_mul(pq.m);
            if list.codes.len() != expected {
                return Err(BuildError::Invalid(format!(
                    "list {l}: {} code bytes for {} ids (m = {})",
                    list.codes.len(),
                    list.ids.len(),
                    pq.m
                )));
            }
            ids.extend_from_slice(&list.ids);
            codes.extend_from_slice(&list.codes);
            offsets.push(ids.len());
        }
        let index = Self {
            dim,
            centroids,
            pq,
            by_residual,
            offsets,
            ids,
            codes,
            n_docs: store.len(),
            store: Some(store),
            digests: None,
            lists_file: None,
        };
        index
            .validate()
            .map_err(|(section, reason)| BuildError::Invalid(format!("{section}: {reason}")))?;
        Ok(index)
    }

    /// Builds lists from f32 vectors with given (trained) coarse centroids
    /// and codebook: each vector goes to its max-inner-product centroid (as
    /// FAISS's `IndexFlatIP` quantizer does; ties to the lowest list) and is
    /// PQ-encoded (its residual when `by_residual`). Also builds the int8 store.
    pub fn build(
        vectors: &[f32],
        centroids: Vec<f32>,
        pq: PqCodebook,
        by_residual: bool,
    ) -> Result<Self, BuildError> {
        let dim = pq.dim;
        let store = Int8Store::quantize(dim, vectors)?;
        if centroids.is_empty() || !centroids.len().is_multiple_of(dim) {
            return Err(BuildError::Length {
                what: "coarse centroids (nlist * dim)",
                expected: (centroids.len() / dim).max(1) * dim,
                got: centroids.len(),
            });
        }
        let nlist = centroids.len() / dim;
        let mut lists = vec![InvertedList::default(); nlist];
        let mut residual = vec![0.0f32; dim];
        let mut code = vec![0u8; pq.m];
        for (doc, x) in (0u32..).zip(vectors.chunks_exact(dim)) {
            let l = nearest_list(&centroids, dim, x);
            let target = if by_residual {
                let c = &centroids[l * dim..(l + 1) * dim];
                for ((r, &a), &b) in residual.iter_mut().zip(x).zip(c) {
                    *r = a - b;
                }
                &residual
            } else {
                x
            };
            pq.encode_into(target, &mut code)?;
            lists[l].ids.push(doc);
            lists[l].codes.extend_from_slice(&code);
        }
        Self::from_parts(dim, centroids, pq, lists, by_residual, store)
    }

    /// Checks every invariant search relies on (so a validated index can
    /// never index out of bounds).
    pub(crate) fn validate(&self) -> Result<(), Invalid> {
        use SectionKind::*;
        let err = |s: SectionKind, r: String| Err((s, r));
        let dim = self.dim;
        if self.pq.dim != dim {
            return err(
                PqCentroids,
                format!("pq dim {} != index dim {dim}", self.pq.dim),
            );
        }
        if let Some(store) = &self.store {
            if store.dim != dim {
                return err(
                    Int8Codes,
                    format!("int8 dim {} != index dim {dim}", store.dim),
                );
            }
            if store.len() != self.n_docs {
                return err(
                    Int8Codes,
                    format!("{} int8 vectors for {} docs", store.len(), self.n_docs),
                );
            }
        }
        let in_memory = self.lists_in_memory();
        let trees = self.row_tree_levels().is_some();
        if let Some(digests) = &self.digests {
            let want = if in_memory && !trees { self.n_docs } else { 0 };
            if digests.len() != want {
                return err(
                    RowDigests,
                    format!("{} row digests for {} docs", digests.len(), self.n_docs),
                );
            }
        }
        if self.centroids.is_empty() || !self.centroids.len().is_multiple_of(dim) {
            return err(
                CoarseCentroids,
                format!("{} floats is not nlist * {dim}", self.centroids.len()),
            );
        }
        if self.centroids.iter().any(|v| !v.is_finite()) {
            return err(CoarseCentroids, "non-finite value".into());
        }
        let nlist = self.centroids.len() / dim;
        if self.offsets.len() != nlist + 1 {
            return err(
                ListOffsets,
                format!("{} offsets for {nlist} lists", self.offsets.len()),
            );
        }
        if self.offsets[0] != 0 || self.offsets.windows(2).any(|w| w[0] > w[1]) {
            return err(
                ListOffsets,
                "offsets must start at 0 and not decrease".into(),
            );
        }
        if let Some(file) = &self.lists_file {
            // Every entry of a list must have a leaf in its tree.
            if let Some(levels) = file.tree_levels() {
                if let Some(w) = self
                    .offsets
                    .windows(2)
                    .find(|w| (w[1] - w[0]) as u64 > 1u64 << levels)
                {
                    return err(
                        ListOffsets,
                        format!(
                            "a list of {} entries in row trees of {levels} levels",
                            w[1] - w[0]
                        ),
                    );
                }
            }
            if file.digests.len() != nlist {
                return err(
                    ListDigests,
                    format!("{} list digests for {nlist} lists", file.digests.len()),
                );
            }
            if self.store.is_some() && self.digests.is_none() {
                return err(
                    ListDigests,
                    "a lists file beside int8 vectors in the index".into(),
                );
            }
        }
        if !in_memory {
            // The lists are in their file: the root's offsets must account for every doc,
            // and what a fetched list holds is checked when it comes (`lists::decode`).
            if self.offsets[nlist] != self.n_docs || !self.ids.is_empty() {
                return err(
                    ListOffsets,
                    format!(
                        "last offset {} != {} docs",
                        self.offsets[nlist], self.n_docs
                    ),
                );
            }
            return Ok(());
        }
        if self.offsets[nlist] != self.ids.len() {
            return err(
                ListOffsets,
                format!(
                    "last offset {} != {} ids",
                    self.offsets[nlist],
                    self.ids.len()
                ),
            );
        }
        if Some(self.codes.len()) != self.ids.len().checked_mul(self.pq.m) {
            return err(
                ListCodes,
                format!("{} code bytes for {} ids", self.codes.len(), self.ids.len()),
            );
        }
        if self.pq.nbits < 8 {
            if let Some(c) = self
                .codes
                .iter()
                .find(|&&c| usize::from(c) >= self.pq.ksub())
            {
                return err(ListCodes, format!("code {c} >= ksub {}", self.pq.ksub()));
            }
        }
        let n = self.n_docs;
        if self.ids.len() != n {
            return err(
                ListIds,
                format!(
                    "{} list entries for {n} docs (every doc must be in one list)",
                    self.ids.len()
                ),
            );
        }
        let mut seen = vec![false; n];
        for &id in &self.ids {
            match seen.get_mut(id as usize) {
                None => return err(ListIds, format!("doc {id} >= {n} docs")),
                Some(true) => return err(ListIds, format!("doc {id} appears twice")),
                Some(s) => *s = true,
            }
        }
        Ok(())
    }

    /// Vector dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of docs.
    pub fn len(&self) -> usize {
        self.n_docs
    }

    /// Whether the index has no docs.
    pub fn is_empty(&self) -> bool {
        self.n_docs == 0
    }

    /// Number of inverted lists.
    pub fn nlist(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Whether codes encode residuals from the coarse centroid.
    pub fn by_residual(&self) -> bool {
        self.by_residual
    }

    /// The PQ codebook.
    pub fn pq(&self) -> &PqCodebook {
        &self.pq
    }

    /// Coarse centroids, `nlist * dim` row-major.
    pub fn centroids(&self) -> &[f32] {
        &self.centroids
    }

    /// The int8 re-ranking store in memory (`None` in a compact index and in
    /// an external one whose rows file is not attached).
    pub fn store(&self) -> Option<&Int8Store> {
        self.store.as_ref()
    }

    /// Where this index's re-ranking vectors live.
    pub fn rerank_rows(&self) -> RerankRows {
        match (&self.digests, &self.store) {
            (Some(_), store) => RerankRows::External {
                attached: store.is_some(),
            },
            (None, Some(_)) => RerankRows::Embedded,
            (None, None) => RerankRows::Compact,
        }
    }

    /// Drops the int8 re-ranking store: the index keeps only coarse
    /// centroids, the codebook and the lists (`m + 4` bytes per doc), and
    /// searches with `rerank = 0` only. Lists in memory leave their lists
    /// file (split again with [`IvfPq::into_split`]).
    pub fn into_compact(mut self) -> Self {
        self.store = None;
        self.digests = None;
        if self.lists_in_memory() {
            self.lists_file = None;
        }
        self
    }

    /// Moves the int8 vectors out into a rows file, returned alongside: the
    /// index keeps an 8-byte digest per doc (`m + 12` bytes per doc) and
    /// re-ranks with rows fetched per query ([`crate::Index::rerank`]) or with
    /// the whole file attached ([`IvfPq::attach_rows`]). Errors on an index
    /// without vectors (compact, or external and not attached). Lists in
    /// memory leave their lists file (split again with [`IvfPq::into_split`]).
    pub fn into_external(mut self) -> Result<(Self, Vec<u8>), BuildError> {
        let Some(store) = self.store.take() else {
            return Err(BuildError::Invalid(
                "this index holds no int8 vectors to move into a rows file".into(),
            ));
        };
        let (file, digests) = rows::encode(&store);
        self.digests = Some(digests);
        self.lists_file = None;
        Ok((self, file))
    }

    /// Moves the inverted lists out into a lists file, returned alongside:
    /// the index file keeps the centroids, the codebook, the list offsets and
    /// an 8-byte digest per list, and a client fetches the lists a query
    /// probes ([`crate::Index::missing_lists`]). With external rows, `rows`
    /// is their file ([`IvfPq::into_external`]'s) and comes back rewritten:
    /// each list ends with the root of the tree over its rows and each record
    /// carries its path ([`crate::row_tree`]), so neither the root nor a list
    /// holds anything per row. The lists stay in memory here. Errors on an
    /// index with its int8 vectors inside (they would ship whole with the
    /// root: use external rows or none), on one whose lists are not in
    /// memory, and on a rows file that is not this index's.
    pub fn into_split(mut self, rows: Option<Vec<u8>>) -> Result<Split, BuildError> {
        if !self.lists_in_memory() {
            return Err(BuildError::Invalid(
                "this index's lists are in a lists file that is not attached".into(),
            ));
        }
        if self.rerank_rows() == RerankRows::Embedded {
            return Err(BuildError::Invalid(
                "a lists file needs the re-ranking rows outside the index (external) or none"
                    .into(),
            ));
        }
        let leaves: Vec<Digest> = match (&self.digests, &rows) {
            (None, None) => Vec::new(),
            (Some(_), None) => {
                return Err(BuildError::Invalid(
                    "an index with external rows splits with its rows file".into(),
                ))
            }
            (None, Some(_)) => {
                return Err(BuildError::Invalid(
                    "this index has no external rows for a rows file".into(),
                ))
            }
            // The leaves are the rows themselves: a file that is not this index's fails here
            // rather than in a client.
            (Some(digests), Some(file)) => {
                if digests.is_empty() {
                    return Err(BuildError::Invalid(
                        "this index's rows are checked by its lists' trees: split the index \
                         its rows file was made from"
                            .into(),
                    ));
                }
                let record = rows::record_len(self.dim);
                let fits = file.len() as u64 == self.n_docs as u64 * record as u64;
                let leaves: Vec<Digest> = file.chunks_exact(record).map(rows::digest).collect();
                if !fits || *digests != leaves {
                    return Err(BuildError::Invalid(
                        "the rows file is not this index's (its length or a row differs)".into(),
                    ));
                }
                leaves
            }
        };
        let list_rows = match rows {
            None => ListRows::None,
            Some(_) => ListRows::Tree {
                levels: row_tree::levels_for(
                    (0..self.nlist() as u32)
                        .map(|l| self.list_len(l))
                        .max()
                        .unwrap_or(0),
                ),
            },
        };
        let encoded = lists::encode(
            &self.offsets,
            &self.ids,
            &self.codes,
            self.pq.m,
            list_rows,
            &leaves,
        );
        let rows = rows.map(|file| encoded.with_paths(&file, rows::record_len(self.dim)));
        if rows.is_some() {
            // Rows are checked along their paths from here on, not by digest.
            self.digests = Some(Vec::new());
        }
        self.lists_file = Some(ListsFile {
            digests: encoded.digests,
            attached: true,
            rows: list_rows,
            row_roots: encoded.roots,
        });
        Ok((self, encoded.file, rows))
    }

    /// Whether the lists are in memory: always, unless they are in a lists
    /// file that is not attached.
    pub fn lists_in_memory(&self) -> bool {
        self.lists_file.as_ref().is_none_or(|f| f.attached)
    }

    /// Whether the lists are kept in a separate lists file (attached or not).
    pub fn has_lists_file(&self) -> bool {
        self.lists_file.is_some()
    }

    fn shape(&self, file: &ListsFile) -> Shape {
        Shape {
            m: self.pq.m,
            rows: file.rows,
            n_docs: self.n_docs,
            ksub: self.pq.ksub(),
        }
    }

    /// Loads a whole lists file (e.g. on the pipeline side) after checking
    /// its length and every list's digest; searches then run in memory.
    pub fn attach_lists(&mut self, file: &[u8]) -> Result<(), RowError> {
        let lists_file = self.lists_file.as_ref().ok_or(RowError::NoListsFile)?;
        let shape = self.shape(lists_file);
        let expected = shape.file_len(self.nlist(), self.n_docs);
        if file.len() as u64 != expected {
            return Err(RowError::Length {
                what: "lists file".into(),
                expected,
                got: file.len() as u64,
            });
        }
        let mut ids = Vec::with_capacity(self.n_docs);
        let mut codes = Vec::with_capacity(self.n_docs * shape.m);
        let mut rows =
            (shape.rows == ListRows::Digests).then(|| vec![[0u8; ROW_DIGEST_LEN]; self.n_docs]);
        let mut roots = Vec::new();
        for (l, want) in (0u32..).zip(&lists_file.digests) {
            let range = self.list_range(l).ok_or(RowError::NoListsFile)?;
            let list = lists::decode(
                shape,
                l,
                self.list_len(l),
                want,
                &file[range.start as usize..range.end as usize],
            )?;
            if let Some(rows) = &mut rows {
                for (&id, d) in list.ids.iter().zip(&list.rows) {
                    rows[id as usize] = *d;
                }
            }
            roots.extend(list.tree.map(|(root, _)| root));
            ids.extend(list.ids);
            codes.extend(list.codes);
        }
        // In place; put back as it was if the whole is invalid (a doc in two lists).
        let rows = match (&self.digests, rows) {
            (Some(_), Some(rows)) => Some(rows),
            (Some(_), None) => Some(Vec::new()),
            (None, _) => None,
        };
        let before = std::mem::replace(&mut self.digests, rows);
        (self.ids, self.codes) = (ids, codes);
        self.set_attached(true, roots);
        if let Err((_, reason)) = self.validate() {
            (self.ids, self.codes, self.digests) = (Vec::new(), Vec::new(), before);
            self.set_attached(false, Vec::new());
            return Err(RowError::InvalidLists(reason));
        }
        Ok(())
    }

    fn set_attached(&mut self, attached: bool, row_roots: Vec<Digest>) {
        if let Some(f) = &mut self.lists_file {
            f.attached = attached;
            f.row_roots = row_roots;
        }
    }

    /// The levels of the trees its lists' rows are checked by, where they are.
    fn row_tree_levels(&self) -> Option<u32> {
        self.lists_file.as_ref().and_then(ListsFile::tree_levels)
    }

    /// Byte range of list `l` in the lists file, for a range request; `None`
    /// unless the index has a lists file and `l` is a list.
    pub fn list_range(&self, l: u32) -> Option<std::ops::Range<u64>> {
        let file = self.lists_file.as_ref()?;
        let start = *self.offsets.get(l as usize)?;
        let end = *self.offsets.get(l as usize + 1)?;
        Some(self.shape(file).record(l as usize, start, end))
    }

    /// Verifies `record` (list `l`, fetched from the lists file) against the
    /// root's digest and adds it to `lists`.
    pub fn insert_list(
        &self,
        lists: &mut FetchedLists,
        l: u32,
        record: &[u8],
    ) -> Result<(), RowError> {
        let file = self.lists_file.as_ref().ok_or(RowError::NoListsFile)?;
        let want = file
            .digests
            .get(l as usize)
            .ok_or(RowError::ListOutOfRange {
                list: l,
                nlist: self.nlist(),
            })?;
        let list = lists::decode(self.shape(file), l, self.list_len(l), want, record)?;
        lists.lists.insert(l, list);
        Ok(())
    }

    /// The lists a search for `query` probes that are neither in memory nor
    /// in `have`, best first: what a client fetches before
    /// [`IvfPq::candidates_in`].
    pub fn missing_lists(
        &self,
        query: &[f32],
        params: &SearchParams,
        have: &FetchedLists,
    ) -> Result<Vec<u32>, SearchError> {
        check_query(self.dim, query)?;
        if self.lists_in_memory() || self.n_docs == 0 {
            return Ok(Vec::new());
        }
        // An empty list has nothing to fetch (and no byte range to ask for).
        Ok(self
            .probes(query, params)
            .into_iter()
            .map(|p| p.doc)
            .filter(|&l| !have.contains(l) && self.list_len(l) > 0)
            .collect())
    }

    /// Entries in list `l` (a list of the index: callers pass probed or
    /// checked list numbers).
    fn list_len(&self, l: u32) -> usize {
        self.offsets[l as usize + 1] - self.offsets[l as usize]
    }

    /// The `nprobe` lists with the highest `<q, c_l>`, best first.
    fn probes(&self, query: &[f32], params: &SearchParams) -> Vec<Hit> {
        let nprobe = params.nprobe.clamp(1, self.nlist());
        let mut coarse = TopK::new(nprobe);
        for (l, c) in (0u32..).zip(self.centroids.chunks_exact(self.dim)) {
            coarse.push(l, dot_f32(query, c));
        }
        coarse.into_sorted()
    }

    /// The index with its re-ranking vectors kept where `store` says, and the rows file when
    /// they move out of it ([`IvfPq::into_compact`], [`IvfPq::into_external`]).
    pub fn with_rerank_store(
        self,
        store: RerankStore,
    ) -> Result<(Self, Option<Vec<u8>>), BuildError> {
        Ok(match store {
            RerankStore::Embedded => (self, None),
            RerankStore::None => (self.into_compact(), None),
            RerankStore::External => {
                let (index, rows) = self.into_external()?;
                (index, Some(rows))
            }
        })
    }

    /// Loads a whole rows file (e.g. on the pipeline side) after checking its
    /// length and every record's digest; searches then re-rank in memory.
    /// With row trees, the lists must be attached first: each row is
    /// checked along its path to its list's root.
    pub fn attach_rows(&mut self, file: &[u8]) -> Result<(), RowError> {
        let digests = self.digests.as_ref().ok_or(RowError::NotExternal)?;
        let Some(levels) = self.row_tree_levels() else {
            self.store = Some(rows::decode_file(self.dim, digests, file)?);
            return Ok(());
        };
        let roots = match &self.lists_file {
            Some(f) if f.attached => &f.row_roots,
            _ => return Err(RowError::DigestsInLists),
        };
        let (dim, n) = (self.dim, self.n_docs);
        let record = rows::record_len(dim) + row_tree::path_len(levels);
        let expected = (n as u64).saturating_mul(record as u64);
        if file.len() as u64 != expected {
            return Err(RowError::Length {
                what: "rows file".into(),
                expected,
                got: file.len() as u64,
            });
        }
        let mut store = Int8Store {
            dim,
            codes: vec![0; n * dim],
            scales: vec![0.0; n],
        };
        for (l, root) in roots.iter().enumerate() {
            let ids = &self.ids[self.offsets[l]..self.offsets[l + 1]];
            for (at, &doc) in (0u32..).zip(ids) {
                let check = RowCheck::Path {
                    root: *root,
                    at,
                    levels,
                };
                let r = rows::record_range(dim, levels, doc);
                let bytes = &file[r.start as usize..r.end as usize];
                let (scale, codes) = rows::decode_checked(dim, &check, doc, bytes)?;
                let d = doc as usize;
                store.scales[d] = scale;
                store.codes[d * dim..(d + 1) * dim].copy_from_slice(&codes);
            }
        }
        self.store = Some(store);
        Ok(())
    }

    /// Byte range of `doc`'s record in the rows file, for a range request;
    /// `None` unless the index is external and `doc` is in range.
    pub fn row_range(&self, doc: u32) -> Option<std::ops::Range<u64>> {
        self.digests.as_ref()?;
        let levels = self.row_tree_levels().unwrap_or(0);
        ((doc as usize) < self.n_docs).then(|| rows::record_range(self.dim, levels, doc))
    }

    /// Verifies `record` (fetched from the rows file) against `doc`'s digest
    /// and adds it to `rows`. With the lists in an unattached lists file, or
    /// row trees, the lists check the rows: verify with
    /// [`Candidates::insert_row`].
    pub fn insert_row(
        &self,
        rows: &mut FetchedRows,
        doc: u32,
        record: &[u8],
    ) -> Result<(), RowError> {
        let digests = self.digests.as_ref().ok_or(RowError::NotExternal)?;
        if !self.lists_in_memory() || self.row_tree_levels().is_some() {
            return Err(RowError::DigestsInLists);
        }
        let row = rows::decode(self.dim, digests, doc, record)?;
        rows.rows.insert(doc, row);
        Ok(())
    }

    /// Ids and codes of list `l`, or `None` when out of range or not in memory.
    pub fn list(&self, l: usize) -> Option<(&[u32], &[u8])> {
        if !self.lists_in_memory() {
            return None;
        }
        let (start, end) = (*self.offsets.get(l)?, *self.offsets.get(l + 1)?);
        let m = self.pq.m;
        Some((&self.ids[start..end], &self.codes[start * m..end * m]))
    }

    /// Top-`k` docs for `query`: probe the `nprobe` lists with the highest
    /// `<q, c_l>` (clamped to `1..=nlist`), score their codes with the lookup
    /// table, keep `max(k, rerank)` candidates and re-score the best `rerank`
    /// of them with the int8 vectors in memory (the rest keep their PQ
    /// scores; `rerank == 0`: none is re-scored). A compact index
    /// refuses `rerank > 0` rather than silently returning coarser scores, and
    /// an external one whose rows file is not attached asks for its rows
    /// ([`SearchError::RowsNotAttached`]: use [`crate::Index::candidates`]).
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        params: &SearchParams,
        filter: Option<&AllowList>,
    ) -> Result<Vec<Hit>, SearchError> {
        let candidates = self.candidates(query, k, params, filter)?;
        match (candidates.needs_rows(), &self.store) {
            (false, _) => Ok(candidates.into_first_stage()),
            (true, Some(store)) => candidates.rerank(query, store),
            (true, None) => Err(SearchError::RowsNotAttached),
        }
    }

    /// The first stage of [`IvfPq::search`]: the `max(k, rerank)` best docs
    /// by PQ score, and whether they still need re-ranking. Lists in an
    /// unattached lists file must be fetched first: [`IvfPq::candidates_in`].
    pub fn candidates(
        &self,
        query: &[f32],
        k: usize,
        params: &SearchParams,
        filter: Option<&AllowList>,
    ) -> Result<Candidates, SearchError> {
        self.candidates_in(query, k, params, filter, &FetchedLists::new())
    }

    /// [`IvfPq::candidates`] with the lists in memory, or else those in
    /// `fetched` (a probed list in neither is [`SearchError::MissingList`]).
    pub fn candidates_in(
        &self,
        query: &[f32],
        k: usize,
        params: &SearchParams,
        filter: Option<&AllowList>,
        fetched: &FetchedLists,
    ) -> Result<Candidates, SearchError> {
        check_query(self.dim, query)?;
        // Decided before scanning, so a compact index fails fast.
        if params.rerank > 0 && self.rerank_rows() == RerankRows::Compact {
            return Err(SearchError::NoRerankStore);
        }
        let n = self.len();
        if k == 0 || n == 0 {
            return Ok(Candidates::done(Vec::new(), k));
        }
        let in_memory = self.lists_in_memory();
        let mut lut = Vec::new();
        self.pq.ip_lut(query, &mut lut);
        let probes = self.probes(query, params);
        // No more candidates than entries scanned: with the lists in their file the doc count
        // is not bounded by the root's size, so neither may the allocation be.
        let scanned: usize = probes.iter().map(|p| self.list_len(p.doc)).sum();
        let cap = k.max(params.rerank).min(n).min(scanned);
        let mut top = TopK::new(cap);
        for probe in &probes {
            let base = if self.by_residual { probe.score } else { 0.0 };
            let (ids, codes) = if in_memory {
                let l = probe.doc as usize;
                let (start, end) = (self.offsets[l], self.offsets[l + 1]);
                (
                    &self.ids[start..end],
                    &self.codes[start * self.pq.m..end * self.pq.m],
                )
            } else if self.list_len(probe.doc) == 0 {
                continue;
            } else {
                let list = fetched
                    .lists
                    .get(&probe.doc)
                    .ok_or(SearchError::MissingList(probe.doc))?;
                (&list.ids[..], &list.codes[..])
            };
            match filter {
                Some(allow) => scan_list(&mut top, &lut, base, ids, codes, |d| allow.contains(d)),
                None => scan_list(&mut top, &lut, base, ids, codes, |_| true),
            }
        }
        let hits = top.into_sorted();
        let rescore = params.rerank.min(hits.len());
        // How the second stage checks fetched records: against the index's own row digests,
        // or against what the lists just probed say of the candidates they named (their
        // entries' digests, or their trees' roots).
        let row_checks = match (&self.digests, rescore > 0) {
            (Some(digests), true) => {
                let mut docs: Vec<u32> = hits[..rescore].iter().map(|h| h.doc).collect();
                docs.sort_unstable();
                let trees = self.lists_file.as_ref().zip(self.row_tree_levels());
                match (in_memory, trees) {
                    (true, Some((file, levels))) => lists::row_checks(
                        probes.iter().map(|p| {
                            let l = p.doc as usize;
                            let ids = &self.ids[self.offsets[l]..self.offsets[l + 1]];
                            let root = file.row_roots.get(l).copied().unwrap_or_default();
                            (ids, &[][..], Some((root, levels)))
                        }),
                        &docs,
                    ),
                    (true, _) => docs
                        .into_iter()
                        .filter_map(|doc| {
                            Some((doc, RowCheck::Digest(*digests.get(doc as usize)?)))
                        })
                        .collect(),
                    (false, _) => fetched.row_checks(probes.iter().map(|p| p.doc), &docs),
                }
            }
            _ => Vec::new(),
        };
        Ok(Candidates {
            hits,
            k,
            rescore,
            dim: self.dim,
            row_checks,
        })
    }
}

/// First-stage results, best first, before re-ranking.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidates {
    pub(crate) hits: Vec<Hit>,
    pub(crate) k: usize,
    /// How many of the best hits the second stage re-scores (`rerank`, at most all of them;
    /// 0: none). The others keep their first-stage scores.
    pub(crate) rescore: usize,
    pub(crate) dim: usize,
    /// With external rows, how each re-scored candidate's row is checked, by doc ascending.
    pub(crate) row_checks: Vec<(u32, RowCheck)>,
}

impl Candidates {
    /// Final results that need no second stage.
    pub(crate) fn done(hits: Vec<Hit>, k: usize) -> Self {
        Self {
            hits,
            k,
            rescore: 0,
            dim: 0,
            row_checks: Vec::new(),
        }
    }

    /// The candidates with their first-stage scores, best first.
    pub fn hits(&self) -> &[Hit] {
        &self.hits
    }

    /// Whether a second stage must re-score these with their rows.
    pub fn needs_rows(&self) -> bool {
        self.rescore > 0
    }

    /// Docs whose rows the second stage needs, ascending (empty when none):
    /// the records to fetch from a rows file.
    pub fn docs(&self) -> Vec<u32> {
        let mut docs: Vec<u32> = self.hits[..self.rescore].iter().map(|h| h.doc).collect();
        docs.sort_unstable();
        docs
    }

    /// Verifies a record fetched from the rows file as the index said for
    /// candidate `doc` (against its row digest, or along the path the record
    /// carries to its list's root), and adds it to `rows`: how a client that
    /// fetched the lists checks the rows (the index holds nothing per row).
    pub fn insert_row(
        &self,
        rows: &mut FetchedRows,
        doc: u32,
        record: &[u8],
    ) -> Result<(), RowError> {
        let i = self
            .row_checks
            .binary_search_by_key(&doc, |(d, _)| *d)
            .map_err(|_| RowError::NotACandidate(doc))?;
        let row = rows::decode_checked(self.dim, &self.row_checks[i].1, doc, record)?;
        rows.rows.insert(doc, row);
        Ok(())
    }

    /// The top `k` by first-stage score (no re-ranking).
    pub(crate) fn into_first_stage(mut self) -> Vec<Hit> {
        self.hits.truncate(self.k);
        self.hits
    }

    /// The second stage: re-scores the best `rescore` with `rows` and keeps the best `k`.
    pub(crate) fn rerank(
        self,
        query: &[f32],
        rows: &dyn RowSource,
    ) -> Result<Vec<Hit>, SearchError> {
        if !self.needs_rows() {
            return Ok(self.into_first_stage());
        }
        rows::rerank(query, self.hits, self.rescore, self.k, rows)
    }
}

/// Scores one inverted list with the lookup table (no allocation).
#[inline]
fn scan_list(
    top: &mut TopK,
    lut: &[[f32; 256]],
    base: f32,
    ids: &[u32],
    codes: &[u8],
    allowed: impl Fn(u32) -> bool,
) {
    for (&id, code) in ids.iter().zip(codes.chunks_exact(lut.len())) {
        if allowed(id) {
            top.push(id, base + lut_sum(lut, code));
        }
    }
}

/// Index of the centroid with the largest inner product with `x` (ties to
/// the lowest index).
fn nearest_list(centroids: &[f32], dim: usize, x: &[f32]) -> usize {
    let mut best = (f32::NEG_INFINITY, 0usize);
    for (l, c) in centroids.chunks_exact(dim).enumerate() {
        let s = dot_f32(x, c);
        if s > best.0 {
            best = (s, l);
        }
    }
    best.1
}

/// Where an IVF-PQ index keeps its int8 re-ranking vectors: in the index file (`true` in
/// configuration), nowhere, for a compact index searched without re-ranking (`false`), or in a
/// separate rows file fetched per query (`"external"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RerankStore {
    Embedded,
    External,
    None,
}

impl serde::Serialize for RerankStore {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            RerankStore::Embedded => s.serialize_bool(true),
            RerankStore::None => s.serialize_bool(false),
            RerankStore::External => s.serialize_str("external"),
        }
    }
}

impl<'de> serde::Deserialize<'de> for RerankStore {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = RerankStore;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("true, false or \"external\"")
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<RerankStore, E> {
                Ok(if v {
                    RerankStore::Embedded
                } else {
                    RerankStore::None
                })
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RerankStore, E> {
                match v {
                    "external" => Ok(RerankStore::External),
                    other => Err(E::invalid_value(serde::de::Unexpected::Str(other), &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
}
