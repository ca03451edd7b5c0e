//! `drift` (the feature store now vs the data of the live release) and `lock` (the tracked
//! data lock the daily job turns into a pull request).

use super::pipeline::ProjectArgs;
use crate::stages::cache::{cache_path, EmbeddingCache};
use crate::stages::ctx::Ctx;
use crate::stages::ingest::{read_source, released_snapshot_dir};
use anyhow::{Context, Result};
use searchbar_store::drift::embedding_sample;
use searchbar_store::{diff, drift_report, ChangeSet, DriftReport, Snapshot};
use serde::Serialize;
use std::path::PathBuf;

/// Exit code when drift is flagged.
pub const DRIFTED: u8 = 4;
/// The tracked data lock at the project root.
pub const LOCK_NAME: &str = "searchbar.lock";

#[derive(Debug, clap::Args)]
pub struct DriftArgs {
    /// Compare with the data of the release live on this target.
    #[arg(long, default_value = "prod")]
    pub against: String,
    /// Compare with this snapshot directory instead (written by `ingest` or kept by `export`).
    #[arg(long, value_name = "DIR")]
    pub baseline: Option<PathBuf>,
    /// Skip the embedding statistic (no model needed).
    #[arg(long)]
    pub no_embeddings: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct LockArgs {
    /// Compare with the data of the release live on this target.
    #[arg(long, default_value = "prod")]
    pub against: String,
}

#[derive(Debug, Serialize)]
struct DriftOutput {
    baseline: String,
    baseline_fingerprint: String,
    fingerprint: String,
    documents: usize,
    added: usize,
    changed: usize,
    removed: usize,
    changes: ChangeSet,
    drift: DriftReport,
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

fn compute(
    ctx: &Ctx,
    against: &str,
    dir: Option<&PathBuf>,
    embeddings: bool,
) -> Result<Option<DriftOutput>> {
    let Some((name, base)) = baseline(ctx, against, dir)? else {
        return Ok(None);
    };
    let fresh = read_source(ctx)?.snapshot;
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
    }))
}

/// Prints the comparison; returns whether drift was flagged.
pub fn drift(p: &ProjectArgs, args: &DriftArgs) -> Result<bool> {
    let ctx = Ctx::new(p.load()?);
    let Some(out) = compute(
        &ctx,
        &args.against,
        args.baseline.as_ref(),
        !args.no_embeddings,
    )?
    else {
        println!(
            "drift: {} has no live release: nothing to compare with",
            args.against
        );
        return Ok(false);
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "drift: {} documents now vs {}: {} added, {} changed, {} removed",
            out.documents, out.baseline, out.added, out.changed, out.removed
        );
        let d = &out.drift;
        println!(
            "drift: length PSI {:.4}, vocabulary PSI {:.4}{}",
            d.length_psi,
            d.vocab_psi,
            d.embedding.map_or(String::new(), |a| format!(
                ", embedding domain-classifier AUC {a:.4}"
            ))
        );
        for f in &d.flags {
            println!("drift: FLAGGED {f}");
        }
        if !d.drifted {
            println!("drift: no statistical drift flagged");
        }
    }
    Ok(out.drift.drifted)
}

#[derive(Debug, Serialize)]
struct DataLock {
    fingerprint: String,
    documents: usize,
    source: String,
    against: Option<LockDrift>,
}

#[derive(Debug, Serialize)]
struct LockDrift {
    release: String,
    added: usize,
    changed: usize,
    removed: usize,
    length_psi: String,
    vocab_psi: String,
    drifted: bool,
}

/// Writes `searchbar.lock`: deterministic (no timestamps), so an unchanged store leaves the
/// file byte-identical and the daily job opens no pull request.
pub fn lock(p: &ProjectArgs, args: &LockArgs) -> Result<()> {
    let ctx = Ctx::new(p.load()?);
    let fresh = read_source(&ctx)?.snapshot;
    let path = ctx.project.root.join(LOCK_NAME);
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    // Same data as locked: leave the file alone, even if the live release moved since, so
    // releasing a data change does not itself produce another lock change.
    if old.contains(&format!("fingerprint = \"{}\"", fresh.fingerprint)) {
        println!(
            "lock: {} unchanged ({} documents)",
            path.display(),
            fresh.documents.len()
        );
        return Ok(());
    }
    let against = compute(&ctx, &args.against, None, false)?.map(|o| LockDrift {
        release: o.baseline,
        added: o.added,
        changed: o.changed,
        removed: o.removed,
        length_psi: format!("{:.4}", o.drift.length_psi),
        vocab_psi: format!("{:.4}", o.drift.vocab_psi),
        drifted: o.drift.drifted,
    });
    let lock = DataLock {
        fingerprint: fresh.fingerprint.clone(),
        documents: fresh.documents.len(),
        source: crate::stages::ingest::describe(&ctx.config().source),
        against,
    };
    let text = format!(
        "# The data the next release will be trained on. Written by `searchbar lock`; a change\n\
         # here is a data change to review (the daily job opens a pull request with it).\n{}",
        toml::to_string(&lock)?
    );
    crate::deploy::fsutil::write_atomic(&path, text.as_bytes())?;
    println!(
        "lock: {} updated: fingerprint {} ({} documents)",
        path.display(),
        &lock.fingerprint[..12],
        lock.documents
    );
    Ok(())
}
