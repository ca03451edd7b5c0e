//! The `searchbar` command line: arguments, and each command onto its function in
//! [`crate::commands`].
//!
//! Exit codes: 0 success; 1 error; 2 usage error; 3 the evaluation gate refused the
//! candidate; 4 `drift` flagged drift; 5 `status --check` found stale stages.

use crate::commands::{self, pipeline, release};
use crate::stages;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "searchbar",
    version,
    about = "Static semantic search: ingest, embed, train, evaluate, export, deploy",
    after_help = "Exit codes: 0 ok, 1 error, 2 usage, 3 gate refused, 4 drift flagged, 5 stale (status --check)"
)]
struct Cli {
    #[command(flatten)]
    project: pipeline::ProjectArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Fetch, verify and prepare the encoder model.
    #[command(subcommand)]
    Model(commands::model::ModelCommand),
    /// Embed texts (arguments, or one per line on stdin) and print one JSON vector per line.
    Encode(commands::encode::EncodeArgs),
    /// Read the feature store, quarantine bad rows, write the canonical snapshot.
    Ingest,
    /// Encode documents missing from the embedding cache.
    Embed(pipeline::EmbedArgs),
    /// Build the index from the cached embeddings.
    Train,
    /// Measure the candidate and apply the gate against the live release.
    Evaluate(pipeline::EvaluateArgs),
    /// Write a complete static release (artifacts + manifest).
    Export,
    /// Install an exported release on a target and make it live atomically.
    Deploy(release::DeployArgs),
    /// Run every stale stage in order (ingest → embed → train → evaluate → export → deploy).
    Run(pipeline::RunArgs),
    /// List stale stages and why.
    Status(pipeline::StatusArgs),
    /// Compare the feature store now with the data of the live release.
    Drift(commands::drift::DriftArgs),
    /// Write the tracked data lock (what the data looks like now) for review in a pull request.
    Lock(commands::drift::LockArgs),
    /// Make an earlier release live again.
    Rollback(release::RollbackArgs),
    /// Serve on one target exactly the release that is live on another (no rebuild).
    Promote(release::PromoteArgs),
    /// List a target's releases with their metrics.
    Releases(release::ReleasesArgs),
    /// Serve a target on localhost.
    Serve(release::ServeArgs),
    /// Search a deployed release from the command line, exactly as the browser does.
    Query(release::QueryArgs),
}

/// Where the encoder comes from, shared by every command that embeds text.
#[derive(Debug, Clone, clap::Args)]
pub struct ModelArgs {
    /// A local sentence-transformers ONNX directory (model.onnx + tokenizer.json) to use instead
    /// of the pinned default model.
    #[arg(long, env = "SEARCHBAR_MODEL_DIR", value_name = "DIR")]
    pub model_dir: Option<PathBuf>,
    /// Model lock file to fetch from (default: the built-in all-MiniLM-L6-v2 lock).
    #[arg(long, value_name = "FILE")]
    pub lock: Option<PathBuf>,
}

/// FAISS runs its loops on OpenMP threads and calls BLAS inside them; with libgomp's default
/// busy-waiting, idle OpenMP threads spin against OpenBLAS's own threads on the same cores
/// (IVF-PQ training runs about half as fast). Both libraries read their settings when
/// they load, before `main`, so the process re-executes itself once with passive waiting
/// unless the caller chose a policy.
pub fn calm_openmp() {
    use std::os::unix::process::CommandExt;
    if std::env::var_os("OMP_WAIT_POLICY").is_some() {
        return;
    }
    if let Ok(exe) = std::env::current_exe() {
        // `exec` only returns on failure; then run as we are.
        let _ = std::process::Command::new(exe)
            .args(std::env::args_os().skip(1))
            .env("OMP_WAIT_POLICY", "PASSIVE")
            .exec();
    }
}

/// The `searchbar` binary.
pub fn main() -> ExitCode {
    calm_openmp();
    let cli = Cli::parse();
    let p = &cli.project;
    let result = match &cli.command {
        Command::Model(cmd) => commands::model::run(cmd.clone()),
        Command::Encode(args) => commands::encode::run(args.clone()),
        Command::Ingest => pipeline::ingest(p),
        Command::Embed(a) => pipeline::embed(p, a),
        Command::Train => pipeline::train(p),
        Command::Evaluate(a) => pipeline::evaluate(p, a),
        Command::Export => pipeline::export(p),
        Command::Deploy(a) => release::deploy(p, a),
        Command::Run(a) => pipeline::run(p, a),
        Command::Status(a) => match pipeline::status(p, a) {
            Ok(true) if a.check => return ExitCode::from(pipeline::STALE),
            other => other.map(|_| ()),
        },
        Command::Drift(a) => match commands::drift::drift(p, a) {
            Ok(true) => return ExitCode::from(commands::drift::DRIFTED),
            other => other.map(|_| ()),
        },
        Command::Lock(a) => commands::drift::lock(p, a),
        Command::Rollback(a) => release::rollback(p, a),
        Command::Promote(a) => release::promote(p, a),
        Command::Releases(a) => release::releases(p, a),
        Command::Serve(a) => release::serve(p, a),
        Command::Query(a) => release::query(p, a),
    };
    exit_code(result)
}

/// Prints an error with its causes and says which exit code it is (the gate's refusal has
/// its own).
pub fn exit_code(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            if e.downcast_ref::<stages::GateRefused>().is_some() {
                return ExitCode::from(stages::evaluate::GATE_REFUSED);
            }
            ExitCode::FAILURE
        }
    }
}
