//! The source-neutral table every reader produces before documents are assembled.

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

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawTable {
    /// `Quarantined::source` of its rows.
    pub origin: String,
    /// Column names when the source declares them (CSV header, SQL statement, JSONL keys seen);
    /// `None` when nothing could be read, so field names cannot be checked.
    pub columns: Option<Vec<String>>,
    pub rows: Vec<RawRow>,
}
