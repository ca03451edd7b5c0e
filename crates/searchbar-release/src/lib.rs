//! A searchbar release as the browser sees it, and the one query path over it.
//!
//! A deploy target holds immutable releases and one pointer:
//!
//! ```text
//! <target>/current.json               pointer to the live release (never cached)
//! <target>/index.html                 stable loader: reads the pointer, opens the release
//! <target>/files/<name>-<hash>.<ext>  content-addressed artifacts shared by releases
//! <target>/releases/<id>/             one release: manifest.json, the web app's index.html
//! ```
//!
//! The pipeline's `searchbar query` and `searchbar evaluate` and the web app all answer
//! queries through [`Searcher`], so the numbers the gate checks are the numbers users get.

mod docs;
mod error;
mod highlight;
mod manifest;
mod markup;
mod searcher;

pub use docs::{shard_docs, DocRecord};
pub use error::ReleaseError;
pub use highlight::Terms;
pub use manifest::{
    content_name, sha256_hex, DataInfo, Evaluation, FileRef, Files, Manifest, ModelInfo,
    PipelineInfo, Pointer, SearchInfo, FILES_PREFIX, MANIFEST_FORMAT, MANIFEST_NAME, PAGE_NAME,
    POINTER_NAME,
};
pub use markup::{option_id, rows_html};
pub use searcher::{Artifacts, QueryHit, RowRequest, Searcher, Stage};
