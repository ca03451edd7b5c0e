use crate::ModelArgs;
use anyhow::Result;
use std::io::BufRead;

#[derive(Debug, clap::Args)]
pub struct EncodeArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Texts to embed; without any, one text per line is read from stdin.
    texts: Vec<String>,
    /// Matmul threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Print the cosine similarity of every pair of texts instead of the vectors.
    #[arg(long)]
    similarity: bool,
}

pub fn run(args: EncodeArgs) -> Result<()> {
    let encoder = super::model::resolve(&args.model)?.load_encoder(args.threads)?;
    let texts = if args.texts.is_empty() {
        std::io::stdin()
            .lock()
            .lines()
            .collect::<Result<Vec<_>, _>>()?
    } else {
        args.texts
    };
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let vectors = encoder.embed_many(&refs, 16, |_| {})?;
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
