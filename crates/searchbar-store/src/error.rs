//! Errors of loading, checking and snapshotting. Each names the file or source and, where there
//! is one, the line or row and the field.

use std::path::PathBuf;

use crate::config::ConfigError;

/// Everything that stops a load, a quarantine check or a snapshot read/write.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A config section failed [`validate`](crate::config::SourceConfig::validate).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A file could not be parsed as a whole (header, seed CSV, snapshot line).
    #[error("{}{}: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line, when known.
        line: Option<u64>,
        /// What is wrong.
        message: String,
    },
    /// The template or a `[documents]` key names a field the source does not have.
    #[error(
        "`{key}` refers to field `{field}`, which {origin} does not have (fields: {available})"
    )]
    UnknownField {
        /// Config key, e.g. `documents.template`.
        key: String,
        /// The missing field.
        field: String,
        /// Source description.
        origin: String,
        /// Comma-separated fields the source does have.
        available: String,
    },
    /// `source.url_env` names a variable that is not set.
    #[error("environment variable {var} is not set: set it to the PostgreSQL connection string (source.url_env = \"{var}\")")]
    MissingEnv {
        /// The variable to set.
        var: String,
    },
    /// A SQLite call failed.
    #[error("sqlite:{}: {context}: {source}", path.display())]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// What was being done (`query`, `topics query`, `seed table x`...).
        context: String,
        /// The driver error.
        #[source]
        source: rusqlite::Error,
    },
    /// A PostgreSQL call failed (the connection string is never echoed: it holds a password).
    #[error("postgres: {context}: {source}")]
    Postgres {
        /// What was being done.
        context: String,
        /// The driver error.
        #[source]
        source: postgres::Error,
    },
    /// The PostgreSQL server could not be reached, or would not talk TLS as `sslmode` asks.
    #[error("postgres: {message}")]
    PostgresConnect {
        /// What failed, with the variable the URL came from (never the URL: it holds a password).
        message: String,
    },
    /// More rows were quarantined than `validation.max_quarantine_share` allows.
    #[error(
        "{quarantined} of {total} rows quarantined (share {share:.4}) exceeds validation.max_quarantine_share = {limit}"
    )]
    QuarantineExceeded {
        /// Quarantined rows.
        quarantined: usize,
        /// Documents plus quarantined rows.
        total: usize,
        /// quarantined / total.
        share: f64,
        /// The configured limit.
        limit: f64,
    },
    /// The source gave no document at all: publishing an empty search would look like an outage.
    #[error("{origin} gave no documents ({quarantined} row(s), all quarantined): check the file, query or filter")]
    NoDocuments {
        /// The source.
        origin: String,
        /// Rows it had, all quarantined.
        quarantined: usize,
    },
    /// A snapshot is inconsistent (hash or fingerprint mismatch, unsorted or duplicate ids).
    #[error("corrupt snapshot {}: {message}", path.display())]
    CorruptSnapshot {
        /// The snapshot file.
        path: PathBuf,
        /// What does not match.
        message: String,
    },
    /// Drift statistics got unusable input (too few vectors, mixed dimensions).
    #[error("drift input: {message}")]
    DriftInput {
        /// What is wrong.
        message: String,
    },
    /// Two documents handed to [`Snapshot::new`](crate::Snapshot::new) share an id.
    #[error("duplicate document id `{id}` in snapshot input")]
    DuplicateId {
        /// The repeated id.
        id: String,
    },
}

impl StoreError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn parse(
        path: impl Into<PathBuf>,
        line: Option<u64>,
        message: impl Into<String>,
    ) -> Self {
        Self::Parse {
            path: path.into(),
            line,
            message: message.into(),
        }
    }
}
