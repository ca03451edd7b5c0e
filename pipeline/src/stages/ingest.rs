//! Ingest: read the feature store, quarantine bad rows, write the canonical snapshot.

use super::ctx::Ctx;
use anyhow::{Context, Result};
use searchbar_store::{diff, Ingested, Snapshot, StoreError};
use serde::Serialize;
use std::path::PathBuf;

/// The source read now, before anything is written.
#[derive(Debug)]
pub struct Fresh {
    pub snapshot: Snapshot,
    pub ingested: Ingested,
}

pub fn snapshot_dir(ctx: &Ctx) -> PathBuf {
    ctx.ws.join("snapshot")
}

/// Snapshots of released data, kept for drift checks against what is live.
pub fn released_snapshot_dir(ctx: &Ctx, fingerprint: &str) -> PathBuf {
    ctx.ws
        .join("snapshots")
        .join(&fingerprint[..16.min(fingerprint.len())])
}

pub fn read_source(ctx: &Ctx) -> Result<Fresh> {
    let c = ctx.config();
    let ingested = searchbar_store::load(&c.source, &c.documents, &ctx.project.root)?;
    let snapshot = Snapshot::new(ingested.documents.clone(), describe(&c.source))?;
    Ok(Fresh { snapshot, ingested })
}

/// A one-line description of a source, without secrets.
pub fn describe(s: &searchbar_store::SourceConfig) -> String {
    use searchbar_store::SourceKind;
    match s.kind {
        SourceKind::Postgres => format!("postgres (${})", s.url_env),
        kind => format!("{kind:?} {}", s.path.display()).to_lowercase(),
    }
}

/// The current workspace snapshot, if ingest ever ran and left a readable one. A damaged
/// snapshot (torn by a crash, edited by hand) is reported and counts as none: the next ingest
/// rebuilds it from the source, instead of every later command failing on it.
pub fn current(ctx: &Ctx) -> Result<Option<Snapshot>> {
    let dir = snapshot_dir(ctx);
    match Snapshot::read(&dir) {
        Ok(s) => Ok(Some(s)),
        Err(StoreError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Ok(None)
        }
        Err(e @ StoreError::Io { .. }) => Err(e.into()),
        Err(e) => {
            eprintln!(
                "warning: the workspace snapshot {} is damaged ({e}); ingest rebuilds it from \
                 the source",
                dir.display()
            );
            Ok(None)
        }
    }
}

/// How many documents of the data fingerprinted `old` are gone from the data fingerprinted
/// `new`, when snapshots of both are kept here (the workspace's own, or a released one).
pub fn removed_between(ctx: &Ctx, old: &str, new: &str) -> Option<usize> {
    let load = |fp: &str| -> Option<Snapshot> {
        let released = released_snapshot_dir(ctx, fp);
        let dir = if released.join("snapshot.json").exists() {
            released
        } else {
            snapshot_dir(ctx)
        };
        Snapshot::read(&dir).ok().filter(|s| s.fingerprint == fp)
    };
    if old == new {
        return Some(0);
    }
    Some(diff(&load(old)?, &load(new)?).removed.len())
}

pub fn require_current(ctx: &Ctx) -> Result<Snapshot> {
    current(ctx)?.context("no snapshot yet: run `searchbar ingest` first")
}

#[derive(Debug, Serialize)]
struct IngestReport<'a> {
    source: String,
    documents: usize,
    fingerprint: &'a str,
    quarantined: &'a [searchbar_store::Quarantined],
    warnings: &'a [String],
}

/// Writes the snapshot and the ingest report; fails when too many rows were quarantined.
pub fn execute(ctx: &Ctx, fresh: &Fresh) -> Result<()> {
    let c = ctx.config();
    let report = IngestReport {
        source: describe(&c.source),
        documents: fresh.snapshot.documents.len(),
        fingerprint: &fresh.snapshot.fingerprint,
        quarantined: &fresh.ingested.quarantined,
        warnings: &fresh.ingested.warnings,
    };
    crate::deploy::fsutil::write_atomic(
        &ctx.ws.join("reports").join("ingest.json"),
        &serde_json::to_vec_pretty(&report)?,
    )?;
    for q in &fresh.ingested.quarantined {
        eprintln!(
            "quarantined: {} row {}{}: {}",
            q.source,
            q.row,
            q.field
                .as_ref()
                .map_or(String::new(), |f| format!(" field {f}")),
            q.reason
        );
    }
    for w in &fresh.ingested.warnings {
        eprintln!("warning: {w}");
    }
    fresh.ingested.check_quarantine(&c.validation)?;
    let old = current(ctx)?;
    fresh
        .snapshot
        .clone()
        .write_observed(&snapshot_dir(ctx), &mut crate::fault::point)?;
    let changes = old.map(|o| diff(&o, &fresh.snapshot));
    println!(
        "ingest: {} documents from {} ({} quarantined), fingerprint {}{}",
        fresh.snapshot.documents.len(),
        report.source,
        fresh.ingested.quarantined.len(),
        &fresh.snapshot.fingerprint[..12],
        changes.map_or(String::new(), |c| format!(
            "; since the last snapshot: {} added, {} changed, {} removed",
            c.added.len(),
            c.changed.len(),
            c.removed.len()
        ))
    );
    Ok(())
}
