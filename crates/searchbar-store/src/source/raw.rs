//! The source-neutral table every reader produces before documents are assembled.

use crate::error::StoreError;

/// One column value, already converted to text where the type allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cell {
    Null,
    Text(String),
    /// A value that cannot become text; the string says why (`bad type: object`, `invalid UTF-8`).
    Bad(String),
}

/// Why a whole row could not be read (malformed JSON, wrong field count, invalid UTF-8 line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fault {
    pub field: Option<String>,
    pub reason: String,
}

impl Fault {
    pub fn row(reason: impl Into<String>) -> Self {
        Self {
            field: None,
            reason: reason.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawRow {
    /// 1-based line (files) or ordinal (SQL).
    pub row: u64,
    pub cells: Result<Vec<(String, Cell)>, Fault>,
}

/// Rows as the source yields them: one at a time, so a large source is never held twice. An
/// `Err` is a source that stopped being readable part way (I/O error, lost connection).
pub(crate) type Rows<'a> = Box<dyn Iterator<Item = Result<RawRow, StoreError>> + 'a>;

pub(crate) struct RawTable<'a> {
    /// `Quarantined::source` of its rows.
    pub origin: String,
    /// Column names when the source declares them up front (CSV header, SQL statement); `None`
    /// for JSONL, whose fields are the keys seen on any line, known only at the end.
    pub columns: Option<Vec<String>>,
    pub rows: Rows<'a>,
}

impl<'a> RawTable<'a> {
    pub fn collected(origin: String, columns: Option<Vec<String>>, rows: Vec<RawRow>) -> Self {
        Self {
            origin,
            columns,
            rows: Box::new(rows.into_iter().map(Ok)),
        }
    }
}
