//! The searchbar release format, both ways, and the one query path over it.
//!
//! A deploy target holds immutable releases and one pointer ([`layout`] is where each sits).
//! The writer ([`ReleaseWriter`]) names the artifacts by content and records them for the
//! [`Manifest`]; the readers ([`Manifest::from_json`], [`Searcher::load`]) verify them.
//!
//! The pipeline's `searchbar query` and `searchbar evaluate` and the web app all answer
//! queries through [`Searcher`], so the numbers the gate checks are the numbers users get.

mod docs;
mod error;
mod fusion;
mod highlight;
pub mod layout;
mod manifest;
mod markup;
mod searcher;
mod writer;

pub use docs::{shard_docs, DocRecord};
pub use error::ReleaseError;
pub use fusion::{rank, Fusion, Ranking, SearchMode, FUSION_DEPTH, RRF_K};
pub use highlight::Terms;
pub use layout::{
    FILES_DIR, FILES_PREFIX, LOADER_NAME, MANIFEST_NAME, PAGE_NAME, POINTER_NAME, RELEASES_DIR,
    TARGET_ROOT,
};
pub use manifest::{
    content_name, sha256_hex, DataInfo, Evaluation, FileRef, Files, LexicalFiles, Manifest,
    ModeScores, ModelInfo, PipelineInfo, Pointer, SearchInfo, MANIFEST_FORMAT,
};
pub use markup::{option_id, rows_html};
pub use searchbar_index::Hit;
pub use searchbar_lexical;
pub use searcher::{
    query_encoder_config, Artifacts, Dense, Lexical, QueryHit, RowRequest, Searcher, Stage,
};
pub use writer::{page_ref, snippet, ReleaseWriter};
