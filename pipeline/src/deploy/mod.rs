//! Atomic deploys, rollback and promotion over directory targets, and the precompressed
//! variants of their artifacts.

pub mod encoding;
pub mod fsutil;
mod lock;
mod target;

pub use lock::DeployLock;
pub use target::{resolve_path, resolve_release, Admission, Target};
