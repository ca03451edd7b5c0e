//! Feature store of searchbar: loads the catalog from JSONL, CSV, SQLite or PostgreSQL into
//! validated documents (bad rows quarantined, never fatal), freezes them into canonical
//! content-addressed snapshots, diffs snapshots, and measures drift between catalog versions.
//!
//! See `docs/sources.md` for the config keys and file formats.

pub mod atomic;
pub mod config;
pub mod document;
pub mod drift;
pub mod error;
pub mod snapshot;
mod source;
pub mod template;

pub use config::{
    ConfigError, DocumentsConfig, DriftConfig, SourceConfig, SourceKind, TopicsConfig,
    ValidationConfig,
};
pub use document::{Document, Ingested, Quarantined};
pub use drift::{drift_report, DriftReport};
pub use error::StoreError;
pub use snapshot::{diff, ChangeSet, Snapshot, SnapshotDocument};
pub use source::load;
