//! Canonical, content-addressed snapshots of a catalog and the change set between two of them.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::document::Document;
use crate::error::StoreError;

/// Format 1's file of one [`SnapshotDocument`] per line; format 2 names its documents file by
/// the fingerprint instead ([`documents_file`]) and lists it in [`SnapshotMeta::documents`].
pub const DOCUMENTS_FILE: &str = "documents.jsonl";
/// File holding the [`SnapshotMeta`]; written last, so its presence marks a complete snapshot.
pub const META_FILE: &str = "snapshot.json";
/// Version of the on-disk layout written; format 1 is still read.
pub const FORMAT_VERSION: u32 = 2;

/// The documents file of a snapshot with this fingerprint. A new snapshot never overwrites the
/// documents file the current `snapshot.json` names, so the one rename of `snapshot.json`
/// switches from the old snapshot to the new one whole: a crash at any point leaves one of the
/// two, never the new documents under the old metadata.
pub fn documents_file(fingerprint: &str) -> String {
    format!(
        "documents-{}.jsonl",
        &fingerprint[..16.min(fingerprint.len())]
    )
}

/// A document as stored in a snapshot: the indexed parts plus their hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotDocument {
    /// Unique id.
    pub id: String,
    /// Indexed text.
    pub text: String,
    /// Result title.
    pub title: String,
    /// Optional link.
    pub url: Option<String>,
    /// Result snippet.
    pub snippet: String,
    /// sha256 hex of the canonical serialization, see [`content_hash`].
    pub content_hash: String,
}

/// `snapshot.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    /// [`FORMAT_VERSION`].
    pub format: u32,
    /// sha256 hex over the sorted `(id, content_hash)` list, see [`fingerprint`].
    pub fingerprint: String,
    /// Number of documents.
    pub count: usize,
    /// Seconds since the Unix epoch when the snapshot was written.
    pub created_unix: u64,
    /// Free-form description of where the documents came from.
    pub source: String,
    /// Format 2: the documents file in the same directory (format 1: [`DOCUMENTS_FILE`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub documents: Option<String>,
}

/// A catalog in canonical form: documents sorted by id, each hashed, plus a dataset fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Documents sorted by id.
    pub documents: Vec<SnapshotDocument>,
    /// Dataset fingerprint.
    pub fingerprint: String,
    /// Description of the source.
    pub source: String,
    /// Creation time; 0 until written or read.
    pub created_unix: u64,
}

/// sha256 hex of the JSON array `[id, text, title, url|null, snippet]`: JSON escaping makes the
/// field boundaries unambiguous, unlike plain concatenation.
pub fn content_hash(id: &str, text: &str, title: &str, url: Option<&str>, snippet: &str) -> String {
    let canonical =
        serde_json::to_vec(&(id, text, title, url, snippet)).expect("strings serialize");
    hex::encode(Sha256::digest(canonical))
}

/// sha256 hex over `["id","hash"]\n` lines of documents already sorted by id.
pub fn fingerprint(documents: &[SnapshotDocument]) -> String {
    let mut hasher = Sha256::new();
    for doc in documents {
        hasher
            .update(serde_json::to_vec(&(&doc.id, &doc.content_hash)).expect("strings serialize"));
        hasher.update(b"\n");
    }
    hex::encode(hasher.finalize())
}

impl Snapshot {
    /// Canonicalizes documents (sort, hash, fingerprint); fails on a repeated id.
    pub fn new(
        documents: impl IntoIterator<Item = Document>,
        source: impl Into<String>,
    ) -> Result<Self, StoreError> {
        let mut docs: Vec<SnapshotDocument> = documents
            .into_iter()
            .map(|d| SnapshotDocument {
                content_hash: content_hash(&d.id, &d.text, &d.title, d.url.as_deref(), &d.snippet),
                id: d.id,
                text: d.text,
                title: d.title,
                url: d.url,
                snippet: d.snippet,
            })
            .collect();
        docs.sort_by(|a, b| a.id.cmp(&b.id));
        if let Some(pair) = docs.windows(2).find(|w| w[0].id == w[1].id) {
            return Err(StoreError::DuplicateId {
                id: pair[0].id.clone(),
            });
        }
        Ok(Self {
            fingerprint: fingerprint(&docs),
            documents: docs,
            source: source.into(),
            created_unix: 0,
        })
    }

    /// Number of documents.
    pub fn len(&self) -> usize {
        self.documents.len()
    }

    /// True when the snapshot holds no documents.
    pub fn is_empty(&self) -> bool {
        self.documents.is_empty()
    }

    /// Writes the snapshot into `dir` (created if needed) as one atomic unit: the documents file
    /// under its fingerprint's name, then `snapshot.json` naming it (each a temporary file,
    /// fsynced and renamed), then removes the documents files no longer named. Sets
    /// `created_unix`.
    pub fn write(&mut self, dir: &Path) -> Result<(), StoreError> {
        self.write_observed(dir, &mut |_| {})
    }

    /// [`write`](Self::write), calling `step` after each durable step: the crash tests kill the
    /// process there.
    pub fn write_observed(
        &mut self,
        dir: &Path,
        step: &mut dyn FnMut(&str),
    ) -> Result<(), StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
        let name = documents_file(&self.fingerprint);
        write_atomic(&dir.join(&name), &mut |out| {
            for doc in &self.documents {
                serde_json::to_writer(&mut *out, doc)?;
                out.write_all(b"\n")?;
            }
            Ok(())
        })?;
        step("snapshot: documents written");
        self.created_unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let meta = SnapshotMeta {
            format: FORMAT_VERSION,
            fingerprint: self.fingerprint.clone(),
            count: self.documents.len(),
            created_unix: self.created_unix,
            source: self.source.clone(),
            documents: Some(name.clone()),
        };
        let mut json = serde_json::to_vec_pretty(&meta).expect("snapshot meta serializes");
        json.push(b'\n');
        write_atomic(&dir.join(META_FILE), &mut |out| out.write_all(&json))?;
        // Persist the renames themselves.
        crate::atomic::sync_dir(dir).map_err(|e| StoreError::io(dir, e))?;
        step("snapshot: metadata written");
        for entry in std::fs::read_dir(dir).map_err(|e| StoreError::io(dir, e))? {
            let entry = entry.map_err(|e| StoreError::io(dir, e))?;
            let file = entry.file_name().to_string_lossy().into_owned();
            let stale = file != name && file.starts_with("documents") && file.ends_with(".jsonl");
            if stale {
                let path = entry.path();
                std::fs::remove_file(&path).map_err(|e| StoreError::io(&path, e))?;
            }
        }
        Ok(())
    }

    /// Reads a snapshot and verifies every content hash, the id order, the count and the
    /// fingerprint: any mismatch is [`StoreError::CorruptSnapshot`].
    pub fn read(dir: &Path) -> Result<Self, StoreError> {
        let meta_path = dir.join(META_FILE);
        let meta_bytes = std::fs::read(&meta_path).map_err(|e| StoreError::io(&meta_path, e))?;
        let meta: SnapshotMeta = serde_json::from_slice(&meta_bytes)
            .map_err(|e| StoreError::parse(&meta_path, Some(e.line() as u64), e.to_string()))?;
        if !(1..=FORMAT_VERSION).contains(&meta.format) {
            let message = format!(
                "format {} is not a supported one (1 to {FORMAT_VERSION})",
                meta.format
            );
            return Err(StoreError::parse(&meta_path, None, message));
        }
        let docs_name = match (meta.format, meta.documents.as_deref()) {
            (1, _) => DOCUMENTS_FILE,
            // A file beside this one, never a path elsewhere; the fingerprint check below
            // ties its content to this metadata.
            (_, Some(name))
                if name.starts_with("documents-")
                    && name.ends_with(".jsonl")
                    && !name.contains(['/', '\\'])
                    && !name.contains("..") =>
            {
                name
            }
            (_, other) => {
                let message = format!("names the documents file {other:?}");
                return Err(StoreError::CorruptSnapshot {
                    path: meta_path,
                    message,
                });
            }
        };
        let docs_path = dir.join(docs_name);
        let corrupt = |path: &PathBuf, message: String| StoreError::CorruptSnapshot {
            path: path.clone(),
            message,
        };
        let file = std::fs::File::open(&docs_path).map_err(|e| StoreError::io(&docs_path, e))?;
        // The count is checked against the lines read, not trusted for an allocation.
        let mut documents: Vec<SnapshotDocument> = Vec::new();
        for (index, line) in std::io::BufReader::new(file).lines().enumerate() {
            let line_no = index as u64 + 1;
            let line =
                line.map_err(|e| StoreError::parse(&docs_path, Some(line_no), e.to_string()))?;
            let doc: SnapshotDocument = serde_json::from_str(&line)
                .map_err(|e| StoreError::parse(&docs_path, Some(line_no), e.to_string()))?;
            let expected = content_hash(
                &doc.id,
                &doc.text,
                &doc.title,
                doc.url.as_deref(),
                &doc.snippet,
            );
            if doc.content_hash != expected {
                let message = format!(
                    "line {line_no}: content hash of `{}` does not match its content",
                    doc.id
                );
                return Err(corrupt(&docs_path, message));
            }
            if let Some(prev) = documents.last() {
                if prev.id >= doc.id {
                    let message = format!(
                        "line {line_no}: id `{}` is not after `{}` (unsorted or duplicate)",
                        doc.id, prev.id
                    );
                    return Err(corrupt(&docs_path, message));
                }
            }
            documents.push(doc);
        }
        if documents.len() != meta.count {
            let message = format!(
                "{} documents, {META_FILE} says {}",
                documents.len(),
                meta.count
            );
            return Err(corrupt(&docs_path, message));
        }
        let actual = fingerprint(&documents);
        if actual != meta.fingerprint {
            let message = format!(
                "fingerprint {actual} of {docs_name} does not match {}",
                meta.fingerprint
            );
            return Err(corrupt(&meta_path, message));
        }
        Ok(Self {
            documents,
            fingerprint: meta.fingerprint,
            source: meta.source,
            created_unix: meta.created_unix,
        })
    }
}

/// [`write_atomic_with`](crate::atomic::write_atomic_with), its error naming `path`.
fn write_atomic(
    path: &Path,
    fill: &mut dyn FnMut(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), StoreError> {
    crate::atomic::write_atomic_with(path, fill, &mut || {}).map_err(|e| StoreError::io(path, e))
}

/// Ids that differ between two snapshots, each list sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeSet {
    /// In `new` only.
    pub added: Vec<String>,
    /// In `old` only.
    pub removed: Vec<String>,
    /// In both, with a different content hash.
    pub changed: Vec<String>,
}

impl ChangeSet {
    /// True when nothing was added, removed or changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

/// Merge-walks two snapshots (both sorted by id).
pub fn diff(old: &Snapshot, new: &Snapshot) -> ChangeSet {
    use std::cmp::Ordering;
    let mut changes = ChangeSet::default();
    let (mut a, mut b) = (
        old.documents.iter().peekable(),
        new.documents.iter().peekable(),
    );
    loop {
        match (a.peek(), b.peek()) {
            (None, None) => break,
            (Some(o), None) => {
                changes.removed.push(o.id.clone());
                a.next();
            }
            (None, Some(n)) => {
                changes.added.push(n.id.clone());
                b.next();
            }
            (Some(o), Some(n)) => match o.id.cmp(&n.id) {
                Ordering::Less => {
                    changes.removed.push(o.id.clone());
                    a.next();
                }
                Ordering::Greater => {
                    changes.added.push(n.id.clone());
                    b.next();
                }
                Ordering::Equal => {
                    if o.content_hash != n.content_hash {
                        changes.changed.push(o.id.clone());
                    }
                    a.next();
                    b.next();
                }
            },
        }
    }
    changes
}
