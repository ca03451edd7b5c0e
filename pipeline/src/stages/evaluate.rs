//! Evaluate and gate: measure the shipped index exactly as the browser will search it, and
//! refuse a candidate worse than the thresholds or the live release (TFX-style blessing).

use super::ctx::Ctx;
use super::gate::{self, GateCheck, Live};
use crate::deploy::fsutil::write_atomic;
use anyhow::{Context, Result};
use searchbar_index::metrics::{evaluate as beir, recall_at_k};
use searchbar_index::qrels::{parse_qrels_tsv, parse_queries_jsonl, Qrels, Query};
use searchbar_index::{Index, SearchParams};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

/// Exit code of a refused candidate (documented in the README).
pub const GATE_REFUSED: u8 = 3;

pub fn report_path(ctx: &Ctx) -> PathBuf {
    ctx.ws.join("candidate").join("report.json")
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Judged {
    pub queries: usize,
    pub ndcg_at_10: f64,
    pub mrr_at_10: f64,
    pub recall_at_100: f64,
    /// The same metrics with exact fp32 search over the unquantized embeddings.
    pub exact_ndcg_at_10: f64,
    pub exact_mrr_at_10: f64,
    pub exact_recall_at_100: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub index_sha256: String,
    pub kind: String,
    pub documents: usize,
    pub index_bytes: usize,
    pub bytes_per_document: f64,
    /// recall@10 of the shipped index against exact search (judged + sampled queries).
    pub recall_at_10: f64,
    pub recall_queries: usize,
    pub judged: Option<Judged>,
    /// Median native latency of the index search alone, and of embed + search, in ms.
    pub search_ms_p50: f64,
    pub query_ms_p50: f64,
    pub baseline: Option<String>,
    pub gate: Vec<GateCheck>,
    pub passed: bool,
    pub forced: bool,
}

pub(crate) struct EvalSet {
    pub queries: Vec<Query>,
    pub qrels: Qrels,
}

pub(crate) fn load_eval_set(ctx: &Ctx) -> Result<Option<EvalSet>> {
    let c = &ctx.config().evaluation;
    let (Some(q), Some(r)) = (&c.queries, &c.qrels) else {
        return Ok(None);
    };
    let (qp, rp) = (ctx.project.path(q), ctx.project.path(r));
    let qt = std::fs::read_to_string(&qp).with_context(|| format!("reading {}", qp.display()))?;
    let rt = std::fs::read_to_string(&rp).with_context(|| format!("reading {}", rp.display()))?;
    let qrels = parse_qrels_tsv(&rt, &rp.display().to_string())?;
    let queries = parse_queries_jsonl(&qt, &qp.display().to_string())?
        .into_iter()
        .filter(|q| qrels.contains_key(&q.id))
        .collect();
    Ok(Some(EvalSet { queries, qrels }))
}

/// Fingerprints of the evaluation inputs (judgment files).
pub fn eval_inputs(ctx: &Ctx, out: &mut super::graph::Fingerprints) {
    let c = &ctx.config().evaluation;
    for (key, p) in [("eval.queries", &c.queries), ("eval.qrels", &c.qrels)] {
        let v = p.as_ref().map_or_else(
            || "none".into(),
            |p| super::ctx::file_hash(&ctx.project.path(p)),
        );
        out.insert(key.into(), v);
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Measures the candidate and applies the gate against `baseline` (the manifest of the release
/// live on the target being run for, if any). Writes the report either way.
pub fn execute(ctx: &Ctx, baseline: Option<&searchbar_release::Manifest>) -> Result<Report> {
    let snapshot = super::ingest::require_current(ctx)?;
    let (dim, vectors) = super::embed::vectors(ctx, &snapshot)?;
    let bytes = std::fs::read(super::train::index_path(ctx))
        .context("no candidate index: run `searchbar train` first")?;
    let index = Index::from_bytes(&bytes)?;
    // An index with a separate rows file is searched as the browser does: each candidate's
    // record is verified against the index before it re-ranks.
    let rows = super::train::read_rows(ctx, &super::train::read_info(ctx)?)?;
    let rows = rows.as_deref().unwrap_or_default();
    let encoder = ctx.encoder()?;
    let s = &ctx.config().search;
    let params = SearchParams {
        nprobe: s.nprobe,
        rerank: s.rerank,
    };
    let ids: Vec<&str> = snapshot.documents.iter().map(|d| d.id.as_str()).collect();
    let n = ids.len();

    // Queries: the judged ones (embedded like the browser does) plus documents as queries.
    let eval = load_eval_set(ctx)?;
    let mut qvecs: Vec<f32> = Vec::new();
    let mut query_ms = Vec::new();
    let judged_count = eval.as_ref().map_or(0, |e| e.queries.len());
    if let Some(e) = &eval {
        for q in &e.queries {
            let t = Instant::now();
            let v = encoder.embed(&q.text)?;
            index.search_rows_file(&v, s.k, &params, None, rows)?;
            query_ms.push(t.elapsed().as_secs_f64() * 1e3);
            qvecs.extend_from_slice(&v);
        }
    }
    let sampled = ctx.config().evaluation.recall_queries.min(n);
    for i in 0..sampled {
        let d = i * n / sampled.max(1);
        qvecs.extend_from_slice(&vectors[d * dim..(d + 1) * dim]);
    }
    let nq = qvecs.len() / dim;
    let depth = 100.min(n);
    let exact = searchbar_faiss::exact_search(dim, &vectors, &qvecs, depth)?;
    let mut recall = 0.0;
    let mut search_ms = Vec::with_capacity(nq);
    let mut approx_runs = Vec::with_capacity(nq);
    for (qi, truth) in exact.iter().enumerate() {
        let q = &qvecs[qi * dim..(qi + 1) * dim];
        let t = Instant::now();
        let hits = index.search_rows_file(q, depth, &params, None, rows)?;
        search_ms.push(t.elapsed().as_secs_f64() * 1e3);
        let got: Vec<u32> = hits.iter().map(|h| h.doc).collect();
        let want: Vec<u32> = truth.iter().map(|(d, _)| *d).collect();
        recall += recall_at_k(&got, &want, 10.min(n));
        approx_runs.push(got);
    }
    let recall_at_10 = if nq > 0 { recall / nq as f64 } else { 1.0 };

    let judged = eval.as_ref().map(|e| {
        let to_run = |rows: &mut dyn Iterator<Item = Vec<u32>>| -> BTreeMap<String, Vec<&str>> {
            e.queries
                .iter()
                .zip(rows)
                .map(|(q, docs)| {
                    (
                        q.id.clone(),
                        docs.iter().map(|&d| ids[d as usize]).collect(),
                    )
                })
                .collect()
        };
        let approx = beir(
            &to_run(&mut approx_runs.iter().take(judged_count).cloned()),
            &e.qrels,
        );
        let exact_rows = exact
            .iter()
            .take(judged_count)
            .map(|r| r.iter().map(|(d, _)| *d).collect());
        let exact = beir(&to_run(&mut exact_rows.into_iter()), &e.qrels);
        Judged {
            queries: approx.queries,
            ndcg_at_10: approx.ndcg_at_10,
            mrr_at_10: approx.mrr_at_10,
            recall_at_100: approx.recall_at_100,
            exact_ndcg_at_10: exact.ndcg_at_10,
            exact_mrr_at_10: exact.mrr_at_10,
            exact_recall_at_100: exact.recall_at_100,
        }
    });

    let info = super::train::read_info(ctx)?;
    let mut report = Report {
        index_sha256: searchbar_release::sha256_hex(&bytes),
        kind: info.kind,
        documents: n,
        index_bytes: bytes.len(),
        bytes_per_document: bytes.len() as f64 / n.max(1) as f64,
        recall_at_10,
        recall_queries: nq,
        judged,
        search_ms_p50: median(search_ms),
        query_ms_p50: median(query_ms),
        baseline: baseline.map(|m| m.release.clone()),
        gate: Vec::new(),
        passed: true,
        forced: false,
    };
    let removed = baseline.and_then(|live| {
        super::ingest::removed_between(ctx, &live.data.fingerprint, &snapshot.fingerprint)
    });
    report.gate = gate::checks(
        &ctx.config().gate,
        &summary(&report),
        n,
        baseline.map(|m| Live {
            evaluation: &m.evaluation,
            documents: m.data.documents,
        }),
        removed,
    );
    report.passed = report.gate.iter().all(|c| c.passed);
    write_atomic(&report_path(ctx), &serde_json::to_vec_pretty(&report)?)?;
    print_report(&report);
    Ok(report)
}

fn print_report(r: &Report) {
    println!(
        "evaluate: {} index, {} docs, {:.1} bytes/doc; recall@10 vs exact {:.4} over {} queries; \
         search p50 {:.3} ms, embed+search p50 {:.2} ms",
        r.kind,
        r.documents,
        r.bytes_per_document,
        r.recall_at_10,
        r.recall_queries,
        r.search_ms_p50,
        r.query_ms_p50
    );
    if let Some(j) = &r.judged {
        println!(
            "evaluate: {} judged queries: nDCG@10 {:.4} (exact {:.4}), MRR@10 {:.4}, recall@100 {:.4}",
            j.queries, j.ndcg_at_10, j.exact_ndcg_at_10, j.mrr_at_10, j.recall_at_100
        );
    }
    for c in &r.gate {
        println!("gate: {}", gate::line(c));
    }
}

pub fn read_report(ctx: &Ctx) -> Result<Report> {
    let p = report_path(ctx);
    let b = std::fs::read(&p)
        .with_context(|| format!("reading {} (run `searchbar evaluate`)", p.display()))?;
    Ok(serde_json::from_slice(&b)?)
}

/// The manifest's evaluation summary for a report.
pub fn summary(r: &Report) -> searchbar_release::Evaluation {
    searchbar_release::Evaluation {
        ndcg_at_10: r.judged.as_ref().map(|j| j.ndcg_at_10),
        ndcg_at_10_exact: r.judged.as_ref().map(|j| j.exact_ndcg_at_10),
        mrr_at_10: r.judged.as_ref().map(|j| j.mrr_at_10),
        recall_at_100: r.judged.as_ref().map(|j| j.recall_at_100),
        recall_at_10: r.recall_at_10,
        queries: r.judged.as_ref().map_or(0, |j| j.queries),
        forced: r.forced,
    }
}
