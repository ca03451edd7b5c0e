//! Error types. Every failure a caller can trigger with bad input (bytes,
//! parts, queries, judgment files) is one of these, never a panic.

use crate::format::SectionKind;
use thiserror::Error;

/// Why a byte buffer could not be loaded as an [`Index`](crate::Index).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FormatError {
    /// The buffer ends before a fixed-size or declared region.
    #[error("{what} truncated: need {needed} bytes, have {available}")]
    Truncated {
        /// Which region was cut short (e.g. "header", "metadata").
        what: &'static str,
        /// Bytes the region needs.
        needed: u64,
        /// Bytes actually available.
        available: u64,
    },
    /// The first 8 bytes are not [`MAGIC`](crate::format::MAGIC).
    #[error("bad magic bytes: not a searchbar index")]
    BadMagic,
    /// The file declares a format version this build cannot read.
    #[error("unsupported format version {0} (this build reads versions {min} to {max})", min = crate::format::MIN_READ_VERSION, max = crate::format::FORMAT_VERSION)]
    UnsupportedVersion(u32),
    /// Unknown index kind code in the header.
    #[error("unknown index kind {0}")]
    UnknownKind(u32),
    /// Unknown similarity metric code in the header.
    #[error("unsupported metric {0} (only 1 = inner product)")]
    UnsupportedMetric(u32),
    /// The header's kind disagrees with the kind of the parameter block.
    #[error("header kind {header} does not match metadata kind {meta}")]
    KindMismatch {
        /// Kind code in the fixed header.
        header: u32,
        /// Kind code implied by the metadata parameters.
        meta: u32,
    },
    /// A header or parameter field is outside what the format allows.
    #[error("invalid field {field} = {value}: {reason}")]
    InvalidField {
        /// Field name as in docs/index-format.md.
        field: &'static str,
        /// Value found.
        value: u64,
        /// Constraint that failed.
        reason: &'static str,
    },
    /// A count field implies more bytes than the whole file has.
    #[error("count field {field} = {value} exceeds what a {file_len}-byte file can hold")]
    CountExceedsFileSize {
        /// Field name.
        field: &'static str,
        /// Value found.
        value: u64,
        /// Length of the whole buffer.
        file_len: u64,
    },
    /// The header + metadata checksum does not match.
    #[error("checksum mismatch for header/metadata")]
    HeaderChecksumMismatch,
    /// The bincode metadata block could not be decoded.
    #[error("metadata malformed: {0}")]
    BadMetadata(String),
    /// The section table names an unknown section kind.
    #[error("unknown section kind {0}")]
    UnknownSection(u32),
    /// A section appears twice in the table.
    #[error("duplicate section {0}")]
    DuplicateSection(SectionKind),
    /// A section the index kind needs is absent.
    #[error("section {0} missing")]
    MissingSection(SectionKind),
    /// A section that this index kind does not use is present.
    #[error("unexpected section {0} for this index kind")]
    UnexpectedSection(SectionKind),
    /// A section does not start at a multiple of [`ALIGN`](crate::format::ALIGN).
    #[error("section {section} at offset {offset} is not {align}-byte aligned", align = crate::format::ALIGN)]
    Misaligned {
        /// Section.
        section: SectionKind,
        /// Its declared offset.
        offset: u64,
    },
    /// A section starts inside the header/metadata or overlaps another section.
    #[error("section {0} overlaps the header or another section")]
    SectionOverlap(SectionKind),
    /// A section extends past the end of the buffer.
    #[error("section {section} truncated: ends at byte {end}, file has {file_len}")]
    SectionTruncated {
        /// Section.
        section: SectionKind,
        /// Declared end offset (saturating).
        end: u64,
        /// Length of the whole buffer.
        file_len: u64,
    },
    /// A section's byte length disagrees with the counts in the header/params.
    #[error("section {section} has {found} bytes, counts imply {expected}")]
    SectionLength {
        /// Section.
        section: SectionKind,
        /// Length the header/params imply.
        expected: u64,
        /// Length the section table declares.
        found: u64,
    },
    /// The SHA-256 of a section's bytes does not match the table.
    #[error("checksum mismatch for section {0}")]
    ChecksumMismatch(SectionKind),
    /// A section's contents break an invariant (offsets not monotonic,
    /// doc id out of range, code >= 2^nbits, non-finite float...).
    #[error("section {section} invalid: {reason}")]
    InvalidSection {
        /// Section.
        section: SectionKind,
        /// What is wrong.
        reason: String,
    },
}

/// Why an index could not be built from in-memory parts.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BuildError {
    /// A dimension-like parameter is zero, too large or inconsistent.
    #[error("invalid dimension: {0}")]
    Dimension(String),
    /// An array length disagrees with the declared shape.
    #[error("{what}: expected length {expected}, got {got}")]
    Length {
        /// Which array.
        what: &'static str,
        /// Expected length.
        expected: usize,
        /// Actual length.
        got: usize,
    },
    /// A value is out of range (nbits, code, doc id, non-finite float...).
    #[error("invalid value: {0}")]
    Invalid(String),
}

/// Why a search could not run.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SearchError {
    /// The query has a different dimension than the index.
    #[error("query has dimension {got}, index has {expected}")]
    DimensionMismatch {
        /// Index dimension.
        expected: usize,
        /// Query length.
        got: usize,
    },
    /// The query contains NaN or infinity (scores would be meaningless).
    #[error("query contains a non-finite value")]
    NonFiniteQuery,
    /// Re-ranking was asked of a compact IVF-PQ index, which ships no int8
    /// vectors (search it with `rerank = 0`).
    #[error("this index has no int8 vectors to re-rank with: search it with rerank = 0")]
    NoRerankStore,
    /// The index keeps its re-ranking vectors in a separate rows file that
    /// was not attached: fetch the candidates' rows and call
    /// [`Index::rerank`](crate::Index::rerank), or attach the whole file.
    #[error("this index re-ranks with a separate rows file: attach it, or fetch the candidates' rows and call rerank")]
    RowsNotAttached,
    /// The index keeps its lists in a lists file, and a list the search probes was neither
    /// attached nor fetched ([`Index::missing_lists`](crate::Index::missing_lists)).
    #[error("inverted list {0} is not loaded: fetch it from the lists file first")]
    MissingList(u32),
    /// A row [`Index::rerank`](crate::Index::rerank) needs was not given.
    #[error("no re-ranking row was given for candidate doc {0}")]
    MissingRow(u32),
    /// A candidate's record in the rows file, or a probed list in the lists file, is
    /// missing or does not match.
    #[error("{0}")]
    Row(#[from] RowError),
}

/// A re-ranking row or an inverted list (or a whole rows or lists file) does not belong to
/// the index.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RowError {
    /// The index ships its int8 vectors itself (or none): it has no rows file.
    #[error("this index has no separate rows file")]
    NotExternal,
    /// The doc ordinal is not in the index.
    #[error("doc {doc} is out of range ({n} docs)")]
    DocOutOfRange {
        /// Doc ordinal asked for.
        doc: u32,
        /// Docs in the index.
        n: usize,
    },
    /// A record or file has the wrong number of bytes.
    #[error("{what}: expected {expected} bytes, got {got}")]
    Length {
        /// The record (`row of doc N`) or `rows file`.
        what: String,
        /// Bytes the index implies.
        expected: u64,
        /// Bytes given.
        got: u64,
    },
    /// The record's digest differs from the one the index holds for the doc:
    /// a corrupt, stale or foreign rows file.
    #[error("row of doc {0} does not match the index's digest (corrupt or from another release)")]
    DigestMismatch(u32),
    /// A record was given for a doc that is not among the candidates.
    #[error("doc {0} is not a candidate of this search")]
    NotACandidate(u32),
    /// The index's lists check its rows (row digests in a lists file not attached, or trees
    /// over each list's rows): rows are verified against the candidates that named them
    /// (`Candidates::insert_row`), or, with trees, as a whole file once the lists are attached.
    #[error("this index's rows are checked by its lists: verify rows with the candidates")]
    DigestsInLists,
    /// The index keeps its lists inside its own file.
    #[error("this index has no separate lists file")]
    NoListsFile,
    /// The list number is not a list of the index.
    #[error("list {list} is out of range ({nlist} lists)")]
    ListOutOfRange {
        /// List asked for.
        list: u32,
        /// Lists in the index.
        nlist: usize,
    },
    /// The list's digest differs from the one the index holds for it: a corrupt, stale or
    /// foreign lists file.
    #[error("list {0} does not match the index's digest (corrupt or from another release)")]
    ListDigestMismatch(u32),
    /// A list that matches its digest names a doc or a code the index cannot have.
    #[error("list {list}: {reason}")]
    InvalidList {
        /// The list.
        list: u32,
        /// What is wrong.
        reason: String,
    },
    /// A whole lists file breaks an invariant (a doc in two lists).
    #[error("lists file: {0}")]
    InvalidLists(String),
}

/// A BEIR judgment or query file could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{file}:{line}: {message}")]
pub struct ParseError {
    /// File name as given by the caller (used only in the message).
    pub file: String,
    /// 1-based line number.
    pub line: usize,
    /// What is wrong with the line.
    pub message: String,
}
