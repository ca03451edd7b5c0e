use searchbar_release::ReleaseError;
use thiserror::Error;

/// Why a release could not be opened for queries, or a query not answered.
#[derive(Debug, Error)]
pub enum QueryError {
    /// A file or the manifest failed its check.
    #[error(transparent)]
    Release(#[from] ReleaseError),
    /// The release's files are each sound but do not fit together, or a query asked for what
    /// is not loaded yet.
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
    #[cfg(feature = "encoder")]
    #[error("encoder: {0}")]
    Encoder(#[from] searchbar_encoder::EncoderError),
    #[error("index: {0}")]
    Index(#[from] searchbar_index::SearchError),
}
