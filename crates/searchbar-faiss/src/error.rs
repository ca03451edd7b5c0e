//! Error type of this crate.

use searchbar_index::BuildError;
use thiserror::Error;

/// Everything that can go wrong while training, exporting or searching.
/// Bad input is always reported as one of these, never as a panic.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum FaissError {
    /// The dimension is zero, too large, or a buffer is not a whole number
    /// of vectors of that dimension.
    #[error("dimension: {0}")]
    Dimension(String),
    /// `m` (number of sub-quantizers) must be positive and divide `dim`.
    #[error("m = {m} must be positive and divide dim = {dim}")]
    MDoesNotDivideDim {
        /// Requested sub-quantizer count.
        m: usize,
        /// Vector dimension.
        dim: usize,
    },
    /// `nbits` (bits per sub-quantizer code) must be in `1..=8`.
    #[error("nbits = {0} not in 1..=8")]
    BadNbits(u32),
    /// `nlist` must be in `1..=` the number of training vectors.
    #[error("nlist = {nlist} must be in 1..={n_train} (the number of training vectors)")]
    BadNlist {
        /// Requested number of inverted lists.
        nlist: usize,
        /// Number of training vectors.
        n_train: usize,
    },
    /// Fewer training vectors than PQ centroids per sub-quantizer. (FAISS
    /// trains, with a warning, from `ksub` points on; it wants about
    /// `39 * ksub` for good codebooks.)
    #[error("{n_train} training vectors cannot train {ksub} PQ centroids per sub-quantizer (need at least {ksub}, ideally {ideal})", ideal = 39 * ksub)]
    TrainingSetTooSmall {
        /// Number of training vectors.
        n_train: usize,
        /// Centroids per sub-quantizer, `2^nbits`.
        ksub: usize,
    },
    /// An input vector or query contains NaN or infinity.
    #[error("{0} contain a non-finite value")]
    NonFinite(&'static str),
    /// More vectors than `u32` doc ordinals can address.
    #[error("{0} vectors exceed the u32 doc id range")]
    TooManyVectors(usize),
    /// A parameter outside what FAISS or the index format supports.
    #[error("invalid parameter: {0}")]
    InvalidParam(String),
    /// FAISS itself reported an error (C++ exception text from
    /// `faiss_get_last_error`).
    #[error("FAISS {op} failed: {message}")]
    Faiss {
        /// The operation that failed.
        op: &'static str,
        /// FAISS's message.
        message: String,
    },
    /// FAISS's serialized index could not be parsed.
    #[error("FAISS serialized index: field {field} at byte {offset}: {reason}")]
    Format {
        /// The field being read, named as in `faiss/impl/index_write.cpp`.
        field: &'static str,
        /// Byte offset where the field starts.
        offset: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// Two views of the trained FAISS index disagree (e.g. the C API and the
    /// serialized form), or FAISS returned something inconsistent.
    #[error("export: {0}")]
    Export(String),
    /// `searchbar-index` rejected the exported parts.
    #[error("searchbar-index rejected the export: {0}")]
    Build(#[from] BuildError),
}

impl FaissError {
    /// Wraps an error of the `faiss` crate for operation `op`.
    pub(crate) fn native(op: &'static str) -> impl FnOnce(faiss::error::Error) -> FaissError {
        move |e| FaissError::Faiss {
            op,
            message: match e {
                faiss::error::Error::Native(n) => n.msg().to_owned(),
                other => other.to_string(),
            },
        }
    }
}
