//! Atomic deploys, rollback and promotion over directory targets.

pub mod fsutil;
mod lock;
mod target;

pub use lock::DeployLock;
pub use target::{resolve_path, resolve_release, Admission, Target};
