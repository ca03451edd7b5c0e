//! Atomic deploys, rollback and promotion over directory and S3-compatible targets, the
//! precompressed variants of their artifacts, and the headers a host sends with them.

mod aws_profile;
pub mod bucket;
pub mod encoding;
pub mod fsutil;
pub mod headers;
mod lock;
mod target;

pub use lock::DeployLock;
pub use target::{resolve_path, resolve_release, Admission, Target};
