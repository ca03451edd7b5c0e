//! Drift: the data now against the data of a target's live release (or a kept snapshot):
//! what was added, changed and removed, and whether its distribution moved.

use super::cache::{cache_path, EmbeddingCache};
use super::ctx::Ctx;
use super::ingest::{read_source, released_snapshot_dir};
use crate::deploy::fsutil::write_atomic;
use anyhow::{Context, Result};
use searchbar_store::drift::embedding_sample;
use searchbar_store::{diff, drift_report, ChangeSet, DriftConfig, DriftReport, Snapshot};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Where `drift` and `run` keep the last comparison (the report reads it).
pub fn output_path(ctx: &Ctx) -> PathBuf {
    ctx.ws.join("reports").join("drift.json")
}

/// What `drift` found: the data now against a baseline's, with the thresholds it was judged by.
#[derive(Debug, Serialize, Deserialize)]
pub struct DriftOutput {
    pub baseline: String,
    pub baseline_fingerprint: String,
    pub fingerprint: String,
    pub documents: usize,
    pub added: usize,
    pub changed: usize,
    pub removed: usize,
    pub changes: ChangeSet,
    pub drift: DriftReport,
    #[serde(default)]
    pub thresholds: DriftConfig,
}

/// The baseline snapshot: an explicit directory, or the live release's data.
fn baseline(ctx: &Ctx, against: &str, dir: Option<&PathBuf>) -> Result<Option<(String, Snapshot)>> {
    if let Some(dir) = dir {
        return Ok(Some((dir.display().to_string(), Snapshot::read(dir)?)));
    }
    let target = ctx.project.target(against)?;
    let Some(p) = target.pointer()? else {
        return Ok(None);
    };
    let m = target.manifest(&p.release)?;
    let dir = released_snapshot_dir(ctx, &m.data.fingerprint);
    let snap = Snapshot::read(&dir).with_context(|| {
        format!(
            "the data of {against}'s live release {} is not in this workspace ({}); pass \
             --baseline DIR",
            p.release,
            dir.display()
        )
    })?;
    Ok(Some((format!("{against} release {}", p.release), snap)))
}

/// Embeddings of a sample of `snap`'s documents, from the cache or encoded now (and cached).
fn sample_vectors(ctx: &Ctx, snap: &Snapshot, cache: &mut EmbeddingCache) -> Result<Vec<Vec<f32>>> {
    let idx = embedding_sample(snap.documents.len(), &ctx.config().drift);
    let missing: Vec<&searchbar_store::SnapshotDocument> = idx
        .iter()
        .map(|&i| &snap.documents[i])
        .filter(|d| cache.get(&d.content_hash).is_none())
        .collect();
    if !missing.is_empty() {
        let texts: Vec<&str> = missing.iter().map(|d| d.text.as_str()).collect();
        let vecs = ctx
            .encoder()?
            .embed_many(&texts, ctx.config().model.batch_size, |_| {})?;
        for (d, v) in missing.iter().zip(vecs) {
            cache.insert(&d.content_hash, v)?;
        }
    }
    Ok(idx
        .iter()
        .map(|&i| {
            cache
                .get(&snap.documents[i].content_hash)
                .map(<[f32]>::to_vec)
        })
        .collect::<Option<Vec<_>>>()
        .expect("every sampled document was just embedded"))
}

/// The data now (`fresh`, else read from the source) against the live release of `against`
/// (or the snapshot in `dir`); `None` when there is nothing to compare with.
pub fn compute(
    ctx: &Ctx,
    against: &str,
    dir: Option<&PathBuf>,
    embeddings: bool,
    fresh: Option<Snapshot>,
) -> Result<Option<DriftOutput>> {
    let Some((name, base)) = baseline(ctx, against, dir)? else {
        return Ok(None);
    };
    let fresh = match fresh {
        Some(s) => s,
        None => read_source(ctx)?.snapshot,
    };
    let changes = diff(&base, &fresh);
    let texts = |s: &Snapshot| {
        s.documents
            .iter()
            .map(|d| d.text.clone())
            .collect::<Vec<_>>()
    };
    let vectors = if embeddings {
        let model = ctx.model_fingerprint()?.to_string();
        let path = cache_path(&ctx.ws, &model);
        let mut cache = EmbeddingCache::load(&path, ctx.encoder()?.dim())?;
        let before = cache.len();
        let pair = (
            sample_vectors(ctx, &base, &mut cache)?,
            sample_vectors(ctx, &fresh, &mut cache)?,
        );
        if cache.len() != before {
            cache.save(&path)?;
        }
        Some(pair)
    } else {
        None
    };
    let report = drift_report(
        &texts(&base),
        &texts(&fresh),
        vectors.as_ref().map(|(a, b)| (a.as_slice(), b.as_slice())),
        &ctx.config().drift,
    )?;
    Ok(Some(DriftOutput {
        baseline: name,
        baseline_fingerprint: base.fingerprint.clone(),
        fingerprint: fresh.fingerprint.clone(),
        documents: fresh.documents.len(),
        added: changes.added.len(),
        changed: changes.changed.len(),
        removed: changes.removed.len(),
        changes,
        drift: report,
        thresholds: ctx.config().drift.clone(),
    }))
}

/// The candidate's data (the current snapshot) against the data of `against`'s live release,
/// kept at [`output_path`] for the run report. Best effort: evaluating does not fail because
/// its report lacks a part; it says why.
pub fn record(ctx: &Ctx, against: &str) {
    let path = output_path(ctx);
    let done = super::ingest::require_current(ctx)
        .and_then(|snap| compute(ctx, against, None, true, Some(snap)))
        .and_then(|out| match out {
            Some(out) => write_atomic(&path, &serde_json::to_vec_pretty(&out)?),
            None => match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
                _ => Ok(()),
            },
        });
    if let Err(e) = done {
        eprintln!("warning: no drift statistics for the report: {e:#}");
    }
}
