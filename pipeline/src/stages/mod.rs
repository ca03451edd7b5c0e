//! The pipeline's stages and the runner that executes only the stale ones.

pub mod cache;
pub mod ctx;
pub mod drift;
pub mod embed;
pub mod evaluate;
pub mod export;
pub mod gate;
pub mod graph;
pub mod ingest;
pub mod train;

use anyhow::{Context, Result};
use ctx::Ctx;
use graph::{explain, flatten, read_record, write_record, Fingerprints, Stage};
use serde::Serialize;
use std::cell::OnceCell;

/// A refused candidate; `main` maps it to exit code [`evaluate::GATE_REFUSED`].
#[derive(Debug)]
pub struct GateRefused(pub String);

impl std::fmt::Display for GateRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the evaluation gate refused the candidate: {}", self.0)
    }
}

impl std::error::Error for GateRefused {}

#[derive(Debug, Serialize)]
pub struct StageStatus {
    pub stage: Stage,
    pub stale: bool,
    pub reasons: Vec<String>,
}

/// Computes stage inputs against recorded runs and executes stages.
#[derive(Debug)]
pub struct Runner {
    pub ctx: Ctx,
    /// The deploy target `run` and `status` consider.
    pub env: String,
    fresh: OnceCell<ingest::Fresh>,
    /// Held from the first stage that writes the workspace to the end of the command.
    workspace: OnceCell<crate::deploy::DeployLock>,
}

impl Runner {
    pub fn new(ctx: Ctx, env: &str) -> Self {
        Self {
            ctx,
            env: env.to_string(),
            fresh: OnceCell::new(),
            workspace: OnceCell::new(),
        }
    }

    /// One pipeline at a time per workspace. Holding the lock, every temporary there is a
    /// leftover of a run that died (killed, disk full): swept, so none lingers for ever.
    pub fn hold_workspace(&self) -> Result<()> {
        if self.workspace.get().is_some() {
            return Ok(());
        }
        let lock = crate::deploy::DeployLock::acquire(&self.ctx.ws, "searchbar pipeline run")?;
        let swept = crate::deploy::fsutil::remove_temporaries_below(&self.ctx.ws)?;
        if swept > 0 {
            eprintln!("note: removed {swept} temporary file(s) left by an interrupted run");
        }
        let _ = self.workspace.set(lock);
        Ok(())
    }

    fn fresh(&self) -> Result<&ingest::Fresh> {
        if let Some(f) = self.fresh.get() {
            return Ok(f);
        }
        let f = ingest::read_source(&self.ctx)?;
        Ok(self.fresh.get_or_init(|| f))
    }

    fn env_for(&self, stage: Stage) -> Option<&str> {
        (stage == Stage::Deploy).then_some(self.env.as_str())
    }

    fn output(&self, stage: Stage, key: &str) -> Result<String> {
        Ok(read_record(&self.ctx.ws, stage, self.env_for(stage))?
            .and_then(|r| r.outputs.get(key).cloned())
            .unwrap_or_else(|| "none".into()))
    }

    /// The current fingerprints of `stage`'s inputs (upstream outputs as last recorded).
    pub fn inputs(&self, stage: Stage) -> Result<Fingerprints> {
        let c = self.ctx.config();
        let mut f = Fingerprints::new();
        let code = crate::SOURCE_HASH.to_string();
        match stage {
            Stage::Ingest => {
                flatten("source", &c.source, &mut f);
                flatten("source.documents", &c.documents, &mut f);
                flatten("source.validation", &c.validation, &mut f);
                f.insert(
                    "data.fingerprint".into(),
                    self.fresh()?.snapshot.fingerprint.clone(),
                );
            }
            Stage::Embed => {
                f.insert(
                    "data.fingerprint".into(),
                    self.output(Stage::Ingest, "data.fingerprint")?,
                );
                f.insert(
                    "model.fingerprint".into(),
                    self.ctx.model_fingerprint()?.into(),
                );
            }
            Stage::Train => {
                f.insert(
                    "data.fingerprint".into(),
                    self.output(Stage::Embed, "data.fingerprint")?,
                );
                f.insert(
                    "model.fingerprint".into(),
                    self.output(Stage::Embed, "model.fingerprint")?,
                );
                flatten("params.index", &c.index, &mut f);
                flatten("params.lexical", &c.lexical, &mut f);
                f.insert("code.pipeline".into(), code);
            }
            Stage::Evaluate => {
                f.insert(
                    "input.index".into(),
                    self.output(Stage::Train, "index.sha256")?,
                );
                f.insert(
                    "input.lexical".into(),
                    self.output(Stage::Train, "lexical.sha256")?,
                );
                flatten("params.search", &c.search, &mut f);
                flatten("params.gate", &c.gate, &mut f);
                flatten("params.evaluation", &c.evaluation, &mut f);
                evaluate::eval_inputs(&self.ctx, &mut f);
                // The verdict is against one target's live release: another target, or a new
                // release live on this one, is a new comparison.
                f.insert("gate.target".into(), self.env.clone());
                let live = self
                    .ctx
                    .project
                    .target(&self.env)?
                    .pointer()?
                    .map_or_else(|| "none".into(), |p| p.release);
                // Once the target serves the release this evaluation produced, the comparison
                // it made still stands: deploying it does not make it due again.
                let recorded = read_record(&self.ctx.ws, Stage::Evaluate, None)?
                    .and_then(|r| r.inputs.get("gate.baseline").cloned());
                let baseline = match recorded {
                    Some(r) if live == self.output(Stage::Export, "release")? => r,
                    _ => live,
                };
                f.insert("gate.baseline".into(), baseline);
                f.insert("code.pipeline".into(), code);
            }
            Stage::Export => {
                f.insert(
                    "input.index".into(),
                    self.output(Stage::Train, "index.sha256")?,
                );
                f.insert(
                    "input.lexical".into(),
                    self.output(Stage::Train, "lexical.sha256")?,
                );
                f.insert(
                    "input.evaluation".into(),
                    self.output(Stage::Evaluate, "evaluation.sha256")?,
                );
                f.insert(
                    "model.fingerprint".into(),
                    self.ctx.model_fingerprint()?.into(),
                );
                f.insert("web.bundle".into(), export::bundle_hash(&self.ctx));
                flatten("params.web", &c.web, &mut f);
                f.insert("code.pipeline".into(), code);
            }
            Stage::Deploy => {
                f.insert(
                    "input.release".into(),
                    self.output(Stage::Export, "release")?,
                );
                let live = self.ctx.project.target(&self.env)?.pointer()?;
                f.insert(
                    "target.live".into(),
                    live.map_or_else(|| "none".into(), |p| p.release),
                );
            }
        }
        Ok(f)
    }

    /// Why each stage is stale (empty reasons = up to date).
    pub fn status(&self) -> Result<Vec<StageStatus>> {
        let mut out: Vec<StageStatus> = Vec::new();
        for stage in Stage::ALL {
            let upstream_stale = out.iter().rev().find(|s| s.stale).map(|s| s.stage);
            let mut reasons = Vec::new();
            if let Some(up) = upstream_stale {
                reasons.push(format!("upstream stage {} is stale", up.name()));
            } else {
                let rec = read_record(&self.ctx.ws, stage, self.env_for(stage))?;
                let inputs = self.inputs(stage)?;
                reasons = explain(rec.as_ref(), &inputs);
                if stage == Stage::Ingest {
                    self.detail_data_change(rec.as_ref(), &inputs, &mut reasons)?;
                    self.check_snapshot(&mut reasons)?;
                }
                if stage == Stage::Deploy && reasons.is_empty() {
                    // Deploy is fresh only while the target still serves the exported release.
                    let want = inputs.get("input.release").cloned().unwrap_or_default();
                    if inputs.get("target.live") != Some(&want) {
                        reasons.push(format!("{} does not serve release {want}", self.env));
                    }
                }
            }
            out.push(StageStatus {
                stage,
                stale: !reasons.is_empty(),
                reasons,
            });
        }
        Ok(out)
    }

    /// Ingest is due whatever its record says while the workspace has no readable snapshot.
    fn check_snapshot(&self, reasons: &mut Vec<String>) -> Result<()> {
        if reasons.is_empty() && ingest::current(&self.ctx)?.is_none() {
            reasons.push("the workspace snapshot is missing or damaged".into());
        }
        Ok(())
    }

    /// Replaces the bare fingerprint change with the documents that changed.
    fn detail_data_change(
        &self,
        rec: Option<&graph::Record>,
        inputs: &Fingerprints,
        reasons: &mut Vec<String>,
    ) -> Result<()> {
        let Some(rec) = rec else { return Ok(()) };
        if rec.inputs.get("data.fingerprint") == inputs.get("data.fingerprint") {
            return Ok(());
        }
        let Some(old) = ingest::current(&self.ctx)? else {
            return Ok(());
        };
        let d = searchbar_store::diff(&old, &self.fresh()?.snapshot);
        let list = |ids: &[String]| {
            let shown: Vec<&str> = ids.iter().take(10).map(String::as_str).collect();
            let more = ids.len().saturating_sub(10);
            format!(
                "[{}{}]",
                shown.join(", "),
                if more > 0 {
                    format!(", … {more} more")
                } else {
                    String::new()
                }
            )
        };
        reasons.retain(|r| !r.starts_with("data changed"));
        reasons.push(format!(
            "data changed: {} added {}, {} changed {}, {} removed {}",
            d.added.len(),
            list(&d.added),
            d.changed.len(),
            list(&d.changed),
            d.removed.len(),
            list(&d.removed)
        ));
        Ok(())
    }

    /// Runs one stage unconditionally and records it.
    pub fn execute(&self, stage: Stage, force: bool) -> Result<()> {
        self.hold_workspace()?;
        let ctx = &self.ctx;
        let inputs = self.inputs(stage)?;
        let mut outputs = Fingerprints::new();
        match stage {
            Stage::Ingest => {
                let fresh = self.fresh()?;
                ingest::execute(ctx, fresh)?;
                outputs.insert(
                    "data.fingerprint".into(),
                    fresh.snapshot.fingerprint.clone(),
                );
                outputs.insert(
                    "data.documents".into(),
                    fresh.snapshot.documents.len().to_string(),
                );
            }
            Stage::Embed => {
                embed::execute(ctx, None)?;
                let snap = ingest::require_current(ctx)?;
                outputs.insert("data.fingerprint".into(), snap.fingerprint);
                outputs.insert("model.fingerprint".into(), ctx.model_fingerprint()?.into());
            }
            Stage::Train => {
                let info = train::execute(ctx)?;
                outputs.insert("index.sha256".into(), info.sha256);
                if let Some(l) = info.lexical {
                    outputs.insert("lexical.sha256".into(), l.sha256);
                }
            }
            Stage::Evaluate => {
                drift::record(ctx, &self.env);
                let baseline = self.baseline()?;
                let mut report = evaluate::execute(ctx, baseline.as_ref())?;
                if !report.passed {
                    let failed: Vec<String> = report
                        .gate
                        .iter()
                        .filter(|c| !c.passed)
                        .map(|c| c.detail.clone())
                        .collect();
                    if !force {
                        return Err(GateRefused(failed.join("; ")).into());
                    }
                    eprintln!(
                        "warning: gate failed but --force given: {}",
                        failed.join("; ")
                    );
                    report.forced = true;
                    crate::deploy::fsutil::write_atomic(
                        &evaluate::report_path(ctx),
                        &serde_json::to_vec_pretty(&report)?,
                    )?;
                }
                // What the release will carry: the same metrics judged against another target
                // need no new export.
                // The ranking it chose (mode, alpha, floor) ships too.
                let summary = serde_json::to_vec(&(evaluate::summary(&report), &report.search))?;
                outputs.insert(
                    "evaluation.sha256".into(),
                    searchbar_release::sha256_hex(&summary),
                );
            }
            Stage::Export => {
                outputs.insert("release".into(), export::execute(ctx)?);
            }
            Stage::Deploy => {
                let id = inputs
                    .get("input.release")
                    .filter(|r| *r != "none")
                    .context("nothing exported yet: run `searchbar export` first")?
                    .clone();
                self.deploy(&id, force)?;
            }
        }
        let inputs = if stage == Stage::Deploy {
            self.inputs(stage)?
        } else {
            inputs
        };
        write_record(&ctx.ws, stage, self.env_for(stage), inputs, outputs)
    }

    /// Deploys exported release `id` to the runner's environment, through the gate against
    /// the release live there (`force`: despite a failed gate, recorded).
    pub fn deploy(&self, id: &str, force: bool) -> Result<()> {
        let target = self.ctx.project.target(&self.env)?;
        let removed = |cand: &searchbar_release::Manifest, live: &searchbar_release::Manifest| {
            ingest::removed_between(&self.ctx, &live.data.fingerprint, &cand.data.fingerprint)
        };
        let admit = gate::admit(&self.ctx.config().gate, &self.env, force, None, &removed);
        let (m, admission) = target.deploy(
            &export::export_target(&self.ctx),
            id,
            self.ctx.config().deploy.keep,
            "deploy",
            &admit,
        )?;
        println!(
            "deploy: {} now serves release {id}{} (nDCG@10 {}, recall@10 {:.4}) from {}",
            self.env,
            if admission.forced {
                ", FORCED past the gate"
            } else {
                ""
            },
            m.evaluation
                .ndcg_at_10
                .map_or_else(|| "n/a".into(), |v| format!("{v:.4}")),
            m.evaluation.recall_at_10,
            target.location()
        );
        Ok(())
    }

    /// The manifest of the release live on the runner's environment: what the gate compares
    /// with.
    fn baseline(&self) -> Result<Option<searchbar_release::Manifest>> {
        self.ctx.project.target(&self.env)?.live_manifest()
    }

    /// Executes the stale stages in order, up to `until`; says so when nothing is stale.
    pub fn run(&self, until: Stage, force: bool) -> Result<usize> {
        let mut ran = 0;
        for stage in Stage::ALL.into_iter().filter(|s| *s <= until) {
            let rec = read_record(&self.ctx.ws, stage, self.env_for(stage))?;
            let inputs = self.inputs(stage)?;
            let mut reasons = explain(rec.as_ref(), &inputs);
            if stage == Stage::Ingest {
                self.check_snapshot(&mut reasons)?;
            }
            if stage == Stage::Deploy
                && reasons.is_empty()
                && inputs.get("target.live") != inputs.get("input.release")
            {
                reasons.push(format!("{} does not serve the exported release", self.env));
            }
            if reasons.is_empty() {
                println!("{}: up to date", stage.name());
                continue;
            }
            println!("{}: running ({})", stage.name(), reasons.join("; "));
            self.execute(stage, force)?;
            ran += 1;
        }
        if ran == 0 {
            println!("Everything is up to date: nothing to run.");
        }
        Ok(ran)
    }
}
