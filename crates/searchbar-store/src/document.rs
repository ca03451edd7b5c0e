//! What ingestion produces: accepted documents, the quarantine and warnings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::ValidationConfig;
use crate::error::StoreError;

/// One searchable document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Document {
    /// Unique id.
    pub id: String,
    /// Rendered template, whitespace collapsed and trimmed: what gets embedded.
    pub text: String,
    /// Result title.
    pub title: String,
    /// Optional link.
    pub url: Option<String>,
    /// Result snippet.
    pub snippet: String,
    /// Every source field (plus the topics field) as text.
    pub fields: BTreeMap<String, String>,
}

/// A row left out of the documents, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quarantined {
    /// File path, `sqlite:<path>` or `postgres`.
    pub source: String,
    /// 1-based line for files (CSV counts the header), 1-based row ordinal for SQL.
    pub row: u64,
    /// The offending field, when one is to blame.
    pub field: Option<String>,
    /// Human-readable reason (`duplicate id`, `bad type`, `invalid UTF-8`...).
    pub reason: String,
}

/// Result of [`load`](crate::load).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ingested {
    /// Where the rows came from (file path, `sqlite:<path>`, `postgres`).
    pub source: String,
    /// Accepted documents in source order.
    pub documents: Vec<Document>,
    /// Rejected rows in source order.
    pub quarantined: Vec<Quarantined>,
    /// Non-fatal findings (topic rows for unknown ids, unreadable topic rows).
    pub warnings: Vec<String>,
}

impl Ingested {
    /// quarantined / (documents + quarantined); 0 for an empty source.
    pub fn quarantine_share(&self) -> f64 {
        let total = self.documents.len() + self.quarantined.len();
        if total == 0 {
            0.0
        } else {
            self.quarantined.len() as f64 / total as f64
        }
    }

    /// Fails when no row became a document (an empty file, a query matching nothing, every row
    /// quarantined), or when the quarantine share exceeds `validation.max_quarantine_share`.
    pub fn check_quarantine(&self, config: &ValidationConfig) -> Result<(), StoreError> {
        if self.documents.is_empty() {
            return Err(StoreError::NoDocuments {
                origin: self.source.clone(),
                quarantined: self.quarantined.len(),
            });
        }
        let share = self.quarantine_share();
        if share > config.max_quarantine_share {
            return Err(StoreError::QuarantineExceeded {
                quarantined: self.quarantined.len(),
                total: self.documents.len() + self.quarantined.len(),
                share,
                limit: config.max_quarantine_share,
            });
        }
        Ok(())
    }
}
