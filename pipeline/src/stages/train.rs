//! Train: build the shipped index from the cached embeddings (FAISS for IVF-PQ).

use super::ctx::Ctx;
use crate::config::{IndexConfig, IndexKindConfig};
use crate::deploy::fsutil::write_atomic;
use anyhow::{bail, Context, Result};
use searchbar_faiss::{train_ivfpq, IvfPqParams};
use searchbar_index::{FlatInt8, Index, IndexKind};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Instant;

pub fn index_path(ctx: &Ctx) -> PathBuf {
    ctx.ws.join("candidate").join("index.sbi")
}

/// The separate rows file of an index with `rerank_store = "external"`.
pub fn rows_path(ctx: &Ctx) -> PathBuf {
    ctx.ws.join("candidate").join("rows.bin")
}

/// The candidate's rows file, if its index has one; checked against what training recorded.
pub fn read_rows(ctx: &Ctx, info: &TrainInfo) -> Result<Option<Vec<u8>>> {
    let Some(want) = &info.rows_sha256 else {
        return Ok(None);
    };
    let p = rows_path(ctx);
    let rows = std::fs::read(&p)
        .with_context(|| format!("reading {} (run `searchbar train`)", p.display()))?;
    if &searchbar_release::sha256_hex(&rows) != want {
        bail!(
            "{} changed after training: run `searchbar train` again",
            p.display()
        );
    }
    Ok(Some(rows))
}

pub fn info_path(ctx: &Ctx) -> PathBuf {
    ctx.ws.join("candidate").join("train.json")
}

/// What was trained, with the parameters actually used (auto values resolved).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainInfo {
    pub kind: IndexKind,
    pub documents: usize,
    pub dim: usize,
    pub nlist: Option<usize>,
    pub m: Option<usize>,
    pub nbits: Option<u32>,
    pub bytes: usize,
    pub seconds: f64,
    pub sha256: String,
    /// `rerank_store = "external"`: the separate rows file.
    #[serde(default)]
    pub rows_bytes: Option<usize>,
    #[serde(default)]
    pub rows_sha256: Option<String>,
    /// The lexical index built beside it.
    #[serde(default)]
    pub lexical: Option<LexicalInfo>,
}

/// What the lexical build produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LexicalInfo {
    pub terms: usize,
    pub postings: usize,
    pub fragments: usize,
    pub root_bytes: usize,
    /// Root and fragments together.
    pub bytes: usize,
    pub seconds: f64,
    /// sha256 over the root's and each fragment's sha256, in order.
    pub sha256: String,
}

/// The candidate's lexical index: `root.bin` and one `<n>.bin` per fragment.
pub fn lexical_dir(ctx: &Ctx) -> PathBuf {
    ctx.ws.join("candidate").join("lexical")
}

fn lexical_digest(root: &[u8], fragments: &[Vec<u8>]) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for part in std::iter::once(root).chain(fragments.iter().map(Vec::as_slice)) {
        h.update(searchbar_release::sha256_hex(part));
    }
    hex::encode(h.finalize())
}

/// A lexical index as files: its root, and its fragments in the root's numbering.
pub type LexicalBytes = (Vec<u8>, Vec<Vec<u8>>);

/// The candidate's lexical root and fragments, checked against what training recorded.
pub fn read_lexical(ctx: &Ctx, info: &TrainInfo) -> Result<Option<LexicalBytes>> {
    let Some(want) = &info.lexical else {
        return Ok(None);
    };
    let dir = lexical_dir(ctx);
    let read = |name: String| {
        let p = dir.join(name);
        std::fs::read(&p)
            .with_context(|| format!("reading {} (run `searchbar train`)", p.display()))
    };
    let root = read("root.bin".into())?;
    let fragments = (0..want.fragments)
        .map(|n| read(format!("{n}.bin")))
        .collect::<Result<Vec<_>>>()?;
    if lexical_digest(&root, &fragments) != want.sha256 {
        bail!(
            "{} changed after training: run `searchbar train` again",
            dir.display()
        );
    }
    Ok(Some((root, fragments)))
}

/// Builds the lexical index over the documents' titles and texts (the rendered template).
fn build_lexical(
    ctx: &Ctx,
    snapshot: &searchbar_store::Snapshot,
) -> Result<(searchbar_lexical::Built, LexicalInfo)> {
    let cfg = ctx.config().lexical.build_config()?;
    let started = Instant::now();
    let built = searchbar_lexical::build(
        &cfg,
        snapshot
            .documents
            .iter()
            .map(|d| (d.title.as_str(), d.text.as_str())),
    )?;
    let info = LexicalInfo {
        terms: built.terms,
        postings: built.postings,
        fragments: built.fragments.len(),
        root_bytes: built.root.len(),
        bytes: built.root.len() + built.fragments.iter().map(Vec::len).sum::<usize>(),
        seconds: started.elapsed().as_secs_f64(),
        sha256: lexical_digest(&built.root, &built.fragments),
    };
    Ok((built, info))
}

/// Writes the fragments, then the root, and removes fragments a larger earlier build left.
fn write_lexical(ctx: &Ctx, built: &searchbar_lexical::Built) -> Result<()> {
    let dir = lexical_dir(ctx);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    for (n, bytes) in built.fragments.iter().enumerate() {
        write_atomic(&dir.join(format!("{n}.bin")), bytes)?;
    }
    write_atomic(&dir.join("root.bin"), &built.root)?;
    for entry in std::fs::read_dir(&dir)?.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let stale = name
            .strip_suffix(".bin")
            .and_then(|n| n.parse::<usize>().ok())
            .is_some_and(|n| n >= built.fragments.len());
        if stale {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// The IVF list count for `n` documents: `index.nlist`, or about 4·sqrt(n), capped so every
/// list gets FAISS's recommended 39 training points.
pub fn nlist_for(cfg: &IndexConfig, n: usize) -> usize {
    if cfg.nlist > 0 {
        return cfg.nlist;
    }
    let auto = (4.0 * (n as f64).sqrt()).round() as usize;
    auto.min(n / 39).max(1)
}

/// The index, the rows file of an external one, and what was trained.
pub fn build(
    cfg: &IndexConfig,
    dim: usize,
    vectors: &[f32],
) -> Result<(Index, Option<Vec<u8>>, TrainInfo)> {
    let n = vectors.len() / dim.max(1);
    if n == 0 {
        bail!("no documents to index");
    }
    let started = Instant::now();
    let ivfpq = match cfg.kind {
        IndexKindConfig::Flat => false,
        IndexKindConfig::Ivfpq => true,
        IndexKindConfig::Auto => n > cfg.flat_max_docs,
    };
    let (index, rows, nlist) = if ivfpq {
        if !dim.is_multiple_of(cfg.m) {
            bail!(
                "index.m = {} does not divide the embedding dimension {dim}",
                cfg.m
            );
        }
        let nlist = nlist_for(cfg, n);
        let params = IvfPqParams {
            nlist,
            m: cfg.m,
            nbits: cfg.nbits,
            by_residual: true,
            seed: cfg.seed,
            train_sample: (cfg.train_sample > 0).then_some(cfg.train_sample),
        };
        let idx = train_ivfpq(dim, vectors, &params).context("training IVF-PQ with FAISS")?;
        let (idx, rows) = idx.with_rerank_store(cfg.rerank_store)?;
        (Index::from(idx), rows, Some(nlist))
    } else {
        (Index::from(FlatInt8::build(dim, vectors)?), None, None)
    };
    let bytes = index.to_bytes();
    let info = TrainInfo {
        kind: index.kind(),
        documents: n,
        dim,
        nlist,
        m: ivfpq.then_some(cfg.m),
        nbits: ivfpq.then_some(cfg.nbits),
        bytes: bytes.len(),
        seconds: started.elapsed().as_secs_f64(),
        sha256: searchbar_release::sha256_hex(&bytes),
        rows_bytes: rows.as_ref().map(Vec::len),
        rows_sha256: rows.as_deref().map(searchbar_release::sha256_hex),
        lexical: None,
    };
    Ok((index, rows, info))
}

pub fn execute(ctx: &Ctx) -> Result<TrainInfo> {
    let snapshot = super::ingest::require_current(ctx)?;
    let (dim, vectors) = super::embed::vectors(ctx, &snapshot)?;
    let (index, rows, mut info) = build(&ctx.config().index, dim, &vectors)?;
    let (lexical, lexical_info) = build_lexical(ctx, &snapshot)?;
    write_lexical(ctx, &lexical)?;
    info.lexical = Some(lexical_info);
    // The rows file first: an index is never on disk without the rows it names.
    match &rows {
        Some(rows) => write_atomic(&rows_path(ctx), rows)?,
        None => match std::fs::remove_file(rows_path(ctx)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        },
    }
    write_atomic(&index_path(ctx), &index.to_bytes())?;
    write_atomic(&info_path(ctx), &serde_json::to_vec_pretty(&info)?)?;
    println!(
        "train: {} index over {} documents{} in {:.2}s, {} bytes ({:.1} bytes/doc){}",
        info.kind.as_str(),
        info.documents,
        info.nlist.map_or(String::new(), |l| format!(
            " (nlist {l}, PQ{}x{})",
            cfg_m(&info),
            info.nbits.unwrap_or(8)
        )),
        info.seconds,
        info.bytes,
        info.bytes as f64 / info.documents as f64,
        info.rows_bytes.map_or(String::new(), |b| format!(
            "; re-ranking rows in a separate file of {b} bytes, fetched per query"
        ))
    );
    if let Some(l) = &info.lexical {
        println!(
            "train: lexical index of {} terms, {} postings in {:.2}s: a {}-byte root and {} \
             fragments, {} bytes in all",
            l.terms, l.postings, l.seconds, l.root_bytes, l.fragments, l.bytes
        );
    }
    Ok(info)
}

fn cfg_m(info: &TrainInfo) -> usize {
    info.m.unwrap_or(0)
}

pub fn read_info(ctx: &Ctx) -> Result<TrainInfo> {
    let p = info_path(ctx);
    let b = std::fs::read(&p)
        .with_context(|| format!("reading {} (run `searchbar train`)", p.display()))?;
    Ok(serde_json::from_slice(&b)?)
}
