//! Atomic deploys, rollback and promotion over directory targets.

pub mod fsutil;
mod lock;
mod target;

pub use target::{resolve_path, resolve_release, Target};
