//! Config sections embedded in the pipeline's `searchbar.toml`: `[source]`, `[documents]`,
//! `[validation]` and `[drift]`. The pipeline parses the file; these types only define the shape,
//! the defaults and a `validate` that names the offending key.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::template::Template;

/// A config value that parsed but makes no sense; `key` is the dotted TOML path (`source.query`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid config key `{key}`: {message}")]
pub struct ConfigError {
    /// Dotted TOML path of the bad key, e.g. `source.query`.
    pub key: String,
    /// What is wrong with it.
    pub message: String,
}

impl ConfigError {
    fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Where the catalog comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// One JSON object per line.
    Jsonl,
    /// Header row plus records.
    Csv,
    /// A SQLite database file queried with `source.query`.
    Sqlite,
    /// A PostgreSQL server (connection string in the env var named by `source.url_env`).
    Postgres,
}

impl SourceKind {
    /// True for the kinds read from a file rather than a SQL query.
    pub fn is_file(self) -> bool {
        matches!(self, Self::Jsonl | Self::Csv)
    }
}

/// `[source]`: where documents are read from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SourceConfig {
    /// Source kind.
    pub kind: SourceKind,
    /// JSONL/CSV file or SQLite database file; relative paths resolve against the caller's base
    /// dir.
    pub path: PathBuf,
    /// SQL query for `sqlite` and `postgres`.
    pub query: String,
    /// Name of the env var holding the PostgreSQL connection string (never the secret itself).
    pub url_env: String,
    /// Optional one-to-many table folded into one document field.
    pub topics: Option<TopicsConfig>,
    /// SQLite only: table name -> CSV path, used to create the database when the file is missing.
    pub seed: BTreeMap<String, PathBuf>,
    /// Files: a record (CSV row, JSONL line) longer than this is quarantined as over-long, read
    /// past without being held in memory.
    pub max_record_bytes: usize,
    /// PostgreSQL: seconds to wait for the server to accept the connection and log in.
    pub connect_timeout_s: u64,
    /// PostgreSQL: seconds a query may run on the server (`statement_timeout`); 0 turns it off.
    pub statement_timeout_s: u64,
}

impl Default for SourceConfig {
    fn default() -> Self {
        Self {
            kind: SourceKind::Sqlite,
            path: PathBuf::from(".searchbar/catalog.sqlite"),
            query: "SELECT id, title, description, learn, domain, url FROM projects".into(),
            url_env: "SEARCHBAR_PG_URL".into(),
            topics: None,
            seed: BTreeMap::new(),
            max_record_bytes: 8 << 20,
            connect_timeout_s: 10,
            statement_timeout_s: 600,
        }
    }
}

/// `[source.topics]`: rows grouped per document id and concatenated into one field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TopicsConfig {
    /// File for file sources (CSV or JSONL, chosen by extension).
    pub path: Option<PathBuf>,
    /// Query for SQL sources.
    pub query: Option<String>,
    /// Column holding the document id.
    pub key: String,
    /// Column holding the value.
    pub field: String,
    /// Name of the resulting document field.
    pub into: String,
    /// Joins the values of one document.
    pub separator: String,
}

impl Default for TopicsConfig {
    fn default() -> Self {
        Self {
            path: None,
            query: None,
            key: "project_id".into(),
            field: "topic".into(),
            into: "topics".into(),
            separator: ", ".into(),
        }
    }
}

/// `[documents]`: how a row becomes a searchable document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DocumentsConfig {
    /// Id column.
    pub id: String,
    /// Indexed text; `{field}` placeholders, missing/NULL values render empty.
    pub template: String,
    /// Field shown as the result title.
    pub title: String,
    /// Optional field holding a link; `""` means none (TOML has no null).
    pub url: Option<String>,
    /// Field used as the result snippet.
    pub snippet: String,
    /// Rendered texts longer than this (in chars) are quarantined.
    pub max_chars: usize,
    /// Ids longer than this (in chars) are quarantined: an id names files and URLs.
    pub max_id_chars: usize,
    /// Titles longer than this (in chars) are quarantined.
    pub max_title_chars: usize,
    /// Links longer than this (in chars) are quarantined.
    pub max_url_chars: usize,
}

impl Default for DocumentsConfig {
    fn default() -> Self {
        Self {
            id: "id".into(),
            template: "{title}. {description} {learn} {topics} {domain}".into(),
            title: "title".into(),
            url: Some("url".into()),
            snippet: "description".into(),
            max_chars: 20_000,
            max_id_chars: 256,
            max_title_chars: 1_000,
            max_url_chars: 2_048,
        }
    }
}

/// `[validation]`: how much bad input a run tolerates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ValidationConfig {
    /// The run fails when quarantined / (documents + quarantined) exceeds this.
    pub max_quarantine_share: f64,
}

impl Default for ValidationConfig {
    fn default() -> Self {
        Self {
            max_quarantine_share: 0.05,
        }
    }
}

/// `[drift]`: thresholds of the drift report (see [`crate::drift`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DriftConfig {
    /// Flag when the text-length PSI exceeds this.
    pub length_psi: f64,
    /// Flag when the vocabulary PSI exceeds this.
    pub vocab_psi: f64,
    /// Flag when the domain-classifier ROC AUC on embeddings exceeds this.
    pub embedding_auc: f64,
    /// Maximum documents sampled per side for the embedding statistic (fixed seed).
    pub sample: usize,
}

impl Default for DriftConfig {
    fn default() -> Self {
        Self {
            length_psi: 0.2,
            vocab_psi: 0.2,
            embedding_auc: 0.75,
            sample: 2000,
        }
    }
}

fn require(key: &str, value: &str) -> Result<(), ConfigError> {
    if value.trim().is_empty() {
        return Err(ConfigError::new(key, "must not be empty"));
    }
    Ok(())
}

impl SourceConfig {
    /// Checks the keys the chosen `kind` needs.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.kind != SourceKind::Postgres && self.path.as_os_str().is_empty() {
            return Err(ConfigError::new("source.path", "must name a file"));
        }
        if !self.kind.is_file() {
            require("source.query", &self.query)?;
        }
        if self.kind == SourceKind::Postgres {
            require("source.url_env", &self.url_env)?;
            let is_name = self
                .url_env
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !is_name {
                return Err(ConfigError::new(
                    "source.url_env",
                    "must be the NAME of an environment variable holding the connection string, not the string itself",
                ));
            }
        }
        if self.max_record_bytes < 1024 {
            return Err(ConfigError::new(
                "source.max_record_bytes",
                "must be at least 1024",
            ));
        }
        if self.connect_timeout_s == 0 {
            return Err(ConfigError::new(
                "source.connect_timeout_s",
                "must be at least 1 second",
            ));
        }
        if !self.seed.is_empty() && self.kind != SourceKind::Sqlite {
            return Err(ConfigError::new(
                "source.seed",
                "only applies to kind = \"sqlite\"",
            ));
        }
        for (table, path) in &self.seed {
            let plain =
                !table.is_empty() && table.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !plain {
                return Err(ConfigError::new(
                    format!("source.seed.{table}"),
                    "table names are letters, digits and _",
                ));
            }
            if path.as_os_str().is_empty() {
                return Err(ConfigError::new(
                    format!("source.seed.{table}"),
                    "must name a CSV file",
                ));
            }
        }
        if let Some(topics) = &self.topics {
            topics.validate(self.kind)?;
        }
        Ok(())
    }
}

impl TopicsConfig {
    fn validate(&self, kind: SourceKind) -> Result<(), ConfigError> {
        require("source.topics.key", &self.key)?;
        require("source.topics.field", &self.field)?;
        require("source.topics.into", &self.into)?;
        if kind.is_file() {
            let path = self.path.as_ref().filter(|p| !p.as_os_str().is_empty());
            let Some(path) = path else {
                return Err(ConfigError::new(
                    "source.topics.path",
                    "file sources need a topics file",
                ));
            };
            let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            if !matches!(ext, "csv" | "jsonl") {
                return Err(ConfigError::new(
                    "source.topics.path",
                    "must end in .csv or .jsonl",
                ));
            }
        } else {
            require("source.topics.query", self.query.as_deref().unwrap_or(""))?;
        }
        Ok(())
    }
}

impl DocumentsConfig {
    /// The link field, if one is configured (`url = ""` turns links off).
    pub fn url_field(&self) -> Option<&str> {
        self.url.as_deref().filter(|u| !u.trim().is_empty())
    }

    /// Checks the field names and that the template parses.
    pub fn validate(&self) -> Result<(), ConfigError> {
        require("documents.id", &self.id)?;
        require("documents.title", &self.title)?;
        require("documents.snippet", &self.snippet)?;
        Template::parse(&self.template)?;
        for (key, value) in [
            ("documents.max_chars", self.max_chars),
            ("documents.max_id_chars", self.max_id_chars),
            ("documents.max_title_chars", self.max_title_chars),
            ("documents.max_url_chars", self.max_url_chars),
        ] {
            if value == 0 {
                return Err(ConfigError::new(key, "must be positive"));
            }
        }
        Ok(())
    }
}

impl ValidationConfig {
    /// The share must be a fraction.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(0.0..=1.0).contains(&self.max_quarantine_share) {
            return Err(ConfigError::new(
                "validation.max_quarantine_share",
                "must be between 0 and 1",
            ));
        }
        Ok(())
    }
}

impl DriftConfig {
    /// Thresholds must be positive and finite; the AUC threshold lies between chance and perfect.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (key, value) in [
            ("drift.length_psi", self.length_psi),
            ("drift.vocab_psi", self.vocab_psi),
        ] {
            if !(value.is_finite() && value > 0.0) {
                return Err(ConfigError::new(key, "must be a positive number"));
            }
        }
        if !(self.embedding_auc > 0.5 && self.embedding_auc <= 1.0) {
            return Err(ConfigError::new(
                "drift.embedding_auc",
                "must be in (0.5, 1]",
            ));
        }
        if self.sample < 10 {
            return Err(ConfigError::new("drift.sample", "must be at least 10"));
        }
        Ok(())
    }
}

impl ConfigError {
    pub(crate) fn template(message: impl Into<String>) -> Self {
        Self::new("documents.template", message)
    }
}
