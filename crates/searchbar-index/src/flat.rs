//! Int8 vector store and the flat (exhaustive) index built on it.
//!
//! Each vector is quantized with its own scale (`x ≈ scale * q`,
//! `scale = max|x| / 127`), which for L2-normalised embeddings keeps the
//! relative error per component around 1/254 of the largest component.

use crate::error::{BuildError, SearchError};
use crate::filter::AllowList;
use crate::kernels::{dot_i8, quantize_i8};
use crate::topk::{Hit, TopK};
use crate::{check_query, SearchParams, MAX_DIM};

/// Row-major int8 vectors with one f32 dequantization scale per vector.
/// Used as the flat index itself and as the re-ranking store of IVF-PQ.
#[derive(Debug, Clone, PartialEq)]
pub struct Int8Store {
    pub(crate) dim: usize,
    pub(crate) codes: Vec<i8>,
    pub(crate) scales: Vec<f32>,
}

impl Int8Store {
    /// Quantizes row-major `vectors` (`n * dim` floats, all finite).
    pub fn quantize(dim: usize, vectors: &[f32]) -> Result<Self, BuildError> {
        check_dim(dim)?;
        if !vectors.len().is_multiple_of(dim) {
            return Err(BuildError::Length {
                what: "vectors (multiple of dim)",
                expected: vectors.len() / dim * dim,
                got: vectors.len(),
            });
        }
        if vectors.iter().any(|v| !v.is_finite()) {
            return Err(BuildError::Invalid(
                "vectors contain a non-finite value".into(),
            ));
        }
        let n = vectors.len() / dim;
        check_count(n)?;
        let mut codes = vec![0i8; vectors.len()];
        let scales = vectors
            .chunks_exact(dim)
            .zip(codes.chunks_exact_mut(dim))
            .map(|(x, q)| quantize_i8(x, q))
            .collect();
        Ok(Self { dim, codes, scales })
    }

    /// Wraps already-quantized parts: `codes` is `n * dim` row-major,
    /// `scales` has `n` finite, non-negative entries.
    pub fn from_parts(dim: usize, codes: Vec<i8>, scales: Vec<f32>) -> Result<Self, BuildError> {
        check_dim(dim)?;
        let expected = scales
            .len()
            .checked_mul(dim)
            .ok_or_else(|| BuildError::Invalid("n * dim overflows".into()))?;
        if codes.len() != expected {
            return Err(BuildError::Length {
                what: "int8 codes (n * dim)",
                expected,
                got: codes.len(),
            });
        }
        check_count(scales.len())?;
        validate_scales(&scales).map_err(BuildError::Invalid)?;
        Ok(Self { dim, codes, scales })
    }

    /// Number of vectors.
    pub fn len(&self) -> usize {
        self.scales.len()
    }

    /// Whether the store holds no vectors.
    pub fn is_empty(&self) -> bool {
        self.scales.is_empty()
    }

    /// Vector dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// All codes, row-major.
    pub fn codes(&self) -> &[i8] {
        &self.codes
    }

    /// Per-vector dequantization scales.
    pub fn scales(&self) -> &[f32] {
        &self.scales
    }

    /// The dequantized vector of `doc`, or `None` when out of range.
    pub fn dequantize(&self, doc: u32) -> Option<Vec<f32>> {
        let i = doc as usize;
        let scale = *self.scales.get(i)?;
        let row = self.codes.get(i * self.dim..(i + 1) * self.dim)?;
        Some(row.iter().map(|&c| scale * f32::from(c)).collect())
    }
}

/// Exhaustive search over an [`Int8Store`]. For small corpora.
///
/// Search is two-stage: an integer scan (int8 query · int8 docs, exact i32
/// accumulation, fast and bit-identical on every target) selects
/// `max(k, rerank)` candidates, the best `rerank` of which are then re-scored
/// with the f32 query against the int8 docs (the rest keep their scan scores).
/// `rerank = 0` returns the integer-scan scores.
#[derive(Debug, Clone, PartialEq)]
pub struct FlatInt8 {
    pub(crate) store: Int8Store,
}

impl FlatInt8 {
    /// Quantizes row-major f32 `vectors` (`n * dim`).
    pub fn build(dim: usize, vectors: &[f32]) -> Result<Self, BuildError> {
        Ok(Self {
            store: Int8Store::quantize(dim, vectors)?,
        })
    }

    /// Wraps an existing store.
    pub fn from_store(store: Int8Store) -> Self {
        Self { store }
    }

    /// The underlying int8 store.
    pub fn store(&self) -> &Int8Store {
        &self.store
    }

    /// Top-`k` docs by inner product with `query`; see the type docs for
    /// the role of `params.rerank` (`nprobe` is ignored).
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        params: &SearchParams,
        filter: Option<&AllowList>,
    ) -> Result<Vec<Hit>, SearchError> {
        check_query(self.store.dim, query)?;
        let n = self.store.len();
        if k == 0 || n == 0 {
            return Ok(Vec::new());
        }
        let cap = k.max(params.rerank).min(n);
        let mut qq = vec![0i8; self.store.dim];
        let qscale = quantize_i8(query, &mut qq);
        let top = match filter {
            Some(allow) => self.scan(&qq, qscale, cap, |d| allow.contains(d)),
            None => self.scan(&qq, qscale, cap, |_| true),
        };
        let candidates = top.into_sorted();
        if params.rerank == 0 {
            let mut hits = candidates;
            hits.truncate(k);
            return Ok(hits);
        }
        crate::rows::rerank(query, candidates, params.rerank, k, &self.store)
    }

    /// Integer scan; generic over the filter so the unfiltered loop has no
    /// per-doc branch on an `Option`.
    fn scan(&self, qq: &[i8], qscale: f32, cap: usize, allowed: impl Fn(u32) -> bool) -> TopK {
        let mut top = TopK::new(cap);
        let rows = self.store.codes.chunks_exact(self.store.dim);
        for (doc, (row, &scale)) in (0u32..).zip(rows.zip(&self.store.scales)) {
            if allowed(doc) {
                top.push(doc, dot_i8(qq, row) as f32 * (qscale * scale));
            }
        }
        top
    }
}

pub(crate) fn check_dim(dim: usize) -> Result<(), BuildError> {
    if dim == 0 || dim > MAX_DIM {
        return Err(BuildError::Dimension(format!(
            "dim {dim} not in 1..={MAX_DIM}"
        )));
    }
    Ok(())
}

/// Doc ordinals are `u32`, so a corpus has at most `u32::MAX` docs.
pub(crate) fn check_count(n: usize) -> Result<(), BuildError> {
    if u32::try_from(n).is_err() {
        return Err(BuildError::Invalid(format!("{n} docs exceed u32 ordinals")));
    }
    Ok(())
}

pub(crate) fn validate_scales(scales: &[f32]) -> Result<(), String> {
    match scales.iter().position(|s| !s.is_finite() || *s < 0.0) {
        Some(i) => Err(format!("scale of doc {i} is negative or non-finite")),
        None => Ok(()),
    }
}
