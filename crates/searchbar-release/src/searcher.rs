use crate::{DocRecord, Manifest, ReleaseError};
use searchbar_encoder::{Encoder, EncoderConfig, Pooling};
use searchbar_index::{Index, SearchParams};

/// The downloaded bytes of a release, before verification.
#[derive(Debug, Default)]
pub struct Artifacts {
    pub encoder: Vec<u8>,
    pub tokenizer: Vec<u8>,
    pub index: Vec<u8>,
    pub docs: Vec<Vec<u8>>,
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

    /// Searches with an already-embedded query.
    pub fn search(&self, vector: &[f32], k: Option<usize>) -> Result<Vec<QueryHit>, ReleaseError> {
        let hits = self
            .index
            .search(vector, k.unwrap_or(self.k), &self.params, None)?;
        Ok(hits
            .into_iter()
            .map(|h| QueryHit {
                doc: h.doc,
                score: h.score,
                record: self.docs[h.doc as usize].clone(),
            })
            .collect())
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
