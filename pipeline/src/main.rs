//! `searchbar`: the pipeline that keeps a static semantic search bar fresh.

mod commands;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "searchbar",
    version,
    about = "Static semantic search: fetch, embed, train, evaluate, deploy"
)]
struct Cli {
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Model(cmd) => commands::model::run(cmd),
        Command::Encode(args) => commands::encode::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
