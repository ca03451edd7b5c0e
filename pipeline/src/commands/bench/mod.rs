//! `searchbar-bench-index`: index configurations side by side on this project's embeddings
//! (queried with its judged queries) or on a synthetic clustered set. For each: recall@10
//! against exact FAISS search, bytes per document of the shipped file, build time (FAISS
//! training + adding, then our export) and single-thread search latency with the same search
//! code the browser runs. `--dump DIR` also writes the vectors, the ground truth and every
//! index file, for the faiss-cpu and browser peers (scripts/bench/index.sh).

mod spec;
mod synthetic;

use crate::commands::pipeline::ProjectArgs;
use crate::config::IndexConfig;
use crate::deploy::fsutil::write_atomic;
use crate::stages::ctx::Ctx;
use anyhow::{bail, Context, Result};
use searchbar_faiss::{FaissIvfPq, IvfPqParams};
use searchbar_index::metrics::recall_at_k;
use searchbar_index::rows::record_len;
use searchbar_index::{FlatInt8, Index, RerankRows, SearchParams};
use serde::Serialize;
use spec::{Build, Spec};
use std::path::{Path, PathBuf};
use std::time::Instant;

const K: usize = 10;
const DEFAULT_SPECS: [&str; 5] = [
    "flat:rerank=0",
    "ivfpq:m=48,nprobe=8/16/32,rerank=100",
    "ivfpq:m=48,store=external,nprobe=16,rerank=100",
    "ivfpq:m=48,store=false,nprobe=8/16/32,rerank=0",
    "ivfpq:m=96,store=false,nprobe=8/16/32,rerank=0",
];

/// `searchbar-bench-index`'s command line: the project options and the benchmark's.
#[derive(Debug, clap::Parser)]
#[command(
    name = "searchbar-bench-index",
    version,
    about = "Compare index configurations: recall@10, bytes per document, build time, latency"
)]
struct Cli {
    /// The project's configuration file (`searchbar -c`; here `--config` names an index
    /// configuration).
    #[arg(long, short = 'c', env = "SEARCHBAR_CONFIG", default_value = crate::config::CONFIG_NAME)]
    project: PathBuf,
    #[command(flatten)]
    args: BenchIndexArgs,
}

/// The `searchbar-bench-index` binary.
pub fn main() -> std::process::ExitCode {
    // FAISS trains and searches on OpenMP threads here too.
    crate::cli::calm_openmp();
    let cli = <Cli as clap::Parser>::parse();
    let project = ProjectArgs {
        config: cli.project,
    };
    crate::cli::exit_code(run(&project, &cli.args))
}

#[derive(Debug, clap::Args)]
pub struct BenchIndexArgs {
    /// Benchmark a synthetic clustered set of N documents (384-d unless --dim) instead of this
    /// project's embeddings.
    #[arg(long, value_name = "N")]
    pub synthetic: Option<usize>,
    /// Synthetic set: dimension, clusters (0 = one per 400 documents: 20 sub-clusters of about
    /// 20 documents each, as calibrated), queries, seed.
    #[arg(long, default_value_t = 384)]
    pub dim: usize,
    #[arg(long, default_value_t = 0)]
    pub clusters: usize,
    #[arg(long, default_value_t = 1000)]
    pub queries: usize,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// An index configuration, repeatable: `flat[:rerank=R]` or
    /// `ivfpq:nlist=N,m=M,nbits=B,store=true|false|external,sample=S,nprobe=P1/P2,rerank=R1/R2`.
    #[arg(long = "config", value_name = "SPEC")]
    pub configs: Vec<Spec>,
    /// Write base.f32, queries.f32, truth.u32, index-<i>.sbx (and rows-<i>.bin for external
    /// rows) and bench.json here.
    #[arg(long, value_name = "DIR")]
    pub dump: Option<PathBuf>,
    /// Write the results as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
struct Row {
    config: usize,
    spec: String,
    kind: &'static str,
    nlist: Option<usize>,
    m: Option<usize>,
    /// int8 re-ranking vectors: in the index file (`embedded`), in a separate rows file fetched
    /// per query (`external`), or none (`compact`).
    store: &'static str,
    nprobe: usize,
    rerank: usize,
    recall_at_10: f64,
    bytes: usize,
    bytes_per_doc: f64,
    /// External rows only: the rows file (stays on the server) and what a query fetches of it.
    rows_bytes_per_doc: Option<f64>,
    fetched_bytes_per_query: Option<f64>,
    search_ms_p50: f64,
    search_ms_p90: f64,
}

#[derive(Debug, Serialize)]
struct Built {
    spec: String,
    kind: &'static str,
    /// FAISS `index_factory` string and training sample, for the faiss-cpu peer.
    factory: Option<String>,
    train_sample: usize,
    nlist: Option<usize>,
    /// FAISS train + add, and our export (codes, codebooks, int8 store) after it.
    faiss_s: f64,
    export_s: f64,
    build_s: f64,
    bytes: usize,
    file: Option<String>,
    /// The separate rows file of an external index.
    rows_bytes: Option<usize>,
    rows_file: Option<String>,
}

#[derive(Debug, Serialize)]
struct Results {
    data: String,
    documents: usize,
    dim: usize,
    queries: usize,
    seed: u64,
    exact_s: f64,
    builds: Vec<Built>,
    rows: Vec<Row>,
}

struct Data {
    label: String,
    dim: usize,
    base: Vec<f32>,
    queries: Vec<f32>,
}

pub fn run(p: &ProjectArgs, a: &BenchIndexArgs) -> Result<()> {
    let specs: Vec<Spec> = if a.configs.is_empty() {
        DEFAULT_SPECS
            .iter()
            .map(|s| s.parse())
            .collect::<Result<_>>()?
    } else {
        a.configs.clone()
    };
    let data = load_data(p, a)?;
    let (dim, n, nq) = (
        data.dim,
        data.base.len() / data.dim,
        data.queries.len() / data.dim,
    );
    eprintln!(
        "bench-index: {}: {n} documents x {dim}, {nq} queries",
        data.label
    );

    let t = Instant::now();
    let truth: Vec<Vec<u32>> = searchbar_faiss::exact_search(dim, &data.base, &data.queries, K)?
        .into_iter()
        .map(|r| r.into_iter().map(|(d, _)| d).collect())
        .collect();
    let exact_s = t.elapsed().as_secs_f64();
    eprintln!("bench-index: exact top-{K} with FAISS IndexFlatIP in {exact_s:.1}s");
    if let Some(dir) = &a.dump {
        dump_vectors(dir, &data, &truth)?;
    }

    let mut results = Results {
        data: data.label.clone(),
        documents: n,
        dim,
        queries: nq,
        seed: a.seed,
        exact_s,
        builds: Vec::new(),
        rows: Vec::new(),
    };
    println!(
        "| config | bytes/doc | rows file B/doc | fetched KB/query | nprobe | rerank | recall@10 | p50 ms | p90 ms | build s |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (i, spec) in specs.iter().enumerate() {
        let (index, rows, mut built) = build(spec, &data, a.seed)?;
        let bytes = index.to_bytes();
        built.bytes = bytes.len();
        built.rows_bytes = rows.as_ref().map(Vec::len);
        if let Some(dir) = &a.dump {
            let name = format!("index-{i}.sbx");
            write_atomic(&dir.join(&name), &bytes)?;
            built.file = Some(name);
            if let Some(rows) = &rows {
                let name = format!("rows-{i}.bin");
                write_atomic(&dir.join(&name), rows)?;
                built.rows_file = Some(name);
            }
        }
        drop(bytes);
        let store = match &index {
            Index::FlatInt8(_) => "embedded",
            Index::IvfPq(ivf) => match ivf.rerank_rows() {
                RerankRows::Embedded => "embedded",
                RerankRows::External { .. } => "external",
                RerankRows::Compact => "compact",
            },
        };
        for &nprobe in &spec.nprobe {
            for &rerank in &spec.rerank {
                let measured = measure(&index, rows.as_deref(), &data, &truth, nprobe, rerank)
                    .with_context(|| format!("searching {}", spec.text))?;
                let row = Row {
                    config: i,
                    spec: spec.text.clone(),
                    kind: built.kind,
                    nlist: built.nlist,
                    m: match spec.build {
                        Build::IvfPq { m, .. } => Some(m),
                        Build::Flat => None,
                    },
                    store,
                    bytes: built.bytes,
                    bytes_per_doc: built.bytes as f64 / n as f64,
                    rows_bytes_per_doc: built.rows_bytes.map(|b| b as f64 / n as f64),
                    fetched_bytes_per_query: rows.as_ref().map(|_| measured.fetched_bytes),
                    nprobe,
                    rerank,
                    recall_at_10: measured.recall_at_10,
                    search_ms_p50: measured.p50,
                    search_ms_p90: measured.p90,
                };
                let opt = |v: Option<f64>, scale: f64| {
                    v.map_or_else(|| "–".to_string(), |v| format!("{:.1}", v / scale))
                };
                println!(
                    "| {} | {:.1} | {} | {} | {} | {} | {:.4} | {:.3} | {:.3} | {:.1} |",
                    row.spec,
                    row.bytes_per_doc,
                    opt(row.rows_bytes_per_doc, 1.0),
                    opt(row.fetched_bytes_per_query, 1e3),
                    row.nprobe,
                    row.rerank,
                    row.recall_at_10,
                    row.search_ms_p50,
                    row.search_ms_p90,
                    built.build_s
                );
                results.rows.push(row);
            }
        }
        results.builds.push(built);
    }
    let json = serde_json::to_vec_pretty(&results)?;
    if let Some(dir) = &a.dump {
        write_atomic(&dir.join("bench.json"), &json)?;
    }
    if let Some(path) = &a.json {
        write_atomic(path, &json)?;
    }
    Ok(())
}

fn load_data(p: &ProjectArgs, a: &BenchIndexArgs) -> Result<Data> {
    if let Some(n) = a.synthetic {
        if n == 0 || a.dim == 0 || a.queries == 0 {
            bail!("--synthetic, --dim and --queries must be at least 1");
        }
        let per_cluster = synthetic::SUBCLUSTERS * 20;
        let clusters = if a.clusters > 0 {
            a.clusters
        } else {
            (n / per_cluster).max(1)
        };
        let t = Instant::now();
        let mix = synthetic::Mixture::new(a.dim, clusters, a.seed);
        let base = mix.sample(n, 0);
        let queries = mix.sample(a.queries, 1);
        eprintln!(
            "bench-index: generated {n} + {} synthetic vectors in {:.1}s",
            a.queries,
            t.elapsed().as_secs_f64()
        );
        return Ok(Data {
            label: format!(
                "synthetic: {clusters} clusters x {} sub-clusters, power-law spectrum, seed {}",
                synthetic::SUBCLUSTERS,
                a.seed
            ),
            dim: a.dim,
            base,
            queries,
        });
    }
    let ctx = Ctx::new(p.load()?);
    let snapshot = crate::stages::ingest::require_current(&ctx)?;
    let (dim, base) = crate::stages::embed::vectors(&ctx, &snapshot)?;
    let Some(eval) = crate::stages::evaluate::load_eval_set(&ctx)? else {
        bail!("no [evaluation] queries configured to query with: configure them, or use --synthetic N");
    };
    let encoder = ctx.encoder()?;
    let mut queries = Vec::with_capacity(eval.queries.len() * dim);
    for q in &eval.queries {
        queries.extend(encoder.embed(&q.text)?);
    }
    Ok(Data {
        label: format!(
            "{} (judged queries)",
            std::fs::canonicalize(&ctx.project.root)
                .unwrap_or_else(|_| ctx.project.root.clone())
                .display()
        ),
        dim,
        base,
        queries,
    })
}

/// The index, the rows file of an external one, and how it was built.
fn build(spec: &Spec, data: &Data, seed: u64) -> Result<(Index, Option<Vec<u8>>, Built)> {
    let n = data.base.len() / data.dim;
    let t = Instant::now();
    let (index, rows, built) = match spec.build {
        Build::Flat => {
            let index: Index = FlatInt8::build(data.dim, &data.base)?.into();
            let s = t.elapsed().as_secs_f64();
            let built = Built {
                spec: spec.text.clone(),
                kind: "flat",
                factory: None,
                train_sample: 0,
                nlist: None,
                faiss_s: 0.0,
                export_s: s,
                build_s: s,
                bytes: 0,
                file: None,
                rows_bytes: None,
                rows_file: None,
            };
            (index, None, built)
        }
        Build::IvfPq {
            nlist,
            m,
            nbits,
            store,
            sample,
        } => {
            let cfg = IndexConfig {
                nlist,
                ..IndexConfig::default()
            };
            let params = IvfPqParams {
                nlist: crate::stages::train::nlist_for(&cfg, n),
                m,
                nbits,
                by_residual: true,
                seed,
                train_sample: (sample > 0 && sample < n).then_some(sample),
            };
            let faiss = FaissIvfPq::train(data.dim, &data.base, &params)
                .with_context(|| format!("training {} with FAISS", spec.text))?;
            let faiss_s = t.elapsed().as_secs_f64();
            let ivf = faiss.export(&data.base)?;
            let (ivf, rows) = ivf.with_rerank_store(store)?;
            let build_s = t.elapsed().as_secs_f64();
            let built = Built {
                spec: spec.text.clone(),
                kind: "ivfpq",
                factory: Some(params.factory_string()),
                train_sample: params.train_sample.unwrap_or(n),
                nlist: Some(params.nlist),
                faiss_s,
                export_s: build_s - faiss_s,
                build_s,
                bytes: 0,
                file: None,
                rows_bytes: None,
                rows_file: None,
            };
            (Index::from(ivf), rows, built)
        }
    };
    Ok((index, rows, built))
}

/// Recall and single-thread latency of one search setting.
struct Measured {
    recall_at_10: f64,
    p50: f64,
    p90: f64,
    /// Bytes of rows-file records a query fetches (external rows only).
    fetched_bytes: f64,
}

/// Times each query's search. An index with a separate rows file is searched as a browser
/// does, in two stages: the candidates' records are cut from `rows` (standing in for the range
/// requests), verified against the index's digests, then re-ranked; the time includes all.
fn measure(
    index: &Index,
    rows: Option<&[u8]>,
    data: &Data,
    truth: &[Vec<u32>],
    nprobe: usize,
    rerank: usize,
) -> Result<Measured> {
    let params = SearchParams { nprobe, rerank };
    let mut ms = Vec::with_capacity(truth.len());
    let mut recall = 0.0;
    // A query fetches the record of each candidate it re-scores.
    let fetched_bytes = match rows {
        Some(_) if rerank > 0 => rerank.min(index.len()) * record_len(data.dim),
        _ => 0,
    };
    for (q, want) in data.queries.chunks_exact(data.dim).zip(truth) {
        let t = Instant::now();
        let hits = match rows {
            None => index.search(q, K, &params, None)?,
            Some(file) => index.search_rows_file(q, K, &params, None, file)?,
        };
        ms.push(t.elapsed().as_secs_f64() * 1e3);
        let got: Vec<u32> = hits.iter().map(|h| h.doc).collect();
        recall += recall_at_k(&got, want, K);
    }
    ms.sort_by(f64::total_cmp);
    let pct = |p: f64| ms[((ms.len() - 1) as f64 * p).round() as usize];
    Ok(Measured {
        recall_at_10: recall / truth.len() as f64,
        p50: pct(0.5),
        p90: pct(0.9),
        fetched_bytes: fetched_bytes as f64,
    })
}

/// Raw little-endian arrays: `base.f32` (n x dim), `queries.f32` (nq x dim), `truth.u32`
/// (nq x 10 exact top-10 doc ordinals).
fn dump_vectors(dir: &Path, data: &Data, truth: &[Vec<u32>]) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let f32s = |v: &[f32]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
    write_atomic(&dir.join("base.f32"), &f32s(&data.base))?;
    write_atomic(&dir.join("queries.f32"), &f32s(&data.queries))?;
    let t: Vec<u8> = truth
        .iter()
        .flat_map(|r| {
            let mut r = r.clone();
            r.resize(K, u32::MAX);
            r
        })
        .flat_map(|d| d.to_le_bytes())
        .collect();
    write_atomic(&dir.join("truth.u32"), &t)?;
    Ok(())
}
