//! `drift` (the feature store now vs the data of the live release) and `lock` (the tracked
//! data lock the daily job turns into a pull request).

use super::pipeline::ProjectArgs;
use crate::deploy::fsutil::write_atomic;
use crate::stages::ctx::Ctx;
use crate::stages::drift::{compute, output_path};
use crate::stages::ingest::read_source;
use anyhow::Result;
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

/// Prints the comparison; returns whether drift was flagged.
pub fn drift(p: &ProjectArgs, args: &DriftArgs) -> Result<bool> {
    let ctx = Ctx::new(p.load()?);
    let Some(out) = compute(
        &ctx,
        &args.against,
        args.baseline.as_ref(),
        !args.no_embeddings,
        None,
    )?
    else {
        println!(
            "drift: {} has no live release: nothing to compare with",
            args.against
        );
        return Ok(false);
    };
    let json = serde_json::to_string_pretty(&out)?;
    write_atomic(&output_path(&ctx), json.as_bytes())?;
    let html = crate::report::write_drift(&ctx, &out)?;
    if args.json {
        println!("{json}");
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
    eprintln!("drift: report written to {}", html.display());
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
    let against = compute(&ctx, &args.against, None, false, None)?.map(|o| LockDrift {
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
