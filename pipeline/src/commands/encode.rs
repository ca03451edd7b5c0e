use crate::ModelArgs;
use anyhow::Result;
use std::io::BufRead;

#[derive(Debug, Clone, clap::Args)]
pub struct EncodeArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Texts to embed; without any, one text per line is read from stdin.
    texts: Vec<String>,
    /// Matmul threads (default: every core).
    #[arg(long)]
    threads: Option<usize>,
    /// Print the cosine similarity of every pair of texts instead of the vectors.
    #[arg(long)]
    similarity: bool,
}

pub fn run(args: EncodeArgs) -> Result<()> {
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let encoder = crate::model::load_encoder(&super::model::resolve(&args.model)?, threads)?;
    let texts = if args.texts.is_empty() {
        std::io::stdin()
            .lock()
            .lines()
            .collect::<Result<Vec<_>, _>>()?
    } else {
        args.texts
    };
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let bar = progress_bar(refs.len() as u64, "embedding");
    let vectors = encoder.embed_many(&refs, 16, |done| bar.set_position(done as u64))?;
    bar.finish_and_clear();
    if !args.similarity {
        for v in &vectors {
            println!("{}", serde_json::to_string(v)?);
        }
        return Ok(());
    }
    for (i, a) in vectors.iter().enumerate() {
        for (j, b) in vectors.iter().enumerate().skip(i + 1) {
            // Unit vectors: the dot product is the cosine.
            let cos: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
            println!("{cos:.3}  {:?} ~ {:?}", texts[i], texts[j]);
        }
    }
    Ok(())
}

/// A progress bar on stderr, hidden for short jobs and when stderr is not a terminal.
pub fn progress_bar(len: u64, what: &str) -> indicatif::ProgressBar {
    if len < 64 {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} [{elapsed} < {eta}]")
            .expect("a valid template"),
    );
    bar.set_message(what.to_string());
    bar
}
