//! The one query path over a release, and the result rows it shows.
//!
//! The pipeline's `searchbar query` and `searchbar evaluate` and the web app all answer
//! queries through [`Searcher`], so the numbers the gate checks are the numbers users get.
//! A [`Searcher`] opens from a release's [`Manifest`](searchbar_release::Manifest) and the
//! bytes of its files ([`Artifacts`]), verifying each against the manifest; it ranks with
//! [`searchbar_release::rank`] under the release's own settings.

#[cfg(feature = "encoder")]
mod encoder;
mod error;
#[cfg(feature = "browser")]
pub mod fetch;
mod highlight;
mod markup;
mod searcher;

#[cfg(feature = "encoder")]
pub use encoder::{query_encoder_config, QueryEncoder};
pub use error::QueryError;
pub use highlight::Terms;
pub use markup::{escape_into, option_id, rows_html};
pub use searchbar_index::Hit;
pub use searchbar_lexical;
pub use searcher::{
    Artifacts, Dense, Lexical, ListRequest, QueryHit, RowRequest, Searcher, Stage, TokenRequest,
    TokenSpan,
};
