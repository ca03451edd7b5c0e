use thiserror::Error;

/// Why a release could not be loaded or queried.
#[derive(Debug, Error)]
pub enum ReleaseError {
    #[error("{file}: sha256 is {actual}, the manifest says {expected}; refusing a corrupted or mixed release")]
    HashMismatch {
        file: String,
        expected: String,
        actual: String,
    },
    #[error("{file}: {bytes} bytes, the manifest says {expected}")]
    SizeMismatch {
        file: String,
        bytes: u64,
        expected: u64,
    },
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
    #[error("manifest format {found} is not supported (this build reads format {supported})")]
    UnsupportedFormat { found: u32, supported: u32 },
    #[error("encoder: {0}")]
    Encoder(#[from] searchbar_encoder::EncoderError),
    #[error("index: {0}")]
    Search(#[from] searchbar_index::SearchError),
}
