use crate::QueryError;
use searchbar_index::{Candidates, FetchedLists, FetchedRows, Hit, Index, SearchParams};
use searchbar_lexical::{LexicalIndex, Loaded, Matches, Outcome};
use searchbar_release::{rank, Ranking, SearchMode, FUSION_DEPTH};
use searchbar_release::{DocRecord, DocShards, Fetch, Manifest, PartList, Parts, SearchInfo, Want};
use std::ops::Range;

#[cfg(feature = "encoder")]
use crate::encoder::QueryEncoder;

/// The downloaded bytes of a release, before verification.
#[derive(Debug, Default)]
pub struct Artifacts {
    pub encoder: Vec<u8>,
    pub tokenizer: Vec<u8>,
    pub index: Vec<u8>,
    /// The root of the document shards' part table, where they are paged. A page leaves it
    /// `None` and hands it over once it comes ([`Searcher::insert_docs_table`]).
    pub docs_table: Option<Vec<u8>>,
    /// Document shards (and table pages) at hand: all of them on the pipeline's disk
    /// ([`searchbar_release::ReadParts`]), none on a page, which fetches those of the results
    /// it shows ([`Searcher::missing_shards`]).
    pub docs: Vec<(Want, Vec<u8>)>,
    /// The whole rows file of an index with external re-ranking rows, where it is at hand
    /// (the pipeline's disk). A page leaves it `None` and fetches records per query.
    pub rows: Option<Vec<u8>>,
    /// The whole lists file of an index that keeps its inverted lists apart, where it is at
    /// hand (the pipeline's disk). A page leaves it `None` and fetches the lists each query
    /// probes.
    pub lists: Option<Vec<u8>>,
    /// The lexical index's root, where the manifest lists one.
    pub lexical_root: Option<Vec<u8>>,
    /// The root of the lexical fragments' part table, where they are paged.
    pub lexical_table: Option<Vec<u8>>,
    /// Lexical fragments (and table pages) at hand: all of them on the pipeline's disk, none
    /// on a page, which fetches each when a query first needs it ([`Lexical::wanted`]).
    pub lexical_fragments: Vec<(Want, Vec<u8>)>,
    /// The token digests file, where the manifest lists token rows.
    pub token_digests: Vec<u8>,
    /// The whole token rows file, where it is at hand (the pipeline's disk). A page leaves it
    /// `None` and fetches the rows of each query's tokens (`QueryEncoder::token_request`).
    pub token_rows: Option<Vec<u8>>,
    /// Token rows a page kept from earlier visits (`QueryEncoder::saved_token_rows`), each
    /// checked against its digest; damaged ones are dropped, not an error (they are fetched
    /// again).
    pub saved_token_rows: Option<Vec<u8>>,
}

/// The word-embedding rows a query needs before it can be embedded: one range request per
/// span, all from [`TokenRequest::url`]; the query encoder keeps them
/// (`QueryEncoder::insert_token_rows`). Plain numbers, so a page whose encoder runs in another
/// wasm module can fetch them ([`TokenRequest::to_flat`]).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenRequest {
    /// The token rows file, relative to the release page (as in the manifest).
    pub url: String,
    pub spans: Vec<TokenSpan>,
}

/// Rows `first..first + count` of the token rows file, at `bytes` in it.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenSpan {
    pub first: u32,
    pub count: u32,
    pub bytes: Range<u64>,
}

impl TokenRequest {
    /// The spans as four numbers each (first row, rows, first byte, end byte), the form one
    /// wasm module hands another.
    pub fn to_flat(&self) -> Vec<f64> {
        self.spans
            .iter()
            .flat_map(|s| {
                [
                    f64::from(s.first),
                    f64::from(s.count),
                    s.bytes.start as f64,
                    s.bytes.end as f64,
                ]
            })
            .collect()
    }

    /// The request [`TokenRequest::to_flat`] wrote, for `url`.
    pub fn from_flat(url: &str, flat: &[f64]) -> Result<Self, QueryError> {
        let invalid = |message: String| QueryError::Invalid {
            file: url.to_string(),
            message,
        };
        if !flat.len().is_multiple_of(4) {
            return Err(invalid(format!(
                "{} numbers do not make spans of four",
                flat.len()
            )));
        }
        let whole = |v: f64, max: f64| (v >= 0.0 && v <= max && v.fract() == 0.0).then_some(v);
        let u32_at = |v| whole(v, f64::from(u32::MAX)).map(|v| v as u32);
        let u64_at = |v| whole(v, 2f64.powi(53)).map(|v| v as u64);
        let spans = flat
            .chunks_exact(4)
            .map(
                |c| match (u32_at(c[0]), u32_at(c[1]), u64_at(c[2]), u64_at(c[3])) {
                    (Some(first), Some(count), Some(start), Some(end)) if start <= end => {
                        Ok(TokenSpan {
                            first,
                            count,
                            bytes: start..end,
                        })
                    }
                    _ => Err(invalid(format!("not a span of token rows: {c:?}"))),
                },
            )
            .collect::<Result<_, _>>()?;
        Ok(Self {
            url: url.to_string(),
            spans,
        })
    }
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

/// The inverted lists a search probes that are not at hand: one range request per list, all
/// from [`ListRequest::url`]; the searcher keeps them ([`Searcher::insert_lists`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ListRequest {
    /// The lists file, relative to the release page (as in the manifest).
    pub url: String,
    /// Each list's number and byte range in the lists file.
    pub ranges: Vec<(u32, Range<u64>)>,
}

/// [`Searcher::begin`]'s outcome.
#[derive(Debug)]
pub enum Stage {
    /// The dense list: documents and scores, for [`Searcher::results`].
    Done(Vec<Hit>),
    /// Fetch these lists, keep them ([`Searcher::insert_lists`]), then begin again.
    NeedLists(ListRequest),
    /// Fetch these records, then call [`Searcher::complete`].
    NeedRows(RowRequest),
}

/// How many list entries a page keeps across queries before it starts over: about 5 MB of
/// lists at 28 bytes an entry, which nearby queries share.
const KEPT_LIST_ENTRIES: usize = 200_000;

/// One ranked result.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryHit {
    /// Index ordinal.
    pub doc: u32,
    pub score: f32,
    pub record: DocRecord,
}

/// A lexical index and the fragments of it at hand, each verified against its manifest entry.
#[derive(Debug)]
pub struct Lexical {
    index: LexicalIndex,
    loaded: Loaded,
    files: Parts,
}

impl Lexical {
    /// Opens the root (`root_file` names it in errors); `fragments` lists the fragments in the
    /// root's numbering (`table_root`: their part table's root, where paged).
    pub fn new(
        root: &[u8],
        root_file: &str,
        fragments: &PartList,
        table_root: Option<&[u8]>,
    ) -> Result<Self, QueryError> {
        let index = LexicalIndex::from_root(root, root_file).map_err(lexical_error)?;
        let files = Parts::new(fragments, table_root)?;
        if files.len() != index.fragments() {
            return Err(QueryError::Invalid {
                file: root_file.to_string(),
                message: format!(
                    "the root numbers {} fragments, the manifest lists {}",
                    index.fragments(),
                    files.len()
                ),
            });
        }
        Ok(Self {
            loaded: Loaded::new(index.fragments()),
            index,
            files,
        })
    }

    /// Keeps what [`Lexical::wanted`] asked for: a table page, or a fragment (verified
    /// against its entry and parsed).
    pub fn insert(&mut self, want: Want, bytes: &[u8]) -> Result<(), QueryError> {
        let number = match want {
            Want::Page(page) => return Ok(self.files.insert_page(page, bytes)?),
            Want::Part(number) => number,
        };
        let (path, bytes) = self.files.verify(number, bytes)?;
        let fragment = self
            .index
            .fragment(number, bytes, &path)
            .map_err(lexical_error)?;
        self.loaded.insert(number, fragment);
        Ok(())
    }

    /// The words of `text` that match, ranked (best `depth`), or the fragments to fetch first.
    pub fn search(&self, text: &str, depth: usize) -> Result<Outcome, QueryError> {
        self.index
            .search(text, depth, &|n| self.loaded.get(n))
            .map_err(lexical_error)
    }

    /// What to fetch for fragments `numbers` ([`Outcome::Need`]): each fragment, with (in a
    /// table without proofs) the page that names it where that is not at hand (inserted first).
    pub fn wanted(&self, numbers: impl IntoIterator<Item = usize>) -> Vec<Fetch> {
        self.files.wanted(numbers)
    }

    pub fn index(&self) -> &LexicalIndex {
        &self.index
    }
}

fn lexical_error(e: searchbar_lexical::LexicalError) -> QueryError {
    match e {
        searchbar_lexical::LexicalError::Invalid { file, message } => {
            QueryError::Invalid { file, message }
        }
        other => QueryError::Invalid {
            file: "lexical index".into(),
            message: other.to_string(),
        },
    }
}

/// The vector half of a release: the index and how it is searched. A page loads it after the
/// records and the lexical root ([`Searcher::records`]), with the query encoder, so words are
/// searched while the model still downloads, and attaches it when both are ready
/// ([`Searcher::attach`]).
#[derive(Debug)]
pub struct Dense {
    index: Index,
    params: SearchParams,
    /// The rows file of an index with external rows, when loaded whole, and its manifest path.
    rows: Option<Vec<u8>>,
    rows_url: Option<String>,
    /// The lists file's manifest path, where the index keeps its lists apart and they are not
    /// attached, and the lists fetched so far.
    lists_url: Option<String>,
    lists: FetchedLists,
}

impl Dense {
    /// Verifies the index (and the rows file, where at hand) against the manifest, then loads
    /// it.
    pub fn load(manifest: &Manifest, artifacts: &Artifacts) -> Result<Self, QueryError> {
        let files = &manifest.files;
        files.index.verify(&artifacts.index)?;
        let mut index = Index::from_bytes(&artifacts.index).map_err(|e| QueryError::Invalid {
            file: files.index.path.clone(),
            message: e.to_string(),
        })?;
        if index.dim() != manifest.model.dim {
            return Err(QueryError::Invalid {
                file: files.index.path.clone(),
                message: format!(
                    "index dimension {} differs from the model's {}",
                    index.dim(),
                    manifest.model.dim
                ),
            });
        }
        // The manifest lists a rows file exactly when the index re-ranks with one.
        let external = index.has_rows_file();
        match (&files.rows, external, &artifacts.rows) {
            (Some(entry), true, Some(rows)) => entry.verify(rows)?,
            (Some(_), true, None) | (None, false, _) => {}
            (None, true, _) => {
                return Err(QueryError::Invalid {
                    file: files.index.path.clone(),
                    message:
                        "the index re-ranks with a separate rows file the manifest does not list"
                            .into(),
                })
            }
            (Some(entry), false, _) => {
                return Err(QueryError::Invalid {
                    file: entry.path.clone(),
                    message: "the manifest lists a rows file for an index that has none".into(),
                })
            }
        }
        // And a lists file exactly when the index keeps its lists apart.
        match (&files.lists, index.has_lists_file()) {
            (Some(entry), true) => {
                if let Some(lists) = &artifacts.lists {
                    entry.verify(lists)?;
                    index.attach_lists(lists).map_err(|e| QueryError::Invalid {
                        file: entry.path.clone(),
                        message: e.to_string(),
                    })?;
                }
            }
            (None, false) => {}
            (None, true) => {
                return Err(QueryError::Invalid {
                    file: files.index.path.clone(),
                    message: "the index keeps its lists in a separate file the manifest does \
                              not list"
                        .into(),
                })
            }
            (Some(entry), false) => {
                return Err(QueryError::Invalid {
                    file: entry.path.clone(),
                    message: "the manifest lists a lists file for an index that has none".into(),
                })
            }
        }
        let rows = artifacts.rows.clone().filter(|_| external);
        let rows_url = files.rows.as_ref().map(|f| f.path.clone());
        let mut dense = Self::from_parts(index, (rows, rows_url), &manifest.search);
        dense.lists_url = files.lists.as_ref().map(|f| f.path.clone());
        Ok(dense)
    }

    /// Assembles the vector half from parts already verified. `rows`: the rows file when
    /// loaded whole, and its path.
    pub fn from_parts(
        index: Index,
        rows: (Option<Vec<u8>>, Option<String>),
        search: &SearchInfo,
    ) -> Self {
        Self {
            index,
            params: SearchParams {
                nprobe: search.nprobe,
                rerank: search.rerank,
            },
            rows: rows.0,
            rows_url: rows.1,
            lists_url: None,
            lists: FetchedLists::new(),
        }
    }
}

/// The index's dimension against the encoder's.
#[cfg(feature = "encoder")]
fn same_dim(dense: &Dense, dim: usize) -> Result<(), QueryError> {
    if dense.index.dim() == dim {
        return Ok(());
    }
    Err(QueryError::Invalid {
        file: "index".into(),
        message: format!(
            "index dimension {} differs from the encoder's {dim}",
            dense.index.dim()
        ),
    })
}

/// A loaded release: display records, lexical index and (once attached) the vector half and
/// the query encoder, queried the same way everywhere.
#[derive(Debug)]
pub struct Searcher {
    dense: Option<Dense>,
    /// The query encoder, where this build has one (the pipeline; a page's encoder is a wasm
    /// module of its own, which hands it vectors).
    #[cfg(feature = "encoder")]
    encoder: Option<QueryEncoder>,
    lexical: Option<Lexical>,
    docs: DocShards,
    ranking: Ranking,
    k: usize,
}

impl Searcher {
    /// Verifies every artifact against the manifest, then loads them: [`Searcher::records`],
    /// [`Dense::load`] and [`QueryEncoder::load`] together. `threads` > 1 needs the
    /// encoder's `threads` feature (native only).
    #[cfg(feature = "encoder")]
    pub fn load(
        manifest: &Manifest,
        artifacts: &Artifacts,
        threads: usize,
    ) -> Result<Self, QueryError> {
        let mut searcher = Self::records(manifest, artifacts)?;
        searcher.attach(Dense::load(manifest, artifacts)?)?;
        searcher.attach_encoder(QueryEncoder::load(manifest, artifacts, threads)?)?;
        Ok(searcher)
    }

    /// The records and the lexical index only (the shards and fragments at hand in the
    /// artifacts, and the lexical root, each verified): enough for a lexical release, and for
    /// a hybrid one to rank by words until [`Searcher::attach`] adds the dense half.
    pub fn records(manifest: &Manifest, artifacts: &Artifacts) -> Result<Self, QueryError> {
        let files = &manifest.files;
        // Without it, the shards' table root is left to come (a page asks for it as it starts,
        // so it does not share the link with the files words are searched with).
        let mut docs = DocShards::awaiting_table_root(files, manifest.data.documents)?;
        if let Some(root) = &artifacts.docs_table {
            docs.insert_table_root(root)?;
        }
        for (want, bytes) in &artifacts.docs {
            docs.insert(*want, bytes)?;
        }
        let lexical = match (&files.lexical, &artifacts.lexical_root) {
            (None, _) => None,
            (Some(l), Some(root)) => {
                l.root.verify(root)?;
                let mut lexical = Lexical::new(
                    root,
                    &l.root.path,
                    &l.fragments,
                    artifacts.lexical_table.as_deref(),
                )?;
                for (want, bytes) in &artifacts.lexical_fragments {
                    lexical.insert(*want, bytes)?;
                }
                Some(lexical)
            }
            (Some(l), None) => {
                return Err(QueryError::Invalid {
                    file: l.root.path.clone(),
                    message: "the lexical index root was not loaded".into(),
                })
            }
        };
        Self::new(lexical, docs, &manifest.search)
    }

    /// Assembles a searcher from parts already verified (the pipeline's evaluation, which
    /// searches its candidate before any manifest exists). `rows`: the rows file when loaded
    /// whole, and its path.
    #[cfg(feature = "encoder")]
    pub fn from_parts(
        encoder: searchbar_encoder::Encoder,
        index: Index,
        rows: (Option<Vec<u8>>, Option<String>),
        lexical: Option<Lexical>,
        docs: Vec<DocRecord>,
        search: &SearchInfo,
    ) -> Result<Self, QueryError> {
        let mut searcher = Self::new(lexical, DocShards::whole(docs), search)?;
        searcher.attach(Dense::from_parts(index, rows, search))?;
        searcher.attach_encoder(QueryEncoder::from_encoder(encoder))?;
        Ok(searcher)
    }

    /// A searcher without its dense half (records and lexical index checked against each
    /// other and the ranking).
    fn new(
        lexical: Option<Lexical>,
        docs: DocShards,
        search: &SearchInfo,
    ) -> Result<Self, QueryError> {
        if let Some(l) = &lexical {
            if l.index.documents() as usize != docs.len() {
                return Err(QueryError::Invalid {
                    file: "lexical index".into(),
                    message: format!(
                        "the lexical index covers {} documents, the release has {}",
                        l.index.documents(),
                        docs.len()
                    ),
                });
            }
        }
        let ranking = search.ranking();
        if ranking.mode.uses_lexical() && lexical.is_none() {
            return Err(QueryError::Invalid {
                file: "manifest.json".into(),
                message: format!(
                    "search.mode = \"{}\" needs a lexical index, and the release has none",
                    ranking.mode.name()
                ),
            });
        }
        if !(0.0..=1.0).contains(&ranking.alpha) {
            return Err(QueryError::Invalid {
                file: "manifest.json".into(),
                message: format!("search.alpha = {} must be between 0 and 1", ranking.alpha),
            });
        }
        Ok(Self {
            dense: None,
            #[cfg(feature = "encoder")]
            encoder: None,
            lexical,
            docs,
            ranking,
            k: search.k,
        })
    }

    /// Adds the dense half, checked against the records.
    pub fn attach(&mut self, dense: Dense) -> Result<(), QueryError> {
        if dense.index.len() != self.docs.len() {
            return Err(QueryError::Invalid {
                file: "index".into(),
                message: format!(
                    "{} vectors but {} document records",
                    dense.index.len(),
                    self.docs.len()
                ),
            });
        }
        #[cfg(feature = "encoder")]
        if let Some(encoder) = &self.encoder {
            same_dim(&dense, encoder.dim())?;
        }
        self.dense = Some(dense);
        Ok(())
    }

    /// Adds the query encoder, checked against the index where it is attached.
    #[cfg(feature = "encoder")]
    pub fn attach_encoder(&mut self, encoder: QueryEncoder) -> Result<(), QueryError> {
        if let Some(dense) = &self.dense {
            same_dim(dense, encoder.dim())?;
        }
        self.encoder = Some(encoder);
        Ok(())
    }

    /// Whether [`Searcher::query`] can rank as the manifest says: its mode reads no dense
    /// list, or the dense half is attached.
    pub fn complete_ranking(&self) -> bool {
        !self.ranking.mode.uses_dense() || self.dense.is_some()
    }

    fn dense(&self) -> Result<&Dense, QueryError> {
        self.dense.as_ref().ok_or_else(|| QueryError::Invalid {
            file: "manifest.json".into(),
            message: "the vector index is not loaded yet".into(),
        })
    }

    /// The top results for `text` (at most `k`, default from the manifest), ranked as the
    /// manifest says (dense, lexical or both fused), with every lexical fragment at hand.
    /// A query with no letters or digits returns nothing rather than noise.
    #[cfg(feature = "encoder")]
    pub fn query(&self, text: &str, k: Option<usize>) -> Result<Vec<QueryHit>, QueryError> {
        if !Self::searchable(text) {
            return Ok(Vec::new());
        }
        let lexical = self.lexical(text)?;
        let dense = if self.ranking.mode.uses_dense() {
            let vector = self.query_encoder()?.embed(text)?;
            Some(self.search(&vector, Some(self.depth(k)))?)
        } else {
            None
        };
        self.results(dense.as_deref(), lexical.as_ref(), k)
    }

    /// The results a page shows for `text` before its dense half is attached: a hybrid
    /// release's lexical list ranked alone. An error for a release that ranks by dense
    /// only, which has nothing to show until then.
    pub fn query_words(&self, text: &str, k: Option<usize>) -> Result<Vec<QueryHit>, QueryError> {
        if !self.ranking.mode.uses_lexical() {
            return Err(QueryError::Invalid {
                file: "manifest.json".into(),
                message: "search.mode = \"dense\" ranks by the encoder alone: no words-only \
                          results"
                    .into(),
            });
        }
        if !Self::searchable(text) {
            return Ok(Vec::new());
        }
        let lexical = self.lexical(text)?;
        self.results(None, lexical.as_ref(), k)
    }

    /// How the manifest ranks.
    pub fn ranking(&self) -> Ranking {
        self.ranking
    }

    /// How deep each list is read for a query of `k` results: deeper than `k` when two lists
    /// are fused.
    pub fn depth(&self, k: Option<usize>) -> usize {
        let k = k.unwrap_or(self.k);
        if self.ranking.mode == SearchMode::Hybrid {
            k.max(FUSION_DEPTH)
        } else {
            k
        }
    }

    /// The lexical index, where the release has one and its mode reads it.
    pub fn lexical_index(&self) -> Option<&Lexical> {
        self.lexical
            .as_ref()
            .filter(|_| self.ranking.mode.uses_lexical())
    }

    /// Keeps a lexical fragment or table page (verified) for the queries that need it.
    pub fn insert_fragment(&mut self, want: Want, bytes: &[u8]) -> Result<(), QueryError> {
        match &mut self.lexical {
            Some(l) => l.insert(want, bytes),
            None => Err(QueryError::Invalid {
                file: "manifest.json".into(),
                message: "the release has no lexical index".into(),
            }),
        }
    }

    /// The lexical matches of `text`, with every fragment it needs already at hand (`None`
    /// when the mode reads no lexical index); a missing fragment is an error naming its file.
    pub fn lexical(&self, text: &str) -> Result<Option<Matches>, QueryError> {
        let Some(l) = self.lexical_index() else {
            return Ok(None);
        };
        match l.search(text, self.depth(None))? {
            Outcome::Done(m) => Ok(Some(m)),
            Outcome::Need(n) => Err(QueryError::Invalid {
                file: l
                    .wanted(n)
                    .into_iter()
                    .map(|f| f.path)
                    .collect::<Vec<_>>()
                    .join(", "),
                message: "lexical fragment not loaded".into(),
            }),
        }
    }

    /// Fuses a query's lists as the manifest says: `dense` from [`Searcher::search`] or
    /// [`Searcher::begin`] at [`Searcher::depth`], `lexical` from [`Searcher::lexical`] or
    /// [`Lexical::search`]; either may be missing while it is being computed. Documents and
    /// scores only: their records come from [`Searcher::hits`].
    pub fn rank(
        &self,
        dense: Option<&[Hit]>,
        lexical: Option<&Matches>,
        k: Option<usize>,
    ) -> Vec<(u32, f32)> {
        let dense: Option<Vec<(u32, f32)>> =
            dense.map(|d| d.iter().map(|h| (h.doc, h.score)).collect());
        let lexical: Option<Vec<(u32, f32)>> =
            lexical.map(|m| m.hits.iter().map(|h| (h.doc, h.score)).collect());
        rank(
            &self.ranking,
            dense.as_deref(),
            lexical.as_deref(),
            k.unwrap_or(self.k),
        )
    }

    /// The document shards to fetch before [`Searcher::hits`] can show `ranked` (with, in a
    /// table without proofs, the pages that name them): none where every shard is. An
    /// error while their table's root has yet to come ([`Searcher::awaits_docs_table`]).
    pub fn missing_shards(&self, ranked: &[(u32, f32)]) -> Result<Vec<Fetch>, QueryError> {
        if let Some(root) = self.docs.awaited_table_root() {
            return Err(QueryError::Invalid {
                file: root.path.clone(),
                message: "the document shards' table root is not loaded yet".into(),
            });
        }
        Ok(self.docs.missing(ranked.iter().map(|(doc, _)| *doc)))
    }

    /// Whether the document shards' part table root has yet to come: the records were loaded
    /// without it ([`Artifacts::docs_table`] empty), and [`Searcher::insert_docs_table`] is
    /// still to be called.
    pub fn awaits_docs_table(&self) -> bool {
        self.docs.awaited_table_root().is_some()
    }

    /// Checks and keeps the document shards' part table root.
    pub fn insert_docs_table(&mut self, root: &[u8]) -> Result<(), QueryError> {
        Ok(self.docs.insert_table_root(root)?)
    }

    /// Keeps a document shard or table page (verified) for the results that need it.
    pub fn insert_shard(&mut self, want: Want, bytes: &[u8]) -> Result<(), QueryError> {
        Ok(self.docs.insert(want, bytes)?)
    }

    /// `ranked` with each document's record; a shard not at hand is an error naming its file.
    pub fn hits(&self, ranked: &[(u32, f32)]) -> Result<Vec<QueryHit>, QueryError> {
        ranked
            .iter()
            .map(|&(doc, score)| {
                Ok(QueryHit {
                    doc,
                    score,
                    record: self.docs.get(doc)?.clone(),
                })
            })
            .collect()
    }

    /// [`Searcher::rank`], then [`Searcher::hits`]: for callers with every shard at hand.
    pub fn results(
        &self,
        dense: Option<&[Hit]>,
        lexical: Option<&Matches>,
        k: Option<usize>,
    ) -> Result<Vec<QueryHit>, QueryError> {
        self.hits(&self.rank(dense, lexical, k))
    }

    /// Whether [`Searcher::query`] would search `text` at all: it needs a letter or a digit.
    /// Callers that embed in slices themselves ([`Encoder::start`]) check it first.
    pub fn searchable(text: &str) -> bool {
        text.chars().any(char::is_alphanumeric)
    }

    /// Searches with an already-embedded query. An index with external re-ranking rows needs
    /// its rows file loaded whole here; a page uses [`Searcher::begin`] instead.
    pub fn search(&self, vector: &[f32], k: Option<usize>) -> Result<Vec<Hit>, QueryError> {
        self.search_with(vector, k, &self.dense()?.params)
    }

    /// [`Searcher::search`] with other search parameters than the manifest's (the pipeline's
    /// evaluation measures what each `nprobe` buys).
    pub fn search_with(
        &self,
        vector: &[f32],
        k: Option<usize>,
        params: &SearchParams,
    ) -> Result<Vec<Hit>, QueryError> {
        let k = k.unwrap_or(self.k);
        let d = self.dense()?;
        Ok(match &d.rows {
            Some(rows) => d.index.search_rows_file(vector, k, params, None, rows)?,
            None => d.index.search(vector, k, params, None)?,
        })
    }

    /// Starts a dense search whose inverted lists or re-ranking rows may have to be fetched:
    /// either the dense list (`k`, default [`Searcher::depth`]) for [`Searcher::results`], the
    /// lists to fetch and keep ([`Searcher::insert_lists`]) before beginning again, or the
    /// records to fetch for [`Searcher::complete`]. Both stages are the index's own
    /// ([`Index::candidates_in`], [`Index::rerank`]), as in [`Searcher::search`].
    pub fn begin(&self, vector: &[f32], k: Option<usize>) -> Result<Stage, QueryError> {
        let k = k.unwrap_or_else(|| self.depth(None));
        let d = self.dense()?;
        // With the lists in memory and the rows file at hand (or the vectors inside the index)
        // nothing is fetched.
        if d.index.lists_in_memory() && (d.rows.is_some() || d.index.store().is_some()) {
            return Ok(Stage::Done(self.search(vector, Some(k))?));
        }
        let missing = d.index.missing_lists(vector, &d.params, &d.lists)?;
        if !missing.is_empty() {
            return Ok(Stage::NeedLists(ListRequest {
                url: d.lists_url.clone().unwrap_or_default(),
                ranges: missing,
            }));
        }
        let candidates = d
            .index
            .candidates_in(vector, k, &d.params, None, &d.lists)?;
        if !candidates.needs_rows() {
            let hits = d.index.rerank(vector, candidates, &FetchedRows::new())?;
            return Ok(Stage::Done(hits));
        }
        let url = d.rows_url.clone().unwrap_or_default();
        let ranges = candidates
            .docs()
            .into_iter()
            .filter_map(|doc| Some((doc, d.index.row_range(doc)?)))
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
    ) -> Result<Vec<Hit>, QueryError> {
        let d = self.dense()?;
        let mut fetched = FetchedRows::new();
        for (doc, bytes) in records {
            request
                .candidates
                .insert_row(&mut fetched, *doc, bytes)
                .map_err(searchbar_index::SearchError::from)?;
        }
        Ok(d.index.rerank(vector, request.candidates, &fetched)?)
    }

    /// Keeps the fetched lists of a [`ListRequest`] (list number, bytes), each verified
    /// against the index before it counts, for this query and the next ones (up to
    /// [`KEPT_LIST_ENTRIES`] entries; then the searcher starts over).
    pub fn insert_lists(&mut self, lists: &[(u32, Vec<u8>)]) -> Result<(), QueryError> {
        let Some(d) = self.dense.as_mut() else {
            return Err(QueryError::Invalid {
                file: "manifest.json".into(),
                message: "the vector index is not loaded yet".into(),
            });
        };
        if d.lists.entries() > KEPT_LIST_ENTRIES {
            d.lists.clear();
        }
        for (l, bytes) in lists {
            d.index
                .insert_list(&mut d.lists, *l, bytes)
                .map_err(|e| QueryError::Invalid {
                    file: d.lists_url.clone().unwrap_or_default(),
                    message: e.to_string(),
                })?;
        }
        Ok(())
    }

    /// The query encoder, once attached.
    #[cfg(feature = "encoder")]
    pub fn encoder(&self) -> Option<&QueryEncoder> {
        self.encoder.as_ref()
    }

    #[cfg(feature = "encoder")]
    fn query_encoder(&self) -> Result<&QueryEncoder, QueryError> {
        self.encoder.as_ref().ok_or_else(|| QueryError::Invalid {
            file: "manifest.json".into(),
            message: "the encoder is not loaded yet".into(),
        })
    }

    /// The vector index, once the dense half is attached.
    pub fn index(&self) -> Option<&Index> {
        self.dense.as_ref().map(|d| &d.index)
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
    fn token_requests_cross_between_modules_as_numbers_and_bad_ones_are_refused() {
        let request = TokenRequest {
            url: "../../files/tokens.bin".into(),
            spans: vec![
                TokenSpan {
                    first: 7,
                    count: 2,
                    bytes: 2716..3492,
                },
                TokenSpan {
                    first: u32::MAX - 1,
                    count: 1,
                    bytes: (1 << 40)..(1 << 40) + 388,
                },
            ],
        };
        let flat = request.to_flat();
        assert_eq!(flat.len(), 8);
        assert_eq!(
            TokenRequest::from_flat(&request.url, &flat).unwrap(),
            request
        );
        assert!(TokenRequest::from_flat("t", &[]).unwrap().spans.is_empty());
        for bad in [
            vec![1.0, 2.0, 3.0],
            vec![1.5, 1.0, 0.0, 388.0],
            vec![-1.0, 1.0, 0.0, 388.0],
            vec![1.0, 1.0, 388.0, 0.0],
            vec![1.0, 1.0, 0.0, f64::NAN],
            vec![2f64.powi(32), 1.0, 0.0, 388.0],
        ] {
            let e = TokenRequest::from_flat("tokens.bin", &bad)
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("tokens.bin: "), "{bad:?}: {e}");
        }
    }

    #[test]
    fn a_huge_document_count_is_an_error_not_an_allocation() {
        let shard = br#"[{"id":"a","title":"A","url":null,"snippet":""}]"#.to_vec();
        let entry = |name: &str, bytes: &[u8]| {
            serde_json::json!({"path": format!("../../files/{name}"), "bytes": bytes.len(),
                "sha256": searchbar_release::sha256_hex(bytes)})
        };
        let manifest = serde_json::json!({
            "format": searchbar_release::MANIFEST_FORMAT, "release": "r", "created": "2026-12-02T00:00:00Z",
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
            docs: vec![(Want::Part(0), shard)],
            ..Default::default()
        };
        let e = Searcher::records(&manifest, &artifacts)
            .unwrap_err()
            .to_string();
        assert!(e.contains("data.documents"), "{e}");

        // Paged: a root of one page digest cannot stand for more than a page of shards.
        let root = [7u8; 16];
        let mut paged = manifest.clone();
        paged.files.docs = PartList::Paged(searchbar_release::PartTable {
            root: searchbar_release::FileRef {
                path: "../../files/docs-table.bin".into(),
                bytes: 16,
                sha256: searchbar_release::sha256_hex(&root),
            },
            parts: usize::MAX,
            per_page: 1 << 16,
            name: "docs.json".into(),
            digest: searchbar_release::SHORT_SHA256,
            proofs: false,
        });
        let artifacts = Artifacts {
            docs_table: Some(root.to_vec()),
            ..Default::default()
        };
        let e = Searcher::records(&paged, &artifacts)
            .unwrap_err()
            .to_string();
        assert!(e.contains("page digests"), "{e}");
        // Nor when the root comes after the records (a page's order): nothing is sized by the
        // count before the root is in, and no shard is named.
        let mut s = Searcher::records(&paged, &Artifacts::default()).unwrap();
        assert!(s.awaits_docs_table());
        let e = s.missing_shards(&[(0, 1.0)]).unwrap_err().to_string();
        assert!(
            e.contains("docs-table.bin") && e.contains("not loaded yet"),
            "{e}"
        );
        let e = s.insert_docs_table(&root).unwrap_err().to_string();
        assert!(e.contains("page digests"), "{e}");
        assert!(s.awaits_docs_table());
    }
}
