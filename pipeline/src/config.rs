//! `searchbar.toml`: one documented file for the whole pipeline. Every key has a default;
//! unknown keys and bad values are errors that name the key.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const CONFIG_NAME: &str = "searchbar.toml";

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the pipeline keeps snapshots, caches, candidates and stage records.
    pub workspace: PathBuf,
    pub source: searchbar_store::SourceConfig,
    pub documents: searchbar_store::DocumentsConfig,
    pub validation: searchbar_store::ValidationConfig,
    pub drift: searchbar_store::DriftConfig,
    pub model: ModelConfig,
    pub index: IndexConfig,
    pub lexical: LexicalConfig,
    pub search: SearchConfig,
    pub evaluation: EvaluationConfig,
    pub gate: GateConfig,
    pub web: WebConfig,
    pub deploy: DeployConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// A local sentence-transformers ONNX directory instead of the pinned default.
    pub dir: Option<PathBuf>,
    /// A model lock file (pinned wheels) instead of the built-in one.
    pub lock: Option<PathBuf>,
    /// Encoder threads; 0 = every core.
    pub threads: usize,
    pub batch_size: usize,
    /// The encoder's matmul weights: `auto` (4-bit where the model lock records a measured plan
    /// for this model, else int8), `int8`, or `int4`. A change is a model change: documents are
    /// embedded again and the candidate is gated.
    pub weights: crate::model::WeightsChoice,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            dir: None,
            lock: None,
            threads: 0,
            batch_size: 16,
            weights: crate::model::WeightsChoice::Auto,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IndexKindConfig {
    /// `flat` up to `flat_max_docs` documents, `ivfpq` above.
    Auto,
    Flat,
    Ivfpq,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IndexConfig {
    pub kind: IndexKindConfig,
    pub flat_max_docs: usize,
    /// IVF lists; 0 = about 4·sqrt(documents).
    pub nlist: usize,
    /// PQ sub-quantizers (must divide the dimension); one code byte each per document.
    pub m: usize,
    pub nbits: u32,
    /// IVF-PQ: where the int8 copies of the vectors for re-ranking (dim + 4 bytes per
    /// document) go: `true` in the index file, `"external"` in a separate rows file that
    /// clients fetch from per query (the index keeps m + 12 bytes per document), `false`
    /// nowhere (a compact index of m + 4 bytes per document, searched with `search.rerank = 0`).
    pub rerank_store: RerankStore,
    /// IVF-PQ: keep the inverted lists (m + 4 bytes per document, plus 8 for the row digest
    /// with external rows) in a separate lists file that a page reads by HTTP range, the lists
    /// each query probes; the index file then holds nothing per document (centroids, codebook
    /// and a digest per list). Needs `rerank_store = "external"` or `false`.
    pub lists_file: bool,
    /// Train on at most this many vectors; 0 = all.
    pub train_sample: usize,
    pub seed: u64,
}

impl Default for IndexConfig {
    fn default() -> Self {
        Self {
            kind: IndexKindConfig::Auto,
            flat_max_docs: 50_000,
            nlist: 0,
            m: 48,
            nbits: 8,
            rerank_store: RerankStore::Embedded,
            lists_file: false,
            train_sample: 0,
            seed: 1234,
        }
    }
}

pub use searchbar_index::RerankStore;

/// `[lexical]`: the BM25F index built beside the vector index (crates/searchbar-lexical).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LexicalConfig {
    /// A Snowball stemmer language (english, french, german, ...), or "none".
    pub language: String,
    /// Words left out of the index and of queries; unset: the 33 English stop words of
    /// Lucene for English, none for other languages.
    pub stop_words: Option<Vec<String>>,
    pub k1: f32,
    pub b: f32,
    /// How much a title word counts against a word of the document text.
    pub title_weight: f32,
    pub text_weight: f32,
    /// Target size of one dictionary, typo or postings fragment (a page fetches only the
    /// ones its query's words fall in).
    pub fragment_bytes: usize,
    /// The most postings a query reads from the blocks of long lists, best first.
    pub budget: u32,
}

impl Default for LexicalConfig {
    fn default() -> Self {
        let d = searchbar_lexical::BuildConfig::default();
        Self {
            language: d.analysis.language,
            stop_words: None,
            k1: d.k1,
            b: d.b,
            // Chosen on SciFact's training judgments (docs/configuration.md): 2 beat 1 and 3.
            title_weight: 2.0,
            text_weight: d.text_weight,
            fragment_bytes: d.fragment_bytes,
            budget: d.budget,
        }
    }
}

impl LexicalConfig {
    /// The build settings; errors name the `lexical.` key.
    pub fn build_config(&self) -> Result<searchbar_lexical::BuildConfig> {
        let stop_words = match &self.stop_words {
            Some(words) => words.clone(),
            None if self.language == "english" => searchbar_lexical::ENGLISH_STOP_WORDS
                .iter()
                .map(|w| w.to_string())
                .collect(),
            None => Vec::new(),
        };
        let cfg = searchbar_lexical::BuildConfig {
            analysis: searchbar_lexical::Analysis {
                language: self.language.clone(),
                stop_words,
            },
            k1: self.k1,
            b: self.b,
            title_weight: self.title_weight,
            text_weight: self.text_weight,
            fragment_bytes: self.fragment_bytes,
            budget: self.budget,
        };
        cfg.check()
            .map_err(|e| anyhow::anyhow!("lexical.{}", strip(&e)))?;
        Ok(cfg)
    }
}

/// The lexical crate's message without its own prefix, so that it reads as a key.
fn strip(e: &searchbar_lexical::LexicalError) -> String {
    match e {
        searchbar_lexical::LexicalError::Config(m) => m.clone(),
        other => other.to_string(),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SearchConfig {
    /// Results per query.
    pub k: usize,
    pub nprobe: usize,
    pub rerank: usize,
    /// "hybrid" (the lexical and dense lists fused), "dense" or "lexical".
    pub mode: searchbar_release::SearchMode,
    /// "convex" (a weighted sum of normalised scores) or "rrf" (reciprocal rank fusion).
    pub fusion: searchbar_release::Fusion,
    /// The dense list's weight in convex fusion; unset: chosen by `evaluate` on judged
    /// queries.
    pub alpha: Option<f32>,
    /// The best dense score below which a query matching no word shows no results; unset:
    /// chosen by `evaluate`.
    pub floor: Option<f32>,
}

impl Default for SearchConfig {
    fn default() -> Self {
        Self {
            k: 10,
            nprobe: 16,
            rerank: 100,
            mode: searchbar_release::SearchMode::Hybrid,
            fusion: searchbar_release::Fusion::Convex,
            alpha: None,
            floor: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvaluationConfig {
    /// BEIR `queries.jsonl`; empty = no judged evaluation (recall only).
    pub queries: Option<PathBuf>,
    /// BEIR qrels TSV (`query-id corpus-id score`).
    pub qrels: Option<PathBuf>,
    /// Documents sampled as extra queries for recall@10 against exact search.
    pub recall_queries: usize,
    /// Judgments (of queries in `queries`) that tune the fusion weight and the floor, kept
    /// apart from `qrels`, which only reports. Unset: `folds`-fold cross-validation on
    /// `qrels`, the reported figure from held-out folds only.
    pub tune_qrels: Option<PathBuf>,
    pub folds: usize,
}

impl Default for EvaluationConfig {
    fn default() -> Self {
        Self {
            queries: Some("data/catalog/queries.jsonl".into()),
            qrels: Some("data/catalog/qrels.tsv".into()),
            recall_queries: 200,
            tune_qrels: None,
            folds: 5,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GateConfig {
    /// recall@10 of the shipped index against exact search must reach this.
    pub min_recall_at_10: f64,
    /// nDCG@10 may not fall more than this below the live release's.
    pub max_ndcg_drop: f64,
    /// Absolute nDCG@10 floor (0 = none).
    pub min_ndcg_at_10: f64,
    /// A candidate with fewer documents is refused (a source that came back empty or cut
    /// short must not replace a full catalog).
    pub min_documents: usize,
    /// At most this share of the live release's documents may be gone from the candidate.
    pub max_removed_share: f64,
}

impl Default for GateConfig {
    fn default() -> Self {
        Self {
            min_recall_at_10: 0.95,
            max_ndcg_drop: 0.01,
            min_ndcg_at_10: 0.0,
            min_documents: 1,
            max_removed_share: 0.5,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    /// trunk's output directory (the web bundle shipped in each release).
    pub dist: PathBuf,
    /// Documents per display-metadata shard. A page fetches the shards of the results it
    /// shows: eight records are about 1.3 KB with brotli, so ten results cost about 13 KB
    /// (shards of 32: 47 KB on SciFact), at the cost of more files (named in a part table
    /// beyond 256, so the manifest does not grow with them).
    pub docs_per_shard: usize,
    /// Entries per part table page: a release with more document shards (or lexical
    /// fragments) than this names them in a table a page reads by need, not in its manifest.
    /// Unset: listed up to 256, else pages sized by the count (`searchbar_release::page_entries`).
    pub parts_per_page: Option<usize>,
    /// Snippets are cut to this many characters.
    pub snippet_chars: usize,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            dist: "dist".into(),
            docs_per_shard: 8,
            parts_per_page: None,
            snippet_chars: 280,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeployConfig {
    /// Releases kept per target besides the live one (at least 2).
    pub keep: usize,
    /// Environment name -> directory, or `s3://bucket/prefix` for an S3-compatible bucket.
    pub targets: BTreeMap<String, PathBuf>,
    /// Where `searchbar serve` listens.
    pub listen: String,
    /// How to reach the buckets of `s3://` targets.
    pub s3: crate::deploy::bucket::S3Config,
}

impl Default for DeployConfig {
    fn default() -> Self {
        Self {
            keep: 5,
            targets: [
                ("stage".to_string(), PathBuf::from("deploy/stage")),
                ("prod".to_string(), PathBuf::from("deploy/prod")),
            ]
            .into(),
            listen: "127.0.0.1:8080".into(),
            s3: Default::default(),
        }
    }
}

/// A loaded config and the directory its relative paths are resolved against.
#[derive(Debug, Clone)]
pub struct Project {
    pub config: Config,
    pub root: PathBuf,
    pub config_path: PathBuf,
}

impl Project {
    /// Loads `path`; a missing file at the default location means all defaults.
    pub fn load(path: &Path) -> Result<Self> {
        let root = path
            .parent()
            .map(|p| {
                if p.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    p.to_path_buf()
                }
            })
            .unwrap_or_else(|| PathBuf::from("."));
        let text = std::fs::read_to_string(path).with_context(|| {
            format!("reading {} (create one, or pass --config)", path.display())
        })?;
        let config = parse(&text, &path.display().to_string())?;
        Ok(Self {
            config,
            root,
            config_path: path.to_path_buf(),
        })
    }

    pub fn path(&self, p: &Path) -> PathBuf {
        crate::deploy::resolve_path(&self.root, p)
    }

    pub fn workspace(&self) -> PathBuf {
        self.path(&self.config.workspace)
    }

    pub fn target(&self, env: &str) -> Result<crate::deploy::Target> {
        let dir = self.config.deploy.targets.get(env).with_context(|| {
            format!(
                "no deploy target {env:?} in [deploy.targets] of {} (have: {})",
                self.config_path.display(),
                self.config
                    .deploy
                    .targets
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
        match s3_url(dir) {
            Some(url) => {
                let bucket = crate::deploy::bucket::Bucket::open(url, &self.config.deploy.s3)
                    .with_context(|| format!("deploy target {env:?}"))?;
                Ok(crate::deploy::Target::bucket(env, bucket))
            }
            None => Ok(crate::deploy::Target::new(env, self.path(dir))),
        }
    }
}

/// The URL of a target written `s3://...`; `None` for a directory.
fn s3_url(target: &Path) -> Option<&str> {
    target.to_str().filter(|t| t.starts_with("s3://"))
}

/// Parses and validates; errors name the file and the key.
pub fn parse(text: &str, file: &str) -> Result<Config> {
    let mut config: Config = toml::from_str(text)
        .map_err(|e| anyhow::anyhow!("{file}: {}", e.message().trim()).context(locate(&e)))?;
    if config.workspace.as_os_str().is_empty() {
        config.workspace = PathBuf::from(".searchbar");
    }
    validate(&config).with_context(|| format!("{file}: invalid configuration"))?;
    Ok(config)
}

fn locate(e: &toml::de::Error) -> String {
    match e.span() {
        Some(span) => format!("at bytes {}..{}", span.start, span.end),
        None => "in the file".into(),
    }
}

fn validate(c: &Config) -> Result<()> {
    c.source.validate()?;
    c.documents.validate()?;
    if c.model.batch_size == 0 {
        bail!("model.batch_size must be at least 1");
    }
    let i = &c.index;
    if !(1..=8).contains(&i.nbits) {
        bail!("index.nbits = {} must be between 1 and 8", i.nbits);
    }
    if i.m == 0 {
        bail!("index.m must be at least 1");
    }
    if c.search.k == 0 {
        bail!("search.k must be at least 1");
    }
    if c.search.nprobe == 0 {
        bail!("search.nprobe must be at least 1");
    }
    if let Some(a) = c.search.alpha {
        if !(0.0..=1.0).contains(&a) {
            bail!("search.alpha = {a} must be between 0 and 1");
        }
    }
    if let Some(f) = c.search.floor {
        if !f.is_finite() {
            bail!("search.floor = {f} must be a number");
        }
    }
    c.lexical.build_config()?;
    if c.evaluation.folds < 2 {
        bail!(
            "evaluation.folds = {} must be at least 2",
            c.evaluation.folds
        );
    }
    if c.evaluation.tune_qrels.is_some() && c.evaluation.qrels.is_none() {
        bail!("evaluation.tune_qrels needs evaluation.queries and evaluation.qrels");
    }
    if i.rerank_store == RerankStore::None && i.kind != IndexKindConfig::Flat && c.search.rerank > 0
    {
        bail!(
            "index.rerank_store = false ships no vectors to re-rank with: set search.rerank = 0 \
             (it is {})",
            c.search.rerank
        );
    }
    if i.lists_file && i.rerank_store == RerankStore::Embedded {
        bail!(
            "index.lists_file = true needs the re-ranking vectors outside the index: set \
             index.rerank_store = \"external\" (or false)"
        );
    }
    if i.lists_file && i.kind == IndexKindConfig::Flat {
        bail!("index.lists_file = true is for IVF-PQ indexes: set index.kind = \"ivfpq\"");
    }
    let g = &c.gate;
    for (key, v) in [
        ("gate.min_recall_at_10", g.min_recall_at_10),
        ("gate.max_ndcg_drop", g.max_ndcg_drop),
        ("gate.min_ndcg_at_10", g.min_ndcg_at_10),
        ("gate.max_removed_share", g.max_removed_share),
    ] {
        if !(0.0..=1.0).contains(&v) {
            bail!("{key} = {v} must be between 0 and 1");
        }
    }
    if c.evaluation.queries.is_some() != c.evaluation.qrels.is_some() {
        bail!("evaluation.queries and evaluation.qrels must be set together");
    }
    if c.web.docs_per_shard == 0 {
        bail!("web.docs_per_shard must be at least 1");
    }
    if let Some(n) = c.web.parts_per_page {
        if !(1..=searchbar_release::MAX_PER_PAGE).contains(&n) {
            bail!(
                "web.parts_per_page = {n} must be 1 to {}",
                searchbar_release::MAX_PER_PAGE
            );
        }
    }
    if c.deploy.targets.is_empty() {
        bail!("deploy.targets must name at least one target");
    }
    for (name, at) in &c.deploy.targets {
        if let Some(url) = s3_url(at) {
            crate::deploy::bucket::parse_url(url)
                .with_context(|| format!("deploy.targets.{name}"))?;
        }
        if let Some(e) = &c.deploy.s3.endpoint {
            if !e.starts_with("http://") && !e.starts_with("https://") {
                bail!("deploy.s3.endpoint = {e:?} must be an http:// or https:// URL");
            }
        }
        if name.is_empty()
            || !name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
        {
            bail!("deploy.targets: {name:?} is not a valid environment name (letters, digits, - and _)");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rerank_store_is_a_bool_or_external() {
        for (text, want) in [
            ("true", RerankStore::Embedded),
            ("false", RerankStore::None),
            ("\"external\"", RerankStore::External),
        ] {
            let c: IndexConfig = toml::from_str(&format!("rerank_store = {text}")).unwrap();
            assert_eq!(c.rerank_store, want);
            let back: IndexConfig = toml::from_str(&toml::to_string(&c).unwrap()).unwrap();
            assert_eq!(back.rerank_store, want, "round trip");
        }
        let e = toml::from_str::<IndexConfig>("rerank_store = \"yes\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("rerank_store") && e.contains("external"), "{e}");
    }
}
