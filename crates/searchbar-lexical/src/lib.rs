//! The lexical half of hybrid search: BM25F over the documents' titles and text, in a static
//! format split into fragments so that a page fetches only the dictionary chunks of its
//! query's own terms (docs/lexical-format.md).
//!
//! [`build`] is the writing side (the pipeline); [`LexicalIndex`] the reading side (the page,
//! the CLI and the evaluation, which all rank through [`LexicalIndex::search`]). Both analyse
//! text with the one [`Analyzer`], configured from the root.

mod analyze;
mod build;
mod format;
mod search;

pub use analyze::{
    ends_in_word, fold, languages, use_stemmer, Analysis, Analyzer, Word, ENGLISH_STOP_WORDS,
    MAX_TERM_CHARS,
};
pub use build::{build, BuildConfig, Built, DEFAULT_BUDGET};
pub use format::{
    Block, BlockRef, DictChunks, Entry, Fragment, Keys, Meta, Root, Segment, TypoEntry,
    FORMAT_VERSION,
};
pub use search::{
    typo_keys, within_one_edit, Hit, LexicalIndex, Loaded, Matches, Outcome, MIN_PREFIX_CHARS,
    MIN_TYPO_CHARS,
};

/// Why an index could not be built, loaded or searched.
#[derive(Debug, thiserror::Error)]
pub enum LexicalError {
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
    #[error("lexical settings: {0}")]
    Config(String),
    #[error("lexical fragments {0:?} are not loaded")]
    Missing(Vec<usize>),
}
