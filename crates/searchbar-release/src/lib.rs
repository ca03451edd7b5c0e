//! The searchbar release format, both ways.
//!
//! A deploy target holds immutable releases and one pointer ([`layout`] is where each sits).
//! The writer ([`ReleaseWriter`]) names the artifacts by content and records them for the
//! [`Manifest`]; the reader ([`Manifest::from_json`], [`FileRef::verify`]) checks them. The
//! manifest also carries how a release ranks ([`Ranking`], applied by [`rank`]).
//!
//! This crate knows nothing of the encoder or the indexes: the query path over a release is
//! `searchbar-query`'s, so what only reads or writes releases (deploy, the end-to-end tests)
//! does not link the model runtime.

mod docs;
mod error;
mod fusion;
pub mod layout;
mod manifest;
mod merkle;
mod table;
mod writer;

pub use docs::{shard_docs, DocRecord, DocShards};
pub use error::ReleaseError;
pub use fusion::{rank, Fusion, Ranking, SearchMode, FUSION_DEPTH, RRF_K};
pub use layout::{
    FILES_DIR, FILES_PREFIX, MANIFEST_NAME, PAGE_NAME, POINTER_NAME, RELEASES_DIR, TARGET_ROOT,
};
pub use manifest::{
    content_name, sha256_hex, sha256_matches, stemmer_language, DataInfo, Evaluation, FileRef,
    Files, LexicalFiles, Manifest, ModeScores, ModelInfo, PipelineInfo, Pointer, SearchInfo,
    TokenFiles, MANIFEST_FORMAT, SHORT_SHA256, STEMMER_PREFIX,
};
pub use table::page_entries;
pub use table::{Fetch, PartList, PartTable, Parts, ReadParts, Want, LIST_UP_TO, MAX_PER_PAGE};
pub use writer::{page_ref, snippet, ReleaseWriter};
