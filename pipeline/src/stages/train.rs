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

/// The separate lists file of an index with `lists_file = true`.
pub fn lists_path(ctx: &Ctx) -> PathBuf {
    ctx.ws.join("candidate").join("lists.bin")
}

/// The candidate's rows file, if its index has one; checked against what training recorded.
pub fn read_rows(ctx: &Ctx, info: &TrainInfo) -> Result<Option<Vec<u8>>> {
    read_side_file(rows_path(ctx), info.rows_sha256.as_ref())
}

/// The candidate's lists file, if its index has one; checked against what training recorded.
pub fn read_lists(ctx: &Ctx, info: &TrainInfo) -> Result<Option<Vec<u8>>> {
    read_side_file(lists_path(ctx), info.lists_sha256.as_ref())
}

fn read_side_file(p: PathBuf, want: Option<&String>) -> Result<Option<Vec<u8>>> {
    let Some(want) = want else {
        return Ok(None);
    };
    let bytes = std::fs::read(&p)
        .with_context(|| format!("reading {} (run `searchbar train`)", p.display()))?;
    if &searchbar_release::sha256_hex(&bytes) != want {
        bail!(
            "{} changed after training: run `searchbar train` again",
            p.display()
        );
    }
    Ok(Some(bytes))
}

/// Writes a side file of the index, or removes one an earlier build left.
fn write_side_file(p: PathBuf, bytes: Option<&[u8]>) -> Result<()> {
    match bytes {
        Some(bytes) => write_atomic(&p, bytes)?,
        None => match std::fs::remove_file(p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        },
    }
    Ok(())
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
    /// `lists_file = true`: the separate lists file.
    #[serde(default)]
    pub lists_bytes: Option<usize>,
    #[serde(default)]
    pub lists_sha256: Option<String>,
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

/// An index's files beside its own: the re-ranking rows and the inverted lists, where they
/// are kept apart.
#[derive(Debug, Default)]
pub struct SideFiles {
    pub rows: Option<Vec<u8>>,
    pub lists: Option<Vec<u8>>,
}

/// The index, its side files, and what was trained.
pub fn build(
    cfg: &IndexConfig,
    dim: usize,
    vectors: &[f32],
) -> Result<(Index, SideFiles, TrainInfo)> {
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
    let (index, side, nlist) = if ivfpq {
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
        let (idx, lists, rows) = if cfg.lists_file {
            let (idx, lists, rows) = idx.into_split(rows)?;
            (idx, Some(lists), rows)
        } else {
            (idx, None, rows)
        };
        (Index::from(idx), SideFiles { rows, lists }, Some(nlist))
    } else {
        (
            Index::from(FlatInt8::build(dim, vectors)?),
            SideFiles::default(),
            None,
        )
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
        rows_bytes: side.rows.as_ref().map(Vec::len),
        rows_sha256: side.rows.as_deref().map(searchbar_release::sha256_hex),
        lists_bytes: side.lists.as_ref().map(Vec::len),
        lists_sha256: side.lists.as_deref().map(searchbar_release::sha256_hex),
        lexical: None,
    };
    Ok((index, side, info))
}

pub fn execute(ctx: &Ctx) -> Result<TrainInfo> {
    let snapshot = super::ingest::require_current(ctx)?;
    let (dim, vectors) = super::embed::vectors(ctx, &snapshot)?;
    let (index, side, mut info) = build(&ctx.config().index, dim, &vectors)?;
    let (lexical, lexical_info) = build_lexical(ctx, &snapshot)?;
    write_lexical(ctx, &lexical)?;
    info.lexical = Some(lexical_info);
    // The side files first: an index is never on disk without the rows and lists it names.
    write_side_file(rows_path(ctx), side.rows.as_deref())?;
    write_side_file(lists_path(ctx), side.lists.as_deref())?;
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
        )) + &info.lists_bytes.map_or(String::new(), |b| format!(
            "; inverted lists in a separate file of {b} bytes, fetched per query"
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
