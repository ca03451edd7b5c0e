//! The query encoder of a release: its graph, tokenizer and token rows, checked against the
//! manifest. The pipeline attaches it to its [`Searcher`](crate::Searcher); a page runs it in a
//! wasm module of its own (web/encoder), which hands the page vectors.

use crate::{Artifacts, QueryError, TokenRequest, TokenSpan};
use searchbar_encoder::{Encoder, EncoderConfig, Pooling, RowSpan, TokenRows};
use searchbar_release::{FileRef, Manifest, ModelInfo};

/// The encoder settings that reproduce a release's embeddings for queries: single texts,
/// never padded (one graph in memory instead of two). The pipeline's evaluation embeds its
/// judged queries with exactly these.
pub fn query_encoder_config(
    model: &ModelInfo,
    threads: usize,
) -> Result<EncoderConfig, QueryError> {
    let pooling = model
        .pooling
        .parse::<Pooling>()
        .map_err(|message| QueryError::Invalid {
            file: "manifest.json".into(),
            message: format!("model.{message}"),
        })?;
    Ok(EncoderConfig {
        max_tokens: model.max_tokens,
        pooling,
        normalize: model.normalize,
        threads,
        padded_batches: false,
        ..EncoderConfig::default()
    })
}

/// The whole token rows file, checked against its manifest entry, as a table of `dim`-wide rows.
fn whole_token_rows(entry: &FileRef, bytes: Vec<u8>, dim: usize) -> Result<TokenRows, QueryError> {
    entry.verify(&bytes)?;
    TokenRows::whole(bytes, dim).map_err(|e| QueryError::Invalid {
        file: entry.path.clone(),
        message: e.to_string(),
    })
}

/// A release's query encoder and the manifest entry of its token rows, where its word
/// embeddings are fetched by row.
#[derive(Debug)]
pub struct QueryEncoder {
    encoder: Encoder,
    /// The token rows file's manifest entry, where the encoder's table is one.
    tokens: Option<FileRef>,
}

impl QueryEncoder {
    /// Verifies the encoder, tokenizer and token digests (and the whole token rows file, where
    /// at hand) against the manifest, then builds the encoder; token rows a page kept from an
    /// earlier visit are restored, each checked against its digest. `threads` > 1 needs the
    /// encoder's `threads` feature (native only).
    pub fn load(
        manifest: &Manifest,
        artifacts: &Artifacts,
        threads: usize,
    ) -> Result<Self, QueryError> {
        let files = &manifest.files;
        files.encoder.verify(&artifacts.encoder)?;
        files.tokenizer.verify(&artifacts.tokenizer)?;
        let config = query_encoder_config(&manifest.model, threads)?;
        let mut encoder = Encoder::new(&artifacts.encoder, &artifacts.tokenizer, config)?;
        match (&files.tokens, encoder.takes_token_rows()) {
            (Some(tokens), true) => {
                tokens.digests.verify(&artifacts.token_digests)?;
                let dim = encoder.dim();
                let mut table =
                    match &artifacts.token_rows {
                        Some(whole) => whole_token_rows(&tokens.rows, whole.clone(), dim)?,
                        None => TokenRows::fetched(artifacts.token_digests.clone(), dim).map_err(
                            |e| QueryError::Invalid {
                                file: tokens.digests.path.clone(),
                                message: e.to_string(),
                            },
                        )?,
                    };
                if let Some(saved) = &artifacts.saved_token_rows {
                    // What was restored before the damage stays: every row was checked.
                    let _ = table.restore(saved);
                }
                encoder.set_token_rows(table)?;
            }
            (None, false) => {}
            (None, true) => {
                return Err(QueryError::Invalid {
                    file: files.encoder.path.clone(),
                    message: "the encoder takes its word embeddings as token rows, and the \
                              manifest lists none"
                        .into(),
                })
            }
            (Some(tokens), false) => {
                return Err(QueryError::Invalid {
                    file: tokens.rows.path.clone(),
                    message: "the manifest lists token rows for an encoder that holds its own"
                        .into(),
                })
            }
        }
        if encoder.dim() != manifest.model.dim {
            return Err(QueryError::Invalid {
                file: files.encoder.path.clone(),
                message: format!(
                    "the encoder embeds in {} dimensions, the manifest says {}",
                    encoder.dim(),
                    manifest.model.dim
                ),
            });
        }
        Ok(Self {
            encoder,
            tokens: files.tokens.as_ref().map(|t| t.rows.clone()),
        })
    }

    /// An encoder already verified (the pipeline's evaluation), holding its own table.
    pub fn from_encoder(encoder: Encoder) -> Self {
        Self {
            encoder,
            tokens: None,
        }
    }

    pub fn encoder(&self) -> &Encoder {
        &self.encoder
    }

    pub fn dim(&self) -> usize {
        self.encoder.dim()
    }

    /// `text`'s vector, every token row it needs at hand.
    pub fn embed(&self, text: &str) -> Result<Vec<f32>, QueryError> {
        Ok(self.encoder.embed(text)?)
    }

    /// The word-embedding rows `text` needs that are not at hand yet (`None` when there are
    /// none to fetch).
    pub fn token_request(&self, text: &str) -> Result<Option<TokenRequest>, QueryError> {
        let spans = self.encoder.missing_token_rows(text)?;
        let (Some(rows), false) = (self.encoder.token_rows(), spans.is_empty()) else {
            return Ok(None);
        };
        Ok(Some(TokenRequest {
            url: self
                .tokens
                .as_ref()
                .map(|f| f.path.clone())
                .unwrap_or_default(),
            spans: spans
                .into_iter()
                .map(|s| TokenSpan {
                    first: s.first,
                    count: s.count,
                    bytes: rows.range(s),
                })
                .collect(),
        }))
    }

    /// Keeps the rows [`QueryEncoder::token_request`] asked for (`fetched`: each span's bytes,
    /// in order), each checked against its digest first.
    pub fn insert_token_rows(
        &mut self,
        request: &TokenRequest,
        fetched: &[impl AsRef<[u8]>],
    ) -> Result<(), QueryError> {
        let invalid = |message: String| QueryError::Invalid {
            file: request.url.clone(),
            message,
        };
        let rows = self
            .encoder
            .token_rows_mut()
            .ok_or_else(|| invalid("no token rows are being fetched".into()))?;
        if fetched.len() != request.spans.len() {
            return Err(invalid(format!(
                "{} spans of token rows arrived for {} asked",
                fetched.len(),
                request.spans.len()
            )));
        }
        for (span, bytes) in request.spans.iter().zip(fetched) {
            let span = RowSpan {
                first: span.first,
                count: span.count,
            };
            rows.insert_span(span, bytes.as_ref())
                .map_err(|e| invalid(e.to_string()))?;
        }
        Ok(())
    }

    /// Takes the whole token rows file, sent by a host that ignores range requests, checked
    /// against the manifest: every row is at hand from then on.
    pub fn insert_token_file(&mut self, bytes: Vec<u8>) -> Result<(), QueryError> {
        let entry = self.tokens.as_ref().ok_or_else(|| QueryError::Invalid {
            file: "manifest.json".into(),
            message: "the release has no token rows".into(),
        })?;
        let whole = whole_token_rows(entry, bytes, self.encoder.dim())?;
        Ok(self.encoder.set_token_rows(whole)?)
    }

    /// The token rows fetched so far, for [`Artifacts::saved_token_rows`] on a later visit
    /// (`None` where there are none to keep).
    pub fn saved_token_rows(&self) -> Option<Vec<u8>> {
        let saved = self.encoder.token_rows()?.saved();
        (!saved.is_empty()).then_some(saved)
    }
}
