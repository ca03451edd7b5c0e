use thiserror::Error;

/// Why a release's pointer, manifest or file could not be read.
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
    #[error(
        "manifest format {found} is not supported (this build reads formats {oldest} to {newest})"
    )]
    UnsupportedFormat {
        found: u32,
        oldest: u32,
        newest: u32,
    },
}
