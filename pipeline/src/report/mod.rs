//! The run report: `report.html` beside the JSON that `evaluate` (and `run`) and `drift` write.
//! One static page, charts inlined as SVG, no script: it opens from disk and from a CI
//! server's artifact viewer (Jenkins' HTML Publisher serves pages under a strict CSP).
//!
//! What it shows, each part when its data exists: the gate's verdict and checks; the
//! candidate's metrics against the live release's; lexical, dense and hybrid ranking side by
//! side, with the fusion weight sweep; the index at the `nprobe` values tried (recall@10
//! against latency, and against bytes per document with the target's releases); drift of the
//! data against the live release's; quality across the target's releases.

mod chart;

use crate::deploy::fsutil::write_atomic;
use crate::stages::ctx::Ctx;
use crate::stages::drift::DriftOutput;
use crate::stages::evaluate::{self, Report};
use anyhow::Result;
use maud::{html, Markup, PreEscaped, DOCTYPE};
use searchbar_release::Manifest;
use searchbar_store::drift::Binned;
use std::path::PathBuf;

/// The report's file name, beside its JSON.
pub const REPORT_NAME: &str = "report.html";

/// Everything one report page can show.
#[derive(Debug, Default)]
pub struct Inputs<'a> {
    /// The target the candidate was judged for.
    pub target: String,
    pub evaluation: Option<&'a Report>,
    /// The target's releases, oldest first, and the one it serves now.
    pub releases: &'a [Manifest],
    pub serving: Option<String>,
    pub drift: Option<&'a DriftOutput>,
    /// Why a part is missing (e.g. the target could not be read).
    pub notes: Vec<String>,
}

/// Writes `report.html` beside the candidate's `report.json`, with the target's releases and
/// the last drift comparison when it was made for the same data. Parts that cannot be read
/// become notes in the page: the report never fails the command that writes it.
pub fn write_candidate(ctx: &Ctx, env: &str) -> Result<Option<PathBuf>> {
    let json = evaluate::report_path(ctx);
    if !json.exists() {
        return Ok(None);
    }
    let report = evaluate::read_report(ctx)?;
    let mut notes = Vec::new();
    let (releases, serving) = match target_history(ctx, env) {
        Ok(h) => h,
        Err(e) => {
            notes.push(format!("The releases on {env} could not be read: {e:#}"));
            (Vec::new(), None)
        }
    };
    let drift = read_drift(ctx).filter(|d| {
        !report.data_fingerprint.is_empty() && d.fingerprint == report.data_fingerprint
    });
    let inputs = Inputs {
        target: env.to_string(),
        evaluation: Some(&report),
        releases: &releases,
        serving,
        drift: drift.as_ref(),
        notes,
    };
    let path = candidate_path(ctx);
    write_atomic(&path, render(&inputs)?.as_bytes())?;
    Ok(Some(path))
}

/// Writes `drift.html` beside `drift.json`: the drift part of the report alone.
pub fn write_drift(ctx: &Ctx, out: &DriftOutput) -> Result<PathBuf> {
    let path = crate::stages::drift::output_path(ctx).with_file_name("drift.html");
    let inputs = Inputs {
        drift: Some(out),
        ..Inputs::default()
    };
    write_atomic(&path, render(&inputs)?.as_bytes())?;
    Ok(path)
}

fn target_history(ctx: &Ctx, env: &str) -> Result<(Vec<Manifest>, Option<String>)> {
    let target = ctx.project.target(env)?;
    Ok((target.releases()?, target.pointer()?.map(|p| p.release)))
}

fn read_drift(ctx: &Ctx) -> Option<DriftOutput> {
    let bytes = std::fs::read(crate::stages::drift::output_path(ctx)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The whole page.
pub fn render(i: &Inputs) -> Result<String> {
    let title = match (i.evaluation, i.drift) {
        (Some(_), _) => format!("searchbar run report: candidate for {}", i.target),
        (None, Some(d)) => format!("searchbar drift report: against {}", d.baseline),
        (None, None) => "searchbar report".to_string(),
    };
    let body = html! {
        h1 { (title) }
        p.generated { "Written " (crate::clock::now_rfc3339()) " by searchbar " (env!("CARGO_PKG_VERSION")) "." }
        @if let Some(r) = i.evaluation {
            (verdict(r, &i.target))
            (gate(r))
            (against_live(r, live_of(r, i.releases)))
            (modes(r)?)
            (index(r, i.releases)?)
        }
        @if let Some(d) = i.drift {
            (drift(d)?)
        }
        @if i.evaluation.is_some() {
            (history(i)?)
        }
        @if !i.notes.is_empty() {
            section #notes {
                h2 { "Notes" }
                ul { @for n in &i.notes { li { (n) } } }
            }
        }
    };
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (PreEscaped(STYLE)) }
            }
            body { main { (body) } }
        }
    };
    Ok(page.into_string())
}

const STYLE: &str = "
body { font: 15px/1.45 system-ui, sans-serif; color: #1b1b1b; margin: 0; background: #fafafa; }
main { max-width: 980px; margin: 0 auto; padding: 1.5rem; }
h1 { font-size: 1.5rem; margin: 0 0 .25rem; }
h2 { font-size: 1.15rem; margin: 2rem 0 .5rem; border-bottom: 1px solid #ddd; }
.generated, .why { color: #555; }
.verdict { font-size: 1.2rem; font-weight: 600; padding: .75rem 1rem; border-radius: 6px; }
.verdict.passed { background: #e3f4e8; color: #0b5b24; }
.verdict.refused { background: #fbe4e4; color: #8a1010; }
.verdict.forced { background: #fff1d6; color: #7a4b00; }
table { border-collapse: collapse; margin: .5rem 0 1rem; background: #fff; }
th, td { border: 1px solid #ddd; padding: .3rem .6rem; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.pass { color: #0b5b24; } .fail { color: #8a1010; font-weight: 600; }
tr.shipped td:first-child::after { content: ' (shipped)'; color: #555; }
tr.serving td:first-child::after { content: ' (live)'; color: #555; }
figure { margin: .5rem 0 1.5rem; } figcaption { color: #555; font-size: .9rem; }
figure > svg { max-width: 100%; height: auto; border: 1px solid #eee; }
.key { margin: .25rem 0; font-size: .9rem; }
";

fn f4(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{v:.4}"))
}

/// A gate figure: counts as counts, scores to four places.
fn figure(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() >= 1.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.4}")
    }
}

fn delta(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) => format!("{:+.4}", a - b),
        _ => "–".into(),
    }
}

/// A release's name in a chart or a column head: the content hash its id ends with.
fn short(id: &str) -> String {
    match id.rsplit_once('-') {
        Some((_, hash)) if !hash.is_empty() => hash.to_string(),
        _ => id.chars().take(12).collect(),
    }
}

/// The colour key under a chart: SVG swatches, which a page served under a strict
/// Content-Security-Policy (Jenkins' default forbids stylesheets) still draws.
fn key(names: &[&str]) -> Markup {
    html! {
        p.key {
            @for (i, name) in names.iter().enumerate() {
                svg width="12" height="12" { rect width="12" height="12" fill=(chart::css_color(i)) {} }
                " " (name) " "
            }
        }
    }
}

/// The live release the gate compared with, when the target still has it.
fn live_of<'a>(r: &Report, releases: &'a [Manifest]) -> Option<&'a Manifest> {
    let id = r.baseline.as_deref()?;
    releases.iter().find(|m| m.release == id)
}

fn verdict(r: &Report, target: &str) -> Markup {
    let (class, text) = if !r.passed && r.forced {
        (
            "forced",
            "Gate: failed, deployed anyway (--force)".to_string(),
        )
    } else if r.passed {
        (
            "passed",
            format!("Gate: passed: this candidate may replace {target}'s live release"),
        )
    } else {
        (
            "refused",
            format!("Gate: refused: this candidate may not replace {target}'s live release"),
        )
    };
    let against = match &r.baseline {
        Some(b) => format!("Judged against release {b}, live on {target} when evaluated."),
        None => format!("{target} had no live release: judged against the floors alone."),
    };
    html! {
        p #verdict .verdict .(class) data-passed=(r.passed) data-forced=(r.forced) { (text) }
        p.why { (against) }
    }
}

fn gate(r: &Report) -> Markup {
    html! {
        section #gate {
            h2 { "Gate checks" }
            table {
                tr { th { "Check" } th { "Value" } th { "Threshold" } th { "Result" } th { "Detail" } }
                @for c in &r.gate {
                    tr data-check=(c.metric) {
                        td { (c.metric) }
                        td.num { (figure(c.value)) }
                        td.num { (figure(c.threshold)) }
                        @if c.passed { td.pass { "pass" } } @else { td.fail { "FAIL" } }
                        td { (c.detail) }
                    }
                }
            }
        }
    }
}

fn against_live(r: &Report, live: Option<&Manifest>) -> Markup {
    let j = r.judged.as_ref();
    let e = live.map(|m| &m.evaluation);
    let live_bytes = live.map(|m| m.files.index.bytes as f64 / m.data.documents.max(1) as f64);
    let rows: [(&str, &str, Option<f64>, Option<f64>); 6] = [
        (
            "ndcg_at_10",
            "nDCG@10 (as shipped)",
            j.map(|j| j.ndcg_at_10),
            e.and_then(|e| e.ndcg_at_10),
        ),
        (
            "mrr_at_10",
            "MRR@10",
            j.map(|j| j.mrr_at_10),
            e.and_then(|e| e.mrr_at_10),
        ),
        (
            "recall_at_100",
            "recall@100",
            j.map(|j| j.recall_at_100),
            e.and_then(|e| e.recall_at_100),
        ),
        (
            "exact_ndcg_at_10",
            "nDCG@10, dense with exact fp32 search",
            j.map(|j| j.exact_ndcg_at_10),
            e.and_then(|e| e.ndcg_at_10_exact),
        ),
        (
            "recall_at_10",
            "recall@10 of the index vs exact search",
            Some(r.recall_at_10),
            e.map(|e| e.recall_at_10),
        ),
        (
            "bytes_per_document",
            "index bytes per document",
            Some(r.bytes_per_document),
            live_bytes,
        ),
    ];
    let live_name = live.map_or_else(
        || "live".to_string(),
        |m| format!("live {}", short(&m.release)),
    );
    html! {
        section #metrics {
            h2 { "Candidate against the live release" }
            p.why {
                (r.documents) " documents; "
                (j.map_or(0, |j| j.queries)) " judged queries; recall@10 over "
                (r.recall_queries) " queries. Search p50 " (format!("{:.3}", r.search_ms_p50))
                " ms, embed and search p50 " (format!("{:.2}", r.query_ms_p50)) " ms (this machine)."
            }
            table {
                tr { th { "Metric" } th { "Candidate" } th { (live_name) } th { "Change" } }
                @for (key, name, cand, live) in rows {
                    tr {
                        td { (name) }
                        td.num data-metric=(key) data-side="candidate" { (f4(cand)) }
                        td.num data-metric=(key) data-side="live" { (f4(live)) }
                        td.num { (delta(cand, live)) }
                    }
                }
            }
            @if live.is_none() && r.baseline.is_some() {
                p.why { "The live release is no longer on the target: its figures are not shown." }
            }
        }
    }
}

fn modes(r: &Report) -> Result<Markup> {
    if r.modes.is_empty() {
        return Ok(html! {});
    }
    let names: Vec<String> = r.modes.iter().map(|m| m.mode.name().to_string()).collect();
    let bars = chart::bars(
        "score",
        &names,
        &[
            r.modes.iter().map(|m| Some(m.ndcg_at_10)).collect(),
            r.modes.iter().map(|m| Some(m.mrr_at_10)).collect(),
            r.modes.iter().map(|m| Some(m.recall_at_100)).collect(),
        ],
    )?;
    let s = &r.search;
    let sweep = match &r.tuning {
        Some(t) if t.sweep.len() > 1 => Some(chart::lines(
            "alpha (weight of the dense list)",
            "hybrid nDCG@10",
            &[t.sweep.iter().map(|(a, v)| (f64::from(*a), *v)).collect()],
            None,
        )?),
        _ => None,
    };
    Ok(html! {
        section #modes {
            h2 { "Lexical, dense and hybrid ranking" }
            p.why {
                "Ships " (evaluate::ranking_text(s)) "."
            }
            table {
                tr { th { "Ranking" } th { "nDCG@10" } th { "MRR@10" } th { "recall@100" } }
                @for m in &r.modes {
                    tr .shipped[m.mode == s.mode] data-mode=(m.mode.name()) {
                        td { (m.mode.name()) }
                        td.num { (format!("{:.4}", m.ndcg_at_10)) }
                        td.num { (format!("{:.4}", m.mrr_at_10)) }
                        td.num { (format!("{:.4}", m.recall_at_100)) }
                    }
                }
            }
            figure {
                (PreEscaped(bars))
                (key(&["nDCG@10", "MRR@10", "recall@100"]))
                figcaption { "Each ranking on the judged queries." }
            }
            @if let (Some(t), Some(svg)) = (&r.tuning, sweep) {
                figure {
                    (PreEscaped(svg))
                    figcaption {
                        "Hybrid nDCG@10 by fusion weight on " (t.on) " (" (t.queries) " queries). "
                        (format!("{:.1}", 100.0 * t.judged_above_floor)) "% of them get results; "
                        (format!("{:.1}", 100.0 * t.nonsense_below_floor)) "% of "
                        (t.nonsense_queries) " nonsense queries get none."
                        @if let Some(why) = evaluate::alone_text(t, s.alpha) { " " (why) "." }
                    }
                }
            }
        }
    })
}

fn index(r: &Report, releases: &[Manifest]) -> Result<Markup> {
    let latency = if r.index_configs.len() > 1 {
        let points: Vec<(String, f64, f64, bool)> = r
            .index_configs
            .iter()
            .map(|p| {
                (
                    format!("nprobe {}", p.nprobe),
                    p.search_ms_p50,
                    p.recall_at_10,
                    p.shipped,
                )
            })
            .collect();
        Some(chart::scatter("search p50 (ms)", "recall@10", &points)?)
    } else {
        None
    };
    let mut sized: Vec<(String, f64, f64, bool)> = releases
        .iter()
        .filter(|m| m.files.index.sha256 != r.index_sha256)
        .map(|m| {
            (
                short(&m.release),
                m.files.index.bytes as f64 / m.data.documents.max(1) as f64,
                m.evaluation.recall_at_10,
                false,
            )
        })
        .collect();
    sized.push((
        "candidate".into(),
        r.bytes_per_document,
        r.recall_at_10,
        true,
    ));
    let bytes = chart::scatter("index bytes per document", "recall@10", &sized)?;
    Ok(html! {
        section #index {
            h2 { "Index configurations" }
            p.why {
                (r.kind.as_str()) " index, " (r.index_bytes) " bytes ("
                (format!("{:.1}", r.bytes_per_document)) " per document)."
            }
            @if !r.index_configs.is_empty() {
                table {
                    tr { th { "nprobe" } th { "rerank" } th { "recall@10" } th { "search p50 (ms)" } }
                    @for p in &r.index_configs {
                        tr .shipped[p.shipped] {
                            td { (p.nprobe) }
                            td.num { (p.rerank) }
                            td.num { (format!("{:.4}", p.recall_at_10)) }
                            td.num { (format!("{:.3}", p.search_ms_p50)) }
                        }
                    }
                }
            }
            @if let Some(svg) = latency {
                figure { (PreEscaped(svg)) figcaption { "recall@10 against single-thread search latency, by nprobe (filled: shipped)." } }
            }
            figure {
                (PreEscaped(bytes))
                figcaption { "recall@10 against index size: the candidate (filled) and the target's other releases." }
            }
        }
    })
}

fn drift(d: &DriftOutput) -> Result<Markup> {
    let t = &d.thresholds;
    let stats: [(&str, &str, Option<f64>, f64); 3] = [
        (
            "length_psi",
            "text length PSI",
            Some(d.drift.length_psi),
            t.length_psi,
        ),
        (
            "vocab_psi",
            "vocabulary PSI",
            Some(d.drift.vocab_psi),
            t.vocab_psi,
        ),
        (
            "embedding_auc",
            "embedding domain-classifier AUC",
            d.drift.embedding,
            t.embedding_auc,
        ),
    ];
    let length = histogram(&d.drift.length_bins, "words per document", 0)?;
    let vocab = histogram(&d.drift.vocab_bins, "share of words in the old top 1000", 2)?;
    Ok(html! {
        section #drift {
            h2 { "Data drift" }
            p.why {
                (d.documents) " documents now against " (d.baseline) ": "
                span #drift-added { (d.added) } " added, "
                span #drift-changed { (d.changed) } " changed, "
                span #drift-removed { (d.removed) } " removed."
            }
            table {
                tr { th { "Statistic" } th { "Value" } th { "Flagged above" } th { "Result" } }
                @for (key, name, value, limit) in stats {
                    tr {
                        td { (name) }
                        td.num data-stat=(key) { (f4(value)) }
                        td.num { (format!("{limit:.2}")) }
                        @match value {
                            Some(v) if v > limit => td.fail { "DRIFT" },
                            Some(_) => td.pass { "stable" },
                            None => td { "not computed" },
                        }
                    }
                }
            }
            @if let Some(svg) = length {
                figure { (PreEscaped(svg)) (key(&["old", "new"])) figcaption { "Share of documents per text-length bin (bins cut at the old data's deciles)." } }
            }
            @if let Some(svg) = vocab {
                figure { (PreEscaped(svg)) (key(&["old", "new"])) figcaption { "Share of documents per vocabulary-coverage bin: new documents with unfamiliar words fill the low bins." } }
            }
        }
    })
}

/// Old and new shares per bin, as bars; none when the statistic had no bins.
fn histogram(b: &Binned, what: &str, decimals: usize) -> Result<Option<String>> {
    if b.old.is_empty() {
        return Ok(None);
    }
    let share = |counts: &[u64]| {
        let total = counts.iter().sum::<u64>().max(1) as f64;
        counts
            .iter()
            .map(|&c| Some(c as f64 / total))
            .collect::<Vec<_>>()
    };
    let labels: Vec<String> = (0..b.old.len())
        .map(
            |k| match (k.checked_sub(1).map(|p| b.cuts[p]), b.cuts.get(k)) {
                (None, Some(hi)) => format!("<{hi:.decimals$}"),
                (Some(lo), None) => format!("≥{lo:.decimals$}"),
                (Some(lo), Some(_)) => format!("≥{lo:.decimals$}"),
                (None, None) => "all".into(),
            },
        )
        .collect();
    Ok(Some(chart::bars(
        &format!("share of documents, by {what}"),
        &labels,
        &[share(&b.old), share(&b.new)],
    )?))
}

fn history(i: &Inputs) -> Result<Markup> {
    let Some(r) = i.evaluation else {
        return Ok(html! {});
    };
    let mut names: Vec<String> = i.releases.iter().map(|m| short(&m.release)).collect();
    let mut ndcg: Vec<(f64, f64)> = Vec::new();
    let mut recall: Vec<(f64, f64)> = Vec::new();
    for (x, m) in i.releases.iter().enumerate() {
        if let Some(v) = m.evaluation.ndcg_at_10 {
            ndcg.push((x as f64, v));
        }
        recall.push((x as f64, m.evaluation.recall_at_10));
    }
    let exported = i
        .releases
        .iter()
        .any(|m| m.files.index.sha256 == r.index_sha256);
    if !exported {
        let x = names.len() as f64;
        names.push("candidate".into());
        if let Some(j) = &r.judged {
            ndcg.push((x, j.ndcg_at_10));
        }
        recall.push((x, r.recall_at_10));
    }
    let svg = chart::lines(
        "release, oldest first",
        "score",
        &[ndcg, recall],
        Some(&names),
    )?;
    Ok(html! {
        section #releases {
            h2 { "Quality across " (i.target) "'s releases" }
            @if i.releases.is_empty() {
                p.why { (i.target) " has no releases yet." }
            } @else {
                table {
                    tr { th { "Release" } th { "Created" } th { "Documents" } th { "nDCG@10" } th { "recall@10" } th { "Admitted" } }
                    @for m in i.releases.iter().rev() {
                        tr .serving[i.serving.as_deref() == Some(m.release.as_str())] data-release=(m.release) {
                            td { (m.release) }
                            td { (m.created) }
                            td.num { (m.data.documents) }
                            td.num { (f4(m.evaluation.ndcg_at_10)) }
                            td.num { (format!("{:.4}", m.evaluation.recall_at_10)) }
                            td { @if m.evaluation.forced { "forced past the gate" } @else { "by the gate" } }
                        }
                    }
                }
            }
            figure {
                (PreEscaped(svg))
                (key(&["nDCG@10", "recall@10"]))
                figcaption {
                    "nDCG@10 and recall@10 of each release"
                    @if !exported { ", and of this candidate (not exported yet)" }
                    "."
                }
            }
        }
    })
}

/// Where `evaluate` writes the report for `ctx`'s candidate.
pub fn candidate_path(ctx: &Ctx) -> PathBuf {
    evaluate::report_path(ctx).with_file_name(REPORT_NAME)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn report(gate_detail: &str) -> Report {
        serde_json::from_value(json!({
            "index_sha256": "ab", "kind": "flat", "documents": 3, "index_bytes": 300,
            "bytes_per_document": 100.0, "recall_at_10": 1.0, "recall_queries": 3,
            "judged": null,
            "search": { "k": 10, "nprobe": 1, "rerank": 0 },
            "search_ms_p50": 0.1, "query_ms_p50": 1.0, "baseline": null,
            "gate": [{ "metric": "recall@10", "value": 1.0, "threshold": 0.95, "passed": false,
                       "detail": gate_detail }],
            "passed": false, "forced": false
        }))
        .unwrap()
    }

    #[test]
    fn every_value_is_escaped_and_the_page_has_no_script() {
        let r = report("<img src=x onerror=alert(1)>");
        let html = render(&Inputs {
            target: "<script>alert(2)</script>".into(),
            evaluation: Some(&r),
            notes: vec!["</section><script>alert(3)</script>".into()],
            ..Inputs::default()
        })
        .unwrap();
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(2)&lt;/script&gt;"));
        assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
        assert!(html.contains("class=\"verdict refused\""), "{html}");
    }

    #[test]
    fn a_report_without_judgments_releases_or_sweeps_still_draws() {
        // No judged queries, one index configuration, no releases: each part says so or is
        // left out, and no chart divides by an empty range.
        let r = report("ok");
        let html = render(&Inputs {
            target: "stage".into(),
            evaluation: Some(&r),
            ..Inputs::default()
        })
        .unwrap();
        assert!(html.contains("stage has no releases yet."), "{html}");
        assert!(!html.contains("id=\"modes\""), "{html}");
        assert_eq!(
            html.matches("<svg").count(),
            2 + 2,
            "size chart, history, two keys"
        );
    }

    #[test]
    fn charts_survive_degenerate_data() {
        for values in [vec![], vec![Some(0.0)], vec![Some(f64::NAN), None]] {
            let svg = chart::bars("y", &["a".into()], &[values]).unwrap();
            assert!(svg.starts_with("<svg"), "{svg}");
        }
        let svg = chart::lines("x", "y", &[vec![(1.0, 1.0)], vec![]], None).unwrap();
        assert!(svg.contains("<circle"), "{svg}");
        let svg = chart::scatter("x", "y", &[("<one>".into(), 2.0, 2.0, true)]).unwrap();
        assert!(svg.contains("&lt;one&gt;"), "{svg}");
    }
}
