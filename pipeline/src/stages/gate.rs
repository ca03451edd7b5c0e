//! The gate: whether a candidate release may replace the release live on a target. The same
//! checks run twice: at `evaluate`, against the live release of the target being run for (so a
//! bad candidate stops before it is exported), and again at deploy and promote, under the
//! target's lock, against what is live there at that moment. A release gets onto a target only
//! by passing against that target's live release, or with `--force` for that target; either
//! way the verdict is recorded in the target's admission record.

use crate::config::GateConfig;
use crate::deploy::{Admission, Target};
use anyhow::Result;
use searchbar_release::{Evaluation, Manifest};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GateCheck {
    pub metric: String,
    pub value: f64,
    pub threshold: f64,
    pub passed: bool,
    pub detail: String,
}

/// What the gate knows of the live release it compares with.
#[derive(Debug, Clone, Copy)]
pub struct Live<'a> {
    pub evaluation: &'a Evaluation,
    pub documents: usize,
}

/// The checks for a candidate with `documents` documents, `removed` of the live release's
/// documents gone from it (when known; else the drop in count stands in for it).
pub fn checks(
    g: &GateConfig,
    candidate: &Evaluation,
    documents: usize,
    live: Option<Live>,
    removed: Option<usize>,
) -> Vec<GateCheck> {
    let mut out = vec![GateCheck {
        metric: "recall@10".into(),
        value: candidate.recall_at_10,
        threshold: g.min_recall_at_10,
        passed: candidate.recall_at_10 >= g.min_recall_at_10,
        detail: format!(
            "recall@10 {:.4} vs floor gate.min_recall_at_10 = {:.4}",
            candidate.recall_at_10, g.min_recall_at_10
        ),
    }];
    out.push(GateCheck {
        metric: "documents".into(),
        value: documents as f64,
        threshold: g.min_documents as f64,
        passed: documents >= g.min_documents,
        detail: format!(
            "{documents} documents vs floor gate.min_documents = {}",
            g.min_documents
        ),
    });
    if let Some(ndcg) = candidate.ndcg_at_10 {
        if g.min_ndcg_at_10 > 0.0 {
            out.push(GateCheck {
                metric: "nDCG@10".into(),
                value: ndcg,
                threshold: g.min_ndcg_at_10,
                passed: ndcg >= g.min_ndcg_at_10,
                detail: format!(
                    "nDCG@10 {ndcg:.4} vs floor gate.min_ndcg_at_10 = {:.4}",
                    g.min_ndcg_at_10
                ),
            });
        }
    }
    if let Some(live) = live {
        if let (Some(ndcg), Some(live_ndcg)) = (candidate.ndcg_at_10, live.evaluation.ndcg_at_10) {
            let floor = live_ndcg - g.max_ndcg_drop;
            out.push(GateCheck {
                metric: "nDCG@10 vs live".into(),
                value: ndcg,
                threshold: floor,
                passed: ndcg >= floor - 1e-12,
                detail: format!(
                    "nDCG@10 {ndcg:.4} vs live {live_ndcg:.4} (change {:+.4}, allowed drop \
                     gate.max_ndcg_drop = {:.4})",
                    ndcg - live_ndcg,
                    g.max_ndcg_drop
                ),
            });
        }
        if live.documents > 0 {
            let gone = removed.unwrap_or_else(|| live.documents.saturating_sub(documents));
            let share = gone as f64 / live.documents as f64;
            out.push(GateCheck {
                metric: "removed share".into(),
                value: share,
                threshold: g.max_removed_share,
                passed: share <= g.max_removed_share + 1e-12,
                detail: format!(
                    "{gone} of the live release's {} documents removed ({:.1}%) vs \
                     gate.max_removed_share = {:.1}%",
                    live.documents,
                    share * 100.0,
                    g.max_removed_share * 100.0
                ),
            });
        }
    }
    out
}

/// A one-line account of a check, for admission records and messages.
pub fn line(c: &GateCheck) -> String {
    format!("{}: {}", if c.passed { "pass" } else { "FAIL" }, c.detail)
}

/// The deploy-time gate for `target`: the candidate's recorded evaluation against the live
/// release's, plus the overrides a release carries with it. `removed` counts the live
/// release's documents missing from the candidate where the snapshots of both are at hand.
/// `source` is the target a promote copies from (its admission of the release counts).
pub fn admit<'a>(
    g: &'a GateConfig,
    target: &'a str,
    force: bool,
    source: Option<&'a Target>,
    removed: &'a dyn Fn(&Manifest, &Manifest) -> Option<usize>,
) -> impl Fn(&Manifest, Option<&Manifest>) -> Result<Admission> + 'a {
    move |candidate, live| {
        let live_info = live.map(|m| Live {
            evaluation: &m.evaluation,
            documents: m.data.documents,
        });
        let gone = live.and_then(|l| removed(candidate, l));
        let mut all = checks(
            g,
            &candidate.evaluation,
            candidate.data.documents,
            live_info,
            gone,
        );
        if candidate.evaluation.forced {
            all.push(GateCheck {
                metric: "forced".into(),
                value: 1.0,
                threshold: 0.0,
                passed: false,
                detail: "the release was exported from a candidate forced past the evaluation \
                         gate (evaluation.forced)"
                    .into(),
            });
        }
        if let Some(src) = source {
            if let Some(a) = src.admission(&candidate.release)?.filter(|a| a.forced) {
                all.push(GateCheck {
                    metric: "forced on source".into(),
                    value: 1.0,
                    threshold: 0.0,
                    passed: false,
                    detail: format!(
                        "the release was forced onto {} ({})",
                        a.target,
                        a.checks
                            .iter()
                            .filter(|c| c.starts_with("FAIL"))
                            .cloned()
                            .collect::<Vec<_>>()
                            .join("; ")
                    ),
                });
            }
        }
        let failed: Vec<String> = all
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.detail.clone())
            .collect();
        if !failed.is_empty() && !force {
            return Err(super::GateRefused(format!(
                "{} may not replace {} on {target}: {}; pass --force to deploy it anyway",
                candidate.release,
                live.map_or("nothing", |l| l.release.as_str()),
                failed.join("; ")
            ))
            .into());
        }
        if !failed.is_empty() {
            eprintln!(
                "warning: --force: {} goes onto {target} despite: {}",
                candidate.release,
                failed.join("; ")
            );
        }
        Ok(Admission {
            release: candidate.release.clone(),
            target: target.to_string(),
            at: crate::clock::now_rfc3339(),
            via: String::new(),
            baseline: live.map(|l| l.release.clone()),
            passed: failed.is_empty(),
            forced: !failed.is_empty(),
            checks: all.iter().map(line).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(ndcg: f64, recall: f64) -> Evaluation {
        Evaluation {
            ndcg_at_10: Some(ndcg),
            recall_at_10: recall,
            ..Default::default()
        }
    }

    #[test]
    fn a_drop_against_live_fails_and_a_shrunk_catalog_fails() {
        let g = GateConfig::default();
        let live = eval(0.80, 0.99);
        let live = Some(Live {
            evaluation: &live,
            documents: 100,
        });
        let ok = checks(&g, &eval(0.795, 0.99), 100, live, Some(0));
        assert!(ok.iter().all(|c| c.passed), "{ok:?}");
        let worse = checks(&g, &eval(0.78, 0.99), 100, live, Some(0));
        assert!(worse
            .iter()
            .any(|c| !c.passed && c.metric == "nDCG@10 vs live"));
        // Documents gone count even when as many new ones replace them.
        let churned = checks(&g, &eval(0.80, 0.99), 100, live, Some(60));
        assert!(churned
            .iter()
            .any(|c| !c.passed && c.metric == "removed share"));
        // Without the snapshots, the drop in count stands in for the removed documents.
        let shrunk = checks(&g, &eval(0.80, 0.99), 40, live, None);
        assert!(shrunk
            .iter()
            .any(|c| !c.passed && c.metric == "removed share"));
        let empty = checks(&g, &eval(0.80, 0.99), 0, None, None);
        assert!(empty.iter().any(|c| !c.passed && c.metric == "documents"));
    }
}
