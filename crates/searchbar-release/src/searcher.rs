use crate::{DocRecord, Manifest, ReleaseError};
use searchbar_encoder::{Encoder, EncoderConfig, Pooling};
use searchbar_index::{Candidates, FetchedRows, Index, SearchParams};
use std::ops::Range;

/// The downloaded bytes of a release, before verification.
#[derive(Debug, Default)]
pub struct Artifacts {
    pub encoder: Vec<u8>,
    pub tokenizer: Vec<u8>,
    pub index: Vec<u8>,
    pub docs: Vec<Vec<u8>>,
    /// The whole rows file of an index with external re-ranking rows, where it is at hand
    /// (the pipeline's disk). A page leaves it `None` and fetches records per query.
    pub rows: Option<Vec<u8>>,
}

/// The first stage of a search whose re-ranking rows must be fetched: one range request per
/// candidate's record, all from [`RowRequest::url`].
#[derive(Debug, Clone)]
pub struct RowRequest {
    candidates: Candidates,
    /// The rows file, relative to the release page (as in the manifest).
    pub url: String,
    /// Each candidate's doc ordinal and byte range in the rows file.
    pub ranges: Vec<(u32, Range<u64>)>,
}

/// [`Searcher::begin`]'s outcome.
#[derive(Debug)]
pub enum Stage {
    /// The results.
    Done(Vec<QueryHit>),
    /// Fetch these records, then call [`Searcher::complete`].
    NeedRows(RowRequest),
}

/// One ranked result.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryHit {
    /// Index ordinal.
    pub doc: u32,
    pub score: f32,
    pub record: DocRecord,
}

/// A loaded release: encoder, index and display records, queried the same way everywhere.
#[derive(Debug)]
pub struct Searcher {
    encoder: Encoder,
    index: Index,
    docs: Vec<DocRecord>,
    params: SearchParams,
    k: usize,
    /// The rows file of an index with external rows, when loaded whole, and its manifest path.
    rows: Option<Vec<u8>>,
    rows_url: Option<String>,
}

impl Searcher {
    /// Verifies every artifact against the manifest, then loads them. `threads` > 1 needs the
    /// encoder's `threads` feature (native only).
    pub fn load(
        manifest: &Manifest,
        artifacts: &Artifacts,
        threads: usize,
    ) -> Result<Self, ReleaseError> {
        let files = &manifest.files;
        // The count comes from a file anyone could edit: bound it by the bytes actually at
        // hand before it sizes an allocation (a record is never under two bytes of JSON).
        let doc_bytes: usize = artifacts.docs.iter().map(Vec::len).sum();
        if manifest.data.documents > doc_bytes / 2 {
            return Err(ReleaseError::Invalid {
                file: "manifest.json".into(),
                message: format!(
                    "data.documents = {} cannot fit in the {doc_bytes} bytes of its document \
                     shards",
                    manifest.data.documents
                ),
            });
        }
        files.encoder.verify(&artifacts.encoder)?;
        files.tokenizer.verify(&artifacts.tokenizer)?;
        files.index.verify(&artifacts.index)?;
        if artifacts.docs.len() != files.docs.len() {
            return Err(ReleaseError::Invalid {
                file: "manifest.json".into(),
                message: format!(
                    "{} document shards given, the manifest lists {}",
                    artifacts.docs.len(),
                    files.docs.len()
                ),
            });
        }
        let mut docs = Vec::with_capacity(manifest.data.documents);
        for (entry, bytes) in files.docs.iter().zip(&artifacts.docs) {
            entry.verify(bytes)?;
            let shard: Vec<DocRecord> =
                serde_json::from_slice(bytes).map_err(|e| ReleaseError::Invalid {
                    file: entry.path.clone(),
                    message: e.to_string(),
                })?;
            docs.extend(shard);
        }
        let index = Index::from_bytes(&artifacts.index).map_err(|e| ReleaseError::Invalid {
            file: files.index.path.clone(),
            message: e.to_string(),
        })?;
        // The manifest lists a rows file exactly when the index re-ranks with one.
        let external = index.has_rows_file();
        match (&files.rows, external, &artifacts.rows) {
            (Some(entry), true, Some(rows)) => entry.verify(rows)?,
            (Some(_), true, None) | (None, false, _) => {}
            (None, true, _) => {
                return Err(ReleaseError::Invalid {
                    file: files.index.path.clone(),
                    message:
                        "the index re-ranks with a separate rows file the manifest does not list"
                            .into(),
                })
            }
            (Some(entry), false, _) => {
                return Err(ReleaseError::Invalid {
                    file: entry.path.clone(),
                    message: "the manifest lists a rows file for an index that has none".into(),
                })
            }
        }
        if index.len() != docs.len() {
            return Err(ReleaseError::Invalid {
                file: files.index.path.clone(),
                message: format!(
                    "{} vectors but {} document records",
                    index.len(),
                    docs.len()
                ),
            });
        }
        let model = &manifest.model;
        let pooling = match model.pooling.as_str() {
            "mean" => Pooling::Mean,
            "cls" => Pooling::Cls,
            other => {
                return Err(ReleaseError::Invalid {
                    file: "manifest.json".into(),
                    message: format!("model.pooling {other:?} is not \"mean\" or \"cls\""),
                })
            }
        };
        let config = EncoderConfig {
            max_tokens: model.max_tokens,
            pooling,
            normalize: model.normalize,
            threads,
            // Queries are single texts, never padded: one graph in memory instead of two.
            padded_batches: false,
            ..EncoderConfig::default()
        };
        let encoder = Encoder::new(&artifacts.encoder, &artifacts.tokenizer, config)?;
        if encoder.dim() != index.dim() {
            return Err(ReleaseError::Invalid {
                file: files.index.path.clone(),
                message: format!(
                    "index dimension {} differs from the encoder's {}",
                    index.dim(),
                    encoder.dim()
                ),
            });
        }
        Ok(Self {
            encoder,
            index,
            docs,
            params: SearchParams {
                nprobe: manifest.search.nprobe,
                rerank: manifest.search.rerank,
            },
            k: manifest.search.k,
            rows: artifacts.rows.clone().filter(|_| external),
            rows_url: files.rows.as_ref().map(|f| f.path.clone()),
        })
    }

    /// Embeds `text` and returns the top results (at most `k`, default from the manifest).
    /// A query with no letters or digits returns nothing rather than noise.
    pub fn query(&self, text: &str, k: Option<usize>) -> Result<Vec<QueryHit>, ReleaseError> {
        if !Self::searchable(text) {
            return Ok(Vec::new());
        }
        let vector = self.encoder.embed(text)?;
        self.search(&vector, k)
    }

    /// Whether [`Searcher::query`] would search `text` at all: it needs a letter or a digit.
    /// Callers that embed in slices themselves ([`Encoder::start`]) check it first.
    pub fn searchable(text: &str) -> bool {
        text.chars().any(char::is_alphanumeric)
    }

    /// Searches with an already-embedded query. An index with external re-ranking rows needs
    /// its rows file loaded whole here; a page uses [`Searcher::begin`] instead.
    pub fn search(&self, vector: &[f32], k: Option<usize>) -> Result<Vec<QueryHit>, ReleaseError> {
        let k = k.unwrap_or(self.k);
        let hits = match &self.rows {
            Some(rows) => self
                .index
                .search_rows_file(vector, k, &self.params, None, rows)?,
            None => self.index.search(vector, k, &self.params, None)?,
        };
        Ok(self.records(hits))
    }

    /// Starts a search whose re-ranking rows may have to be fetched: either the results, or
    /// the records to fetch for [`Searcher::complete`]. Both stages are the index's own
    /// ([`Index::candidates`], [`Index::rerank`]), as in [`Searcher::search`].
    pub fn begin(&self, vector: &[f32], k: Option<usize>) -> Result<Stage, ReleaseError> {
        // With the rows file at hand (or the vectors inside the index) nothing is fetched.
        if self.rows.is_some() || self.index.store().is_some() {
            return Ok(Stage::Done(self.search(vector, k)?));
        }
        let k = k.unwrap_or(self.k);
        let candidates = self.index.candidates(vector, k, &self.params, None)?;
        if !candidates.needs_rows() {
            let hits = self.index.rerank(vector, candidates, &FetchedRows::new())?;
            return Ok(Stage::Done(self.records(hits)));
        }
        let url = self.rows_url.clone().unwrap_or_default();
        let ranges = candidates
            .docs()
            .into_iter()
            .filter_map(|d| Some((d, self.index.row_range(d)?)))
            .collect();
        Ok(Stage::NeedRows(RowRequest {
            candidates,
            url,
            ranges,
        }))
    }

    /// Finishes [`Searcher::begin`]'s search with the fetched records (doc ordinal, bytes),
    /// each verified against the index before it counts.
    pub fn complete(
        &self,
        vector: &[f32],
        request: RowRequest,
        records: &[(u32, Vec<u8>)],
    ) -> Result<Vec<QueryHit>, ReleaseError> {
        let mut fetched = FetchedRows::new();
        for (doc, bytes) in records {
            self.index
                .insert_row(&mut fetched, *doc, bytes)
                .map_err(searchbar_index::SearchError::from)?;
        }
        let hits = self.index.rerank(vector, request.candidates, &fetched)?;
        Ok(self.records(hits))
    }

    fn records(&self, hits: Vec<searchbar_index::Hit>) -> Vec<QueryHit> {
        hits.into_iter()
            .map(|h| QueryHit {
                doc: h.doc,
                score: h.score,
                record: self.docs[h.doc as usize].clone(),
            })
            .collect()
    }

    pub fn encoder(&self) -> &Encoder {
        &self.encoder
    }

    pub fn index(&self) -> &Index {
        &self.index
    }

    pub fn len(&self) -> usize {
        self.docs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_document_count_is_an_error_not_an_allocation() {
        let shard = br#"[{"id":"a","title":"A","url":null,"snippet":""}]"#.to_vec();
        let entry = |name: &str, bytes: &[u8]| {
            serde_json::json!({"path": format!("../../files/{name}"), "bytes": bytes.len(),
                "sha256": crate::sha256_hex(bytes)})
        };
        let manifest = serde_json::json!({
            "format": crate::MANIFEST_FORMAT, "release": "r", "created": "2026-12-02T00:00:00Z",
            "pipeline": {"version": "0", "source_hash": "x"},
            "model": {"name": "m", "source_sha256": "x", "dim": 4, "max_tokens": 8,
                "pooling": "mean", "normalize": true},
            "data": {"fingerprint": "f", "documents": usize::MAX},
            "params": {}, "search": {"k": 10, "nprobe": 1, "rerank": 0},
            "evaluation": {"ndcg_at_10": null, "ndcg_at_10_exact": null, "mrr_at_10": null,
                "recall_at_100": null, "recall_at_10": 1.0, "queries": 0, "forced": false},
            "files": {"encoder": entry("e", b""), "tokenizer": entry("t", b""),
                "index": entry("i", b""), "docs": [entry("d", &shard)], "docs_per_shard": 1},
        });
        let manifest = Manifest::from_json(manifest.to_string().as_bytes(), "m.json").unwrap();
        let artifacts = Artifacts {
            docs: vec![shard],
            ..Default::default()
        };
        let e = Searcher::load(&manifest, &artifacts, 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("data.documents"), "{e}");
    }
}
