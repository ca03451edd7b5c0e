//! Evaluate and gate: measure the shipped index exactly as the browser will search it, and
//! refuse a candidate worse than the thresholds or the live release (TFX-style blessing).

use super::ctx::Ctx;
use super::gate::{self, GateCheck, Live};
use crate::deploy::fsutil::write_atomic;
use anyhow::{Context, Result};
use searchbar_index::metrics::{evaluate as beir, ndcg_at_k, recall_at_k};
use searchbar_index::qrels::{parse_qrels_tsv, parse_queries_jsonl, Qrels, Query};
use searchbar_index::{Index, IndexKind};
use searchbar_query::{query_encoder_config, Lexical, Searcher};
use searchbar_release::{
    rank, sha256_hex, DocRecord, FileRef, Fusion, ModeScores, PartList, Ranking, SearchInfo,
    SearchMode, Want, FUSION_DEPTH,
};
use serde::{Deserialize, Serialize};
use sha2::Digest;
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
    /// The shipped ranking (`search.mode`, as users get it: fused, floor applied).
    pub ndcg_at_10: f64,
    pub mrr_at_10: f64,
    pub recall_at_100: f64,
    /// Dense alone with exact fp32 search over the unquantized embeddings: the cost of the
    /// quantization.
    pub exact_ndcg_at_10: f64,
    pub exact_mrr_at_10: f64,
    pub exact_recall_at_100: f64,
}

/// The mixture a list alone was preferred over: its alpha, its lead in mean nDCG@10 and the
/// standard error of that lead.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct AloneOver {
    pub alpha: f32,
    pub gap: f64,
    pub standard_error: f64,
}

/// One ranking mode on the reported judgments.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModeResult {
    pub mode: SearchMode,
    pub ndcg_at_10: f64,
    pub mrr_at_10: f64,
    pub recall_at_100: f64,
}

/// How the fusion weight and the floor were chosen.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tuning {
    /// The judgments they were chosen on (a file, or "<n>-fold cross-validation").
    pub on: String,
    pub queries: usize,
    /// Mean nDCG@10 of hybrid search at each alpha, on the tuning judgments.
    pub sweep: Vec<(f32, f64)>,
    /// Set when one list alone ships because the best mixture beat it by no more than one
    /// standard error (see `choose_alpha`).
    #[serde(default)]
    pub alone_over: Option<AloneOver>,
    /// Tuning queries that get results under the shipped ranking, and nonsense queries that
    /// get none (both 0..=1).
    pub judged_above_floor: f64,
    pub nonsense_below_floor: f64,
    pub nonsense_queries: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub index_sha256: String,
    #[serde(default)]
    pub lexical_sha256: Option<String>,
    pub kind: IndexKind,
    /// The fingerprint of the data evaluated.
    #[serde(default)]
    pub data_fingerprint: String,
    pub documents: usize,
    pub index_bytes: usize,
    pub bytes_per_document: f64,
    /// recall@10 of the shipped index against exact search (judged + sampled queries).
    pub recall_at_10: f64,
    pub recall_queries: usize,
    pub judged: Option<Judged>,
    /// Lexical, dense and hybrid side by side on the reported judgments.
    #[serde(default)]
    pub modes: Vec<ModeResult>,
    #[serde(default)]
    pub tuning: Option<Tuning>,
    /// What the release ships: the ranking as evaluated.
    pub search: SearchInfo,
    /// Each reported query's top `search.k` documents under the shipped ranking (what
    /// `searchbar query` and the page show for it).
    #[serde(default)]
    pub runs: BTreeMap<String, Vec<String>>,
    /// The index searched at other `nprobe` values (IVF-PQ; the shipped one among them):
    /// what recall@10 each buys and what it costs.
    #[serde(default)]
    pub index_configs: Vec<IndexPoint>,
    /// Median native latency of the dense index search alone, and of a whole query (embed,
    /// both lists), in ms.
    pub search_ms_p50: f64,
    pub query_ms_p50: f64,
    pub baseline: Option<String>,
    pub gate: Vec<GateCheck>,
    pub passed: bool,
    pub forced: bool,
}

/// One search configuration of the candidate index, measured as the shipped one is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IndexPoint {
    pub nprobe: usize,
    pub rerank: usize,
    pub recall_at_10: f64,
    pub search_ms_p50: f64,
    pub shipped: bool,
}

pub(crate) struct EvalSet {
    pub queries: Vec<Query>,
    pub qrels: Qrels,
}

pub(crate) fn load_eval_set(ctx: &Ctx) -> Result<Option<EvalSet>> {
    let c = &ctx.config().evaluation;
    load_judged(ctx, c.queries.as_deref(), c.qrels.as_deref())
}

/// The judged queries of `qrels` (their texts from `queries`).
fn load_judged(
    ctx: &Ctx,
    queries: Option<&std::path::Path>,
    qrels: Option<&std::path::Path>,
) -> Result<Option<EvalSet>> {
    let (Some(q), Some(r)) = (queries, qrels) else {
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
    for (key, p) in [
        ("eval.queries", &c.queries),
        ("eval.qrels", &c.qrels),
        ("eval.tune_qrels", &c.tune_qrels),
    ] {
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

/// A query's two lists, best first, each as deep as the shipped searcher reads them.
struct Lists {
    dense: Vec<(u32, f32)>,
    lexical: Option<Vec<(u32, f32)>>,
}

impl Lists {
    /// The dense list's best score (the floor compares it).
    fn top(&self) -> f32 {
        self.dense.first().map_or(f32::NEG_INFINITY, |d| d.1)
    }
}

/// The candidate as a page will search it: the encoder settings of the manifest (mask-free,
/// single-threaded, as in the browser and `searchbar query`), the index with its rows and the
/// lexical index, each fragment verified as a page verifies it.
fn candidate_searcher(
    ctx: &Ctx,
    snapshot: &searchbar_store::Snapshot,
    info: &super::train::TrainInfo,
    index: &[u8],
) -> Result<Searcher> {
    let c = ctx.config();
    let model = ctx.model()?;
    let tokenizer = model.tokenizer_json()?;
    let config = query_encoder_config(&super::export::model_info(ctx, info.dim)?, 1)?;
    let encoder = ctx.prepared()?.encoder(&tokenizer, config)?;
    let lexical = match super::train::read_lexical(ctx, info)? {
        Some((root, fragments)) => {
            let dir = super::train::lexical_dir(ctx);
            let files = PartList::Listed(
                fragments
                    .iter()
                    .enumerate()
                    .map(|(n, f)| FileRef {
                        path: dir.join(format!("{n}.bin")).display().to_string(),
                        bytes: f.len() as u64,
                        sha256: sha256_hex(f),
                    })
                    .collect(),
            );
            let root_name = dir.join("root.bin").display().to_string();
            let mut l = Lexical::new(&root, &root_name, &files, None)?;
            for (n, f) in fragments.iter().enumerate() {
                l.insert(Want::Part(n), f)?;
            }
            Some(l)
        }
        None => None,
    };
    // Records only name the hits here: no titles or snippets held for the whole corpus.
    let docs = snapshot
        .documents
        .iter()
        .map(|d| DocRecord {
            id: d.id.clone(),
            title: String::new(),
            url: None,
            snippet: String::new(),
        })
        .collect();
    let search = SearchInfo {
        k: c.search.k,
        nprobe: c.search.nprobe,
        rerank: c.search.rerank,
        // Both lists whatever ships, to report the modes side by side.
        mode: if lexical.is_some() {
            SearchMode::Hybrid
        } else {
            SearchMode::Dense
        },
        fusion: c.search.fusion,
        alpha: 0.5,
        floor: None,
    };
    let rows = super::train::read_rows(ctx, info)?;
    let mut index = Index::from_bytes(index)?;
    // The whole lists file, each list checked as a page checks the ones it fetches.
    if let Some(lists) = super::train::read_lists(ctx, info)? {
        index
            .attach_lists(&lists)
            .context("the candidate's lists file")?;
    }
    Ok(Searcher::from_parts(
        encoder,
        index,
        (rows, None),
        lexical,
        docs,
        &search,
    )?)
}

/// Embeds `text` and computes both of its lists exactly as [`Searcher::query`] does.
fn lists(searcher: &Searcher, text: &str) -> Result<(Lists, Vec<f32>)> {
    let vector = searcher
        .encoder()
        .context("the candidate has no encoder")?
        .embed(text)?;
    let dense: Vec<(u32, f32)> = searcher
        .search(&vector, Some(searcher.depth(None)))?
        .iter()
        .map(|h| (h.doc, h.score))
        .collect();
    let lexical = searcher
        .lexical(text)?
        .map(|m| m.hits.iter().map(|h| (h.doc, h.score)).collect());
    Ok((Lists { dense, lexical }, vector))
}

/// Strings no catalog should answer: letters drawn from a fixed hash, one or two words of
/// 4 to 9 letters, plus the issue's own example. The floor must keep these out.
fn nonsense_queries() -> Vec<String> {
    let mut out = vec!["xyzzy".to_string()];
    for i in 0..99u32 {
        let h = sha2::Sha256::digest(format!("searchbar nonsense {i}"));
        let letters: Vec<char> = h.iter().map(|b| (b'a' + b % 26) as char).collect();
        let first = 4 + (h[0] % 6) as usize;
        let mut q: String = letters[1..1 + first].iter().collect();
        if i % 2 == 1 {
            let second = 4 + (h[31] % 6) as usize;
            q.push(' ');
            q.extend(&letters[12..12 + second]);
        }
        out.push(q);
    }
    out
}

/// The ranking's result documents for one query, as deep as the metrics read.
fn ranked<'a>(r: &Ranking, l: &Lists, ids: &[&'a str]) -> Vec<&'a str> {
    rank(r, Some(&l.dense), l.lexical.as_deref(), FUSION_DEPTH)
        .into_iter()
        .map(|(d, _)| ids[d as usize])
        .collect()
}

/// nDCG@10 of each query of `set` under `r`.
fn per_query_ndcg(r: &Ranking, set: &EvalSet, lists: &[Lists], ids: &[&str]) -> Vec<f64> {
    set.queries
        .iter()
        .zip(lists)
        .map(|(q, l)| ndcg_at_k(&ranked(r, l, ids), &set.qrels[&q.id], 10))
        .collect()
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

/// The alpha grid swept: 0 (lexical order) to 1 (dense order) in steps of 0.05.
fn alphas() -> Vec<f32> {
    (0..=20).map(|i| i as f32 / 20.0).collect()
}

/// The alpha to ship, from each alpha's per-query nDCG@10 over the queries `keep` selects: the
/// best mean (the lowest of equals), unless one list alone (alpha 0: the lexical order; 1: the
/// dense order) comes within one standard error of it, the paired difference's over the same
/// queries. Then the judged queries do not show that fusing beats that list, and the simpler
/// ranking ships (Breiman's one-standard-error rule): on a few dozen queries a mixture that is
/// best by a hair is as likely noise as gain, and it loses on queries it was not chosen on.
fn choose_alpha(sweep: &[(f32, Vec<f64>)], keep: impl Fn(usize) -> bool) -> AlphaChoice {
    let kept: Vec<(f32, Vec<f64>)> = sweep
        .iter()
        .map(|(a, scores)| {
            let v = scores
                .iter()
                .enumerate()
                .filter(|(i, _)| keep(*i))
                .map(|(_, s)| *s)
                .collect();
            (*a, v)
        })
        .collect();
    let Some(mut best) = kept.first() else {
        return AlphaChoice {
            alpha: 0.5,
            best: None,
        };
    };
    for entry in &kept {
        if mean(&entry.1) > mean(&best.1) + 1e-12 {
            best = entry;
        }
    }
    // The better of the lists within one standard error of the best, with what it was
    // preferred over.
    let mut alone: Option<(f32, f64, AloneOver)> = None;
    for (alpha, scores) in kept.iter().filter(|(a, _)| *a == 0.0 || *a == 1.0) {
        let diffs: Vec<f64> = best.1.iter().zip(scores).map(|(b, x)| b - x).collect();
        let over = AloneOver {
            alpha: best.0,
            gap: mean(&diffs),
            standard_error: standard_error(&diffs),
        };
        let m = mean(scores);
        if over.gap <= over.standard_error + 1e-12 && alone.is_none_or(|(_, am, _)| m > am) {
            alone = Some((*alpha, m, over));
        }
    }
    match alone {
        Some((alpha, _, over)) if alpha != best.0 => AlphaChoice {
            alpha,
            best: Some(over),
        },
        _ => AlphaChoice {
            alpha: best.0,
            best: None,
        },
    }
}

/// What [`choose_alpha`] chose, and when one list alone won by the one-standard-error rule,
/// the mixture it was preferred over.
#[derive(Debug, Clone, Copy)]
struct AlphaChoice {
    alpha: f32,
    best: Option<AloneOver>,
}

/// The standard error of the mean of `v` (0 with fewer than two values).
fn standard_error(v: &[f64]) -> f64 {
    if v.len() < 2 {
        return 0.0;
    }
    let m = mean(v);
    let var = v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (v.len() - 1) as f64;
    (var / v.len() as f64).sqrt()
}

/// The floor between real queries' best dense scores and nonsense's: halfway between the
/// highest nonsense score and the 1st percentile of the judged queries, or that percentile
/// where the two overlap (real queries are not given up for nonsense).
fn choose_floor(judged: &[f32], nonsense: &[f32]) -> Option<f32> {
    let mut judged: Vec<f32> = judged.iter().copied().filter(|v| v.is_finite()).collect();
    if judged.is_empty() {
        return None;
    }
    judged.sort_by(f32::total_cmp);
    let p1 = judged[judged.len() / 100];
    let worst = nonsense.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    Some(if worst < p1 { (worst + p1) / 2.0 } else { p1 })
}

/// Measures the candidate and applies the gate against `baseline` (the manifest of the release
/// live on the target being run for, if any). Writes the report either way.
pub fn execute(ctx: &Ctx, baseline: Option<&searchbar_release::Manifest>) -> Result<Report> {
    let c = ctx.config();
    let snapshot = super::ingest::require_current(ctx)?;
    let (dim, vectors) = super::embed::vectors(ctx, &snapshot)?;
    let bytes = std::fs::read(super::train::index_path(ctx))
        .context("no candidate index: run `searchbar train` first")?;
    let info = super::train::read_info(ctx)?;
    if info.sha256 != sha256_hex(&bytes) {
        anyhow::bail!("the candidate index changed after training: run `searchbar train` again");
    }
    let searcher = candidate_searcher(ctx, &snapshot, &info, &bytes)?;
    let has_lexical = searcher.lexical_index().is_some();
    if c.search.mode.uses_lexical() && !has_lexical {
        anyhow::bail!(
            "search.mode = \"{}\" needs the lexical index: run `searchbar train` again",
            c.search.mode.name()
        );
    }
    let ids: Vec<&str> = snapshot.documents.iter().map(|d| d.id.as_str()).collect();
    let n = ids.len();

    // The judged queries, each embedded and searched as users' queries are.
    let eval = load_eval_set(ctx)?;
    let tune = match &c.evaluation.tune_qrels {
        Some(t) => load_judged(ctx, c.evaluation.queries.as_deref(), Some(t))?,
        None => None,
    };
    let mut qvecs: Vec<f32> = Vec::new();
    let mut query_ms = Vec::new();
    let mut judged_lists = Vec::new();
    for q in eval.iter().flat_map(|e| &e.queries) {
        let t = Instant::now();
        let (l, v) = lists(&searcher, &q.text)?;
        query_ms.push(t.elapsed().as_secs_f64() * 1e3);
        qvecs.extend_from_slice(&v);
        judged_lists.push(l);
    }
    let judged_count = judged_lists.len();
    let tune_lists = tune
        .iter()
        .flat_map(|t| &t.queries)
        .map(|q| Ok(lists(&searcher, &q.text)?.0))
        .collect::<Result<Vec<_>>>()?;
    let nonsense_lists = nonsense_queries()
        .iter()
        .map(|q| Ok(lists(&searcher, q)?.0))
        .collect::<Result<Vec<_>>>()?;

    // The ranking that ships: the floor, then alpha, chosen on the tuning judgments (or by
    // cross-validation on the reported ones when there are none apart).
    let (tune_set, tune_l, tune_name) = match (&tune, &eval) {
        (Some(t), _) => (
            Some(t),
            &tune_lists,
            c.evaluation
                .tune_qrels
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        ),
        (None, Some(e)) => (
            Some(e),
            &judged_lists,
            format!("{}-fold cross-validation", c.evaluation.folds),
        ),
        (None, None) => (None, &judged_lists, String::new()),
    };
    let nonsense_tops: Vec<f32> = nonsense_lists.iter().map(Lists::top).collect();
    let floor = match (c.search.mode, c.search.floor) {
        (SearchMode::Lexical, _) => None,
        (_, Some(f)) => Some(f),
        (_, None) => choose_floor(
            &tune_l.iter().map(Lists::top).collect::<Vec<_>>(),
            &nonsense_tops,
        ),
    };
    let mut ranking = Ranking {
        mode: c.search.mode,
        fusion: c.search.fusion,
        alpha: c.search.alpha.unwrap_or(0.5),
        floor,
    };
    let sweepable = has_lexical
        && c.search.fusion == Fusion::Convex
        && c.search.alpha.is_none()
        && tune_set.is_some();
    let hybrid_at = |alpha: f32| Ranking {
        mode: SearchMode::Hybrid,
        alpha,
        ..ranking
    };
    let mut sweep: Vec<(f32, Vec<f64>)> = Vec::new();
    let mut alone_over = None;
    if let (true, Some(set)) = (sweepable, tune_set) {
        for a in alphas() {
            sweep.push((a, per_query_ndcg(&hybrid_at(a), set, tune_l, &ids)));
        }
        let choice = choose_alpha(&sweep, |_| true);
        ranking.alpha = choice.alpha;
        alone_over = choice.best;
    }
    // Cross-validation: each reported query is ranked with the alpha chosen without its fold.
    let held_out: Option<Vec<f32>> = (sweepable && tune.is_none()).then(|| {
        let folds = c.evaluation.folds;
        let per_fold: Vec<f32> = (0..folds)
            .map(|f| choose_alpha(&sweep, |i| i % folds != f).alpha)
            .collect();
        (0..judged_count).map(|i| per_fold[i % folds]).collect()
    });

    let modes: Vec<SearchMode> = if has_lexical {
        SearchMode::ALL.to_vec()
    } else {
        vec![SearchMode::Dense]
    };
    let mut mode_results = Vec::new();
    if let Some(e) = &eval {
        for &mode in &modes {
            let run: BTreeMap<String, Vec<&str>> = e
                .queries
                .iter()
                .zip(&judged_lists)
                .enumerate()
                .map(|(i, (q, l))| {
                    let alpha = match (&held_out, mode) {
                        (Some(a), SearchMode::Hybrid) => a[i],
                        _ => ranking.alpha,
                    };
                    let r = Ranking {
                        mode,
                        alpha,
                        ..ranking
                    };
                    (q.id.clone(), ranked(&r, l, &ids))
                })
                .collect();
            let s = beir(&run, &e.qrels);
            mode_results.push(ModeResult {
                mode,
                ndcg_at_10: s.ndcg_at_10,
                mrr_at_10: s.mrr_at_10,
                recall_at_100: s.recall_at_100,
            });
        }
    }
    let runs: BTreeMap<String, Vec<String>> = eval
        .iter()
        .flat_map(|e| e.queries.iter().zip(&judged_lists))
        .map(|(q, l)| {
            let top = rank(&ranking, Some(&l.dense), l.lexical.as_deref(), c.search.k);
            (
                q.id.clone(),
                top.into_iter()
                    .map(|(d, _)| ids[d as usize].to_string())
                    .collect(),
            )
        })
        .collect();
    let shown = |l: &Lists| !rank(&ranking, Some(&l.dense), l.lexical.as_deref(), 1).is_empty();
    let tuning = tune_set.map(|set| Tuning {
        on: tune_name.clone(),
        queries: set.queries.len(),
        sweep: sweep.iter().map(|(a, s)| (*a, mean(s))).collect(),
        alone_over,
        judged_above_floor: tune_l.iter().filter(|l| shown(l)).count() as f64
            / tune_l.len().max(1) as f64,
        nonsense_below_floor: nonsense_lists.iter().filter(|l| !shown(l)).count() as f64
            / nonsense_lists.len().max(1) as f64,
        nonsense_queries: nonsense_lists.len(),
    });

    // recall@10 of the shipped dense index against exact search: judged queries plus
    // documents as queries.
    let sampled = c.evaluation.recall_queries.min(n);
    for i in 0..sampled {
        let d = i * n / sampled.max(1);
        qvecs.extend_from_slice(&vectors[d * dim..(d + 1) * dim]);
    }
    let depth = 100.min(n);
    let exact = searchbar_faiss::exact_search(dim, &vectors, &qvecs, depth)?;
    let nq = exact.len();
    let truth = Truth {
        qvecs: &qvecs,
        exact: &exact,
        n,
    };
    let (recall_at_10, search_ms_p50) =
        recall_and_latency(&truth, |q| Ok(searcher.search(q, Some(depth))?))?;
    let index_configs = index_sweep(ctx, &info, &searcher, &truth, (recall_at_10, search_ms_p50))?;

    let judged = eval.as_ref().map(|e| {
        let shipped = mode_results
            .iter()
            .find(|m| m.mode == ranking.mode)
            .cloned();
        let exact_run: BTreeMap<String, Vec<&str>> = e
            .queries
            .iter()
            .zip(exact.iter().take(judged_count))
            .map(|(q, r)| {
                (
                    q.id.clone(),
                    r.iter().map(|(d, _)| ids[*d as usize]).collect(),
                )
            })
            .collect();
        let exact = beir(&exact_run, &e.qrels);
        let shipped = shipped.unwrap_or(ModeResult {
            mode: ranking.mode,
            ndcg_at_10: 0.0,
            mrr_at_10: 0.0,
            recall_at_100: 0.0,
        });
        Judged {
            queries: exact.queries,
            ndcg_at_10: shipped.ndcg_at_10,
            mrr_at_10: shipped.mrr_at_10,
            recall_at_100: shipped.recall_at_100,
            exact_ndcg_at_10: exact.ndcg_at_10,
            exact_mrr_at_10: exact.mrr_at_10,
            exact_recall_at_100: exact.recall_at_100,
        }
    });

    let mut report = Report {
        index_sha256: sha256_hex(&bytes),
        lexical_sha256: info.lexical.as_ref().map(|l| l.sha256.clone()),
        kind: info.kind,
        data_fingerprint: snapshot.fingerprint.clone(),
        documents: n,
        index_bytes: bytes.len(),
        bytes_per_document: bytes.len() as f64 / n.max(1) as f64,
        recall_at_10,
        recall_queries: nq,
        judged,
        modes: mode_results,
        tuning,
        runs,
        search: SearchInfo {
            k: c.search.k,
            nprobe: c.search.nprobe,
            rerank: c.search.rerank,
            mode: ranking.mode,
            fusion: ranking.fusion,
            alpha: ranking.alpha,
            floor: ranking.floor,
        },
        index_configs,
        search_ms_p50,
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
        &c.gate,
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

/// Queries, each with its true neighbours (best first) among `n` documents.
struct Truth<'a> {
    qvecs: &'a [f32],
    exact: &'a [Vec<(u32, f32)>],
    n: usize,
}

/// recall@10 of `search` against the true neighbours, and its median latency in ms.
fn recall_and_latency(
    t: &Truth,
    mut search: impl FnMut(&[f32]) -> Result<Vec<searchbar_index::Hit>>,
) -> Result<(f64, f64)> {
    let Truth { qvecs, exact, n } = *t;
    let dim = qvecs.len() / exact.len().max(1);
    let mut recall = 0.0;
    let mut ms = Vec::with_capacity(exact.len());
    for (qi, truth) in exact.iter().enumerate() {
        let t = Instant::now();
        let hits = search(&qvecs[qi * dim..(qi + 1) * dim])?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
        let got: Vec<u32> = hits.iter().map(|h| h.doc).collect();
        let want: Vec<u32> = truth.iter().map(|(d, _)| *d).collect();
        recall += recall_at_k(&got, &want, 10.min(n));
    }
    let recall = if exact.is_empty() {
        1.0
    } else {
        recall / exact.len() as f64
    };
    Ok((recall, median(ms)))
}

/// The candidate IVF-PQ index at `nprobe` 1, 2, 4, ... up to four times the shipped value (and
/// at most `nlist`), the shipped one included: recall@10 and latency measured as for the
/// shipped configuration, whose own measurement (`shipped_point`) is reused. A flat index has
/// one configuration, the shipped one.
fn index_sweep(
    ctx: &Ctx,
    info: &super::train::TrainInfo,
    searcher: &Searcher,
    truth: &Truth,
    shipped_point: (f64, f64),
) -> Result<Vec<IndexPoint>> {
    let n = truth.n;
    let s = &ctx.config().search;
    let Some(nlist) = info.nlist.filter(|_| info.kind == IndexKind::IvfPq) else {
        return Ok(Vec::new());
    };
    let depth = 100.min(n);
    let shipped = s.nprobe.clamp(1, nlist);
    let mut probes: Vec<usize> = std::iter::successors(Some(1usize), |p| Some(p * 2))
        .take_while(|&p| p <= (4 * shipped).min(nlist))
        .chain([shipped])
        .collect();
    probes.sort_unstable();
    probes.dedup();
    probes
        .into_iter()
        .map(|nprobe| {
            let params = searchbar_index::SearchParams {
                nprobe,
                rerank: s.rerank,
            };
            let (recall_at_10, search_ms_p50) = if nprobe == shipped {
                shipped_point
            } else {
                recall_and_latency(truth, |q| {
                    Ok(searcher.search_with(q, Some(depth), &params)?)
                })?
            };
            Ok(IndexPoint {
                nprobe,
                rerank: s.rerank,
                recall_at_10,
                search_ms_p50,
                shipped: nprobe == shipped,
            })
        })
        .collect()
}

/// Why one list alone ships at `alpha` (0 or 1) though a mixture had the best mean, if so.
pub fn alone_text(t: &Tuning, alpha: f32) -> Option<String> {
    let a = t.alone_over?;
    let list = if alpha == 0.0 { "lexical" } else { "dense" };
    Some(format!(
        "alpha {:.2} had the best mean nDCG@10, {:.4} ahead of {list} alone (alpha {alpha:.0}), \
         within one standard error ({:.4}): {list} alone ships",
        a.alpha, a.gap, a.standard_error,
    ))
}

/// The shipped ranking in words: mode, fusion and floor.
pub fn ranking_text(s: &SearchInfo) -> String {
    format!(
        "{} ranking{}{}",
        s.mode.name(),
        if s.mode == SearchMode::Hybrid {
            match s.fusion {
                Fusion::Convex => {
                    format!(", convex fusion with alpha {:.2} (dense weight)", s.alpha)
                }
                Fusion::Rrf => ", reciprocal rank fusion".to_string(),
            }
        } else {
            String::new()
        },
        s.floor
            .map_or_else(String::new, |f| format!(", relevance floor {f:.3}"))
    )
}

fn print_report(r: &Report) {
    println!(
        "evaluate: {} index, {} docs, {:.1} bytes/doc; recall@10 vs exact {:.4} over {} queries; \
         search p50 {:.3} ms, embed+search p50 {:.2} ms",
        r.kind.as_str(),
        r.documents,
        r.bytes_per_document,
        r.recall_at_10,
        r.recall_queries,
        r.search_ms_p50,
        r.query_ms_p50
    );
    if let Some(j) = &r.judged {
        println!(
            "evaluate: {} judged queries, {} ranking as shipped: nDCG@10 {:.4}, MRR@10 {:.4}, \
             recall@100 {:.4} (dense with exact fp32 search: nDCG@10 {:.4})",
            j.queries,
            r.search.mode.name(),
            j.ndcg_at_10,
            j.mrr_at_10,
            j.recall_at_100,
            j.exact_ndcg_at_10
        );
    }
    if r.modes.len() > 1 {
        let side: Vec<String> = r
            .modes
            .iter()
            .map(|m| format!("{} {:.4}", m.mode.name(), m.ndcg_at_10))
            .collect();
        println!("evaluate: nDCG@10 by mode: {}", side.join(", "));
    }
    println!("evaluate: ships {}", ranking_text(&r.search));
    if let Some(t) = &r.tuning {
        println!(
            "evaluate: tuned on {} ({} queries): {:.1}% of them get results, {:.1}% of {} \
             nonsense queries get none",
            t.on,
            t.queries,
            100.0 * t.judged_above_floor,
            100.0 * t.nonsense_below_floor,
            t.nonsense_queries
        );
        if let Some(why) = alone_text(t, r.search.alpha) {
            println!("evaluate: {why}");
        }
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
        modes: (r.modes.len() > 1).then(|| {
            let of = |mode| {
                r.modes
                    .iter()
                    .find(|m| m.mode == mode)
                    .map(|m| m.ndcg_at_10)
            };
            ModeScores {
                lexical: of(SearchMode::Lexical),
                dense: of(SearchMode::Dense),
                hybrid: of(SearchMode::Hybrid),
            }
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Per-query scores at alphas 0, 0.5 and 1.
    fn sweep(at0: &[f64], at_half: &[f64], at1: &[f64]) -> Vec<(f32, Vec<f64>)> {
        vec![
            (0.0, at0.to_vec()),
            (0.5, at_half.to_vec()),
            (1.0, at1.to_vec()),
        ]
    }

    #[test]
    fn a_mixture_ships_only_when_it_beats_each_list_by_more_than_noise() {
        // The mixture wins on every query by 0.2: a clear gain, it ships.
        let clear = sweep(&[0.3; 8], &[0.7; 8], &[0.5; 8]);
        let c = choose_alpha(&clear, |_| true);
        assert_eq!((c.alpha, c.best.is_none()), (0.5, true));
        // Best by a hair on average, with query-to-query swings far larger: dense alone ships,
        // and the choice says what it was preferred over.
        let dense = [0.9, 0.1, 0.8, 0.2, 0.9, 0.1, 0.8, 0.2];
        let mixed = [0.1, 0.9, 0.2, 0.8, 0.1, 0.9, 0.2, 0.85];
        let hair = sweep(&[0.0; 8], &mixed, &dense);
        let c = choose_alpha(&hair, |_| true);
        assert_eq!(c.alpha, 1.0);
        let over = c.best.unwrap();
        assert_eq!(over.alpha, 0.5);
        let (gap, se) = (over.gap, over.standard_error);
        assert!(gap > 0.0 && gap <= se, "{gap} {se}");
        // Of the two lists, the better one; on the queries `keep` selects only.
        let c = choose_alpha(&sweep(&[0.5; 8], &[0.5; 8], &[0.4; 8]), |_| true);
        assert_eq!(c.alpha, 0.0);
        let c = choose_alpha(&clear, |i| i < 4);
        assert_eq!(c.alpha, 0.5);
        assert_eq!(choose_alpha(&[], |_| true).alpha, 0.5);
    }

    #[test]
    fn the_report_says_which_list_ships_alone_and_over_what() {
        let mut t = Tuning {
            on: "5-fold cross-validation".into(),
            queries: 53,
            sweep: vec![],
            alone_over: None,
            judged_above_floor: 1.0,
            nonsense_below_floor: 1.0,
            nonsense_queries: 100,
        };
        assert_eq!(alone_text(&t, 0.45), None);
        t.alone_over = Some(AloneOver {
            alpha: 0.9,
            gap: 0.0012,
            standard_error: 0.004,
        });
        let text = alone_text(&t, 1.0).unwrap();
        assert_eq!(
            text,
            "alpha 0.90 had the best mean nDCG@10, 0.0012 ahead of dense alone (alpha 1), \
             within one standard error (0.0040): dense alone ships"
        );
        assert!(alone_text(&t, 0.0)
            .unwrap()
            .ends_with("lexical alone ships"));
    }

    #[test]
    fn standard_error_of_a_mean() {
        assert_eq!(standard_error(&[1.0]), 0.0);
        // Sample sd of [1, 3] is sqrt(2); over sqrt(2) values: 1.
        assert!((standard_error(&[1.0, 3.0]) - 1.0).abs() < 1e-12);
    }
}
