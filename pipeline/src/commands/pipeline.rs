//! Stage commands: ingest, embed, train, evaluate, export, deploy, run, status.

use crate::config::{Project, CONFIG_NAME};
use crate::stages::graph::Stage;
use crate::stages::{ctx::Ctx, embed, Runner};
use anyhow::{bail, Result};
use std::path::PathBuf;

/// Options every pipeline command takes.
#[derive(Debug, Clone, clap::Args)]
pub struct ProjectArgs {
    /// The configuration file; relative paths in it are resolved against its directory.
    #[arg(long, short = 'c', env = "SEARCHBAR_CONFIG", default_value = CONFIG_NAME, global = true)]
    pub config: PathBuf,
}

impl ProjectArgs {
    pub fn load(&self) -> Result<Project> {
        Project::load(&self.config)
    }

    pub fn runner(&self, env: &str) -> Result<Runner> {
        Ok(Runner::new(Ctx::new(self.load()?), env))
    }
}

#[derive(Debug, clap::Args)]
pub struct EnvArg {
    /// Deploy target (a key of [deploy.targets]).
    #[arg(long, default_value = "stage")]
    pub env: String,
}

#[derive(Debug, clap::Args)]
pub struct EmbedArgs {
    /// Encode only shard I of N (documents whose position modulo N is I) into a partial
    /// cache; `--merge` combines the partial caches afterwards.
    #[arg(long, value_name = "I/N", conflicts_with = "merge")]
    pub shard: Option<String>,
    /// Merge the partial caches written by `--shard` runs into the main cache.
    #[arg(long)]
    pub merge: bool,
}

#[derive(Debug, clap::Args)]
pub struct EvaluateArgs {
    #[command(flatten)]
    pub env: EnvArg,
    /// Accept a candidate that fails the gate; recorded in the release's manifest.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub env: EnvArg,
    /// Stop after this stage.
    #[arg(long, value_enum, default_value = "deploy")]
    pub until: Stage,
    /// Deploy even if the gate fails (recorded in the release's manifest).
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub env: EnvArg,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
    /// Exit with code 5 when any stage is stale (for CI conditions).
    #[arg(long)]
    pub check: bool,
}

/// Exit code of `status --check` when something is stale.
pub const STALE: u8 = 5;

pub fn parse_shard(s: &str) -> Result<(usize, usize)> {
    let parsed = s.split_once('/').and_then(|(i, n)| {
        Some((
            i.trim().parse::<usize>().ok()?,
            n.trim().parse::<usize>().ok()?,
        ))
    });
    match parsed {
        Some((i, n)) if n > 0 && i < n => Ok((i, n)),
        _ => bail!("--shard {s:?}: expected I/N with 0 <= I < N, e.g. 0/4"),
    }
}

pub fn ingest(p: &ProjectArgs) -> Result<()> {
    p.runner("stage")?.execute(Stage::Ingest, false)
}

pub fn embed(p: &ProjectArgs, args: &EmbedArgs) -> Result<()> {
    let runner = p.runner("stage")?;
    if args.merge {
        embed::merge_shards(&runner.ctx)?;
        return Ok(());
    }
    match &args.shard {
        Some(s) => {
            embed::execute(&runner.ctx, Some(parse_shard(s)?))?;
            Ok(())
        }
        None => runner.execute(Stage::Embed, false),
    }
}

pub fn train(p: &ProjectArgs) -> Result<()> {
    p.runner("stage")?.execute(Stage::Train, false)
}

pub fn evaluate(p: &ProjectArgs, args: &EvaluateArgs) -> Result<()> {
    let runner = p.runner(&args.env.env)?;
    let result = runner.execute(Stage::Evaluate, args.force);
    // A refused candidate gets its report too: it says why.
    write_report(&runner, &args.env.env);
    result
}

pub fn export(p: &ProjectArgs) -> Result<()> {
    p.runner("stage")?.execute(Stage::Export, false)
}

pub fn run(p: &ProjectArgs, args: &RunArgs) -> Result<()> {
    let runner = p.runner(&args.env.env)?;
    let result = runner.run(args.until, args.force);
    if args.until >= Stage::Evaluate {
        write_report(&runner, &args.env.env);
    }
    result.map(|_| ())
}

/// Writes the candidate's `report.html`, when it has a report; a failure is a warning.
fn write_report(runner: &Runner, env: &str) {
    match crate::report::write_candidate(&runner.ctx, env) {
        Ok(Some(path)) => eprintln!("report: {}", path.display()),
        Ok(None) => {}
        Err(e) => eprintln!("warning: the HTML report was not written: {e:#}"),
    }
}

/// Prints which stages are stale and why; returns whether any is.
pub fn status(p: &ProjectArgs, args: &StatusArgs) -> Result<bool> {
    let statuses = p.runner(&args.env.env)?.status()?;
    let stale = statuses.iter().any(|s| s.stale);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&statuses)?);
    } else {
        for s in &statuses {
            let state = if s.stale { "STALE" } else { "up to date" };
            println!(
                "{:<9} {state}{}",
                s.stage.name(),
                if s.reasons.is_empty() {
                    String::new()
                } else {
                    format!(": {}", s.reasons.join("; "))
                }
            );
        }
        if !stale {
            println!("Everything is up to date.");
        }
    }
    Ok(stale)
}
