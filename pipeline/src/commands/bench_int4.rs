//! `searchbar-bench-int4`: how much retrieval quality 4-bit layer weights cost, for choosing which
//! matmuls stay int8 (the `[int4]` table of a model lock).
//!
//! `layers` packs one matmul at a time and reports how far the embeddings of a sample of a BEIR
//! corpus and its queries move from the int8 encoder's (mean and largest `1 - cos`): the
//! sensitivity ranking. `ndcg` embeds the whole corpus and the judged queries with the int8 encoder
//! and with 4-bit weights under each plan, and reports nDCG@10 on the qrels files given (choose on
//! train, report test).

use crate::model::{encoder_config, prepared_with};
use anyhow::{Context, Result};
use searchbar_encoder::int4::{packable_weights, Int4Plan};
use searchbar_encoder::{Encoder, EncoderConfig};
use searchbar_index::metrics::evaluate;
use searchbar_index::qrels::{parse_qrels_tsv, parse_queries_jsonl};
use searchbar_model::{ModelDir, ModelLock, DEFAULT_LOCK};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Debug, clap::Parser)]
#[command(name = "searchbar-bench-int4")]
struct Cli {
    /// The model directory (as `searchbar model path` prints).
    #[arg(long, value_name = "DIR")]
    model_dir: PathBuf,
    /// A BEIR dataset folder: corpus.jsonl, queries.jsonl, qrels/.
    #[arg(long, value_name = "DIR")]
    beir: PathBuf,
    /// Encoder threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, clap::Subcommand)]
enum Mode {
    /// One matmul in 4 bits at a time: how far a sample's embeddings move.
    Layers {
        /// Documents of the sample (the corpus's first), with as many queries.
        #[arg(long, default_value_t = 200)]
        sample: usize,
    },
    /// Query latency, one text at a time on one thread (as `searchbar query` and a page embed):
    /// the int8 encoder and the built-in lock's 4-bit plan, query by query in turn.
    Latency {
        /// Rounds over the queries.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// nDCG@10 with int8 weights and with 4-bit weights under each plan.
    Ndcg {
        /// Qrels files under qrels/ (repeatable), e.g. train.tsv.
        #[arg(long = "qrels", required = true)]
        qrels: Vec<String>,
        /// A plan: matmul weights kept int8, comma-separated ("" keeps none, "lock" is the
        /// built-in lock's plan); repeatable.
        #[arg(long = "keep", required = true)]
        plans: Vec<String>,
        /// Leave out the int8 run (its figures do not change between runs).
        #[arg(long)]
        skip_int8: bool,
    },
}

pub fn main() -> std::process::ExitCode {
    let cli = <Cli as clap::Parser>::parse();
    crate::cli::exit_code(run(&cli))
}

fn run(cli: &Cli) -> Result<()> {
    let dir = ModelDir::open(&cli.model_dir)?;
    let config = EncoderConfig {
        threads: cli.threads,
        ..encoder_config(&dir)?
    };
    let tokenizer = dir.tokenizer_json()?;
    let encoder = |plan: Option<&Int4Plan>| -> Result<Encoder> {
        prepared_with(&dir, plan)?.encoder(&tokenizer, config.clone())
    };
    let corpus = read_corpus(&cli.beir.join("corpus.jsonl"))?;
    let queries_path = cli.beir.join("queries.jsonl");
    let queries = parse_queries_jsonl(
        &std::fs::read_to_string(&queries_path)
            .with_context(|| format!("reading {}", queries_path.display()))?,
        &queries_path.display().to_string(),
    )?;
    let names = packable_weights(&prepared_with(&dir, None)?.onnx)?;
    match &cli.mode {
        Mode::Layers { sample } => {
            let mut texts: Vec<&str> = corpus.iter().take(*sample).map(|d| d.1.as_str()).collect();
            texts.extend(queries.iter().take(*sample).map(|q| q.text.as_str()));
            let base = encoder(None)?.embed_many(&texts, 16, |_| {})?;
            println!("matmul\tmean 1-cos\tmax 1-cos");
            let all_but = |keep: &str| Int4Plan {
                keep_int8: names.iter().filter(|n| *n != keep).cloned().collect(),
            };
            for name in &names {
                let got = encoder(Some(&all_but(name)))?.embed_many(&texts, 16, |_| {})?;
                let (mean, max) = distance(&base, &got);
                println!("{name}\t{mean:.6}\t{max:.6}");
            }
            let all = encoder(Some(&Int4Plan::default()))?.embed_many(&texts, 16, |_| {})?;
            let (mean, max) = distance(&base, &all);
            println!("all\t{mean:.6}\t{max:.6}");
        }
        Mode::Latency { rounds } => {
            let lock = ModelLock::parse(DEFAULT_LOCK, "built-in lock")?;
            let plan = Int4Plan {
                keep_int8: lock.int4.map(|i| i.keep_int8).unwrap_or_default(),
            };
            let one_text = EncoderConfig {
                threads: 1,
                padded_batches: false,
                ..config.clone()
            };
            let load = |int4: Option<&Int4Plan>| -> Result<Encoder> {
                prepared_with(&dir, int4)?.encoder(&tokenizer, one_text.clone())
            };
            let encoders = [load(None)?, load(Some(&plan))?];
            let mut times: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
            for q in queries.iter().take(20) {
                for e in &encoders {
                    e.embed(&q.text)?;
                }
            }
            for _ in 0..*rounds {
                for q in &queries {
                    for (e, t) in encoders.iter().zip(times.iter_mut()) {
                        let start = Instant::now();
                        e.embed(&q.text)?;
                        t.push(start.elapsed().as_secs_f64() * 1e3);
                    }
                }
            }
            let median = |t: &mut Vec<f64>| {
                t.sort_by(f64::total_cmp);
                t[t.len() / 2]
            };
            let [mut a, mut b] = times;
            let (a, b) = (median(&mut a), median(&mut b));
            println!(
                "one query at a time, 1 thread, {} embeddings each (kernel {}): int8 {a:.3} ms, \
                 4-bit {b:.3} ms median; 4-bit / int8 = {:.3}",
                rounds * queries.len(),
                searchbar_encoder::matmul_kernel().0,
                b / a
            );
        }
        Mode::Ndcg {
            qrels,
            plans,
            skip_int8,
        } => {
            let qrels = qrels
                .iter()
                .map(|f| {
                    let path = cli.beir.join("qrels").join(f);
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("reading {}", path.display()))?;
                    Ok((
                        f.clone(),
                        parse_qrels_tsv(&text, &path.display().to_string())?,
                    ))
                })
                .collect::<Result<Vec<_>>>()?;
            let texts: Vec<&str> = corpus.iter().map(|d| d.1.as_str()).collect();
            let query_texts: Vec<&str> = queries.iter().map(|q| q.text.as_str()).collect();
            let mut runs: Vec<(String, Option<Int4Plan>)> = Vec::new();
            if !skip_int8 {
                runs.push(("int8".into(), None));
            }
            for p in plans {
                let keep: Vec<String> = if p == "lock" {
                    let lock = ModelLock::parse(DEFAULT_LOCK, "built-in lock")?;
                    lock.int4.map(|i| i.keep_int8).unwrap_or_default()
                } else {
                    p.split(',')
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect()
                };
                runs.push((
                    format!("int4 keep [{p}]"),
                    Some(Int4Plan { keep_int8: keep }),
                ));
            }
            for (label, plan) in runs {
                let start = Instant::now();
                let enc = encoder(plan.as_ref())?;
                let docs = enc.embed_many(&texts, 16, |_| {})?;
                let qs = enc.embed_many(&query_texts, 16, |_| {})?;
                let mut run = BTreeMap::new();
                for (q, v) in queries.iter().zip(&qs) {
                    let mut scored: Vec<(f32, usize)> = docs
                        .iter()
                        .enumerate()
                        .map(|(i, d)| (dot(v, d), i))
                        .collect();
                    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
                    let ids: Vec<&str> = scored
                        .iter()
                        .take(100)
                        .map(|&(_, i)| corpus[i].0.as_str())
                        .collect();
                    run.insert(q.id.clone(), ids);
                }
                for (file, judged) in &qrels {
                    let s = evaluate(&run, judged);
                    println!(
                        "{label}\t{file}\tnDCG@10 {:.4}\t({} queries, {:.0} s)",
                        s.ndcg_at_10,
                        s.queries,
                        start.elapsed().as_secs_f64()
                    );
                }
            }
        }
    }
    Ok(())
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Mean and largest `1 - cos` between paired normalised embeddings.
fn distance(a: &[Vec<f32>], b: &[Vec<f32>]) -> (f64, f64) {
    let d: Vec<f64> = a
        .iter()
        .zip(b)
        .map(|(x, y)| 1.0 - f64::from(dot(x, y)))
        .collect();
    let max = d.iter().copied().fold(0.0, f64::max);
    (d.iter().sum::<f64>() / d.len().max(1) as f64, max)
}

/// `(id, "title. text")` of each corpus line.
fn read_corpus(path: &std::path::Path) -> Result<Vec<(String, String)>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let v: serde_json::Value = serde_json::from_str(l)
                .with_context(|| format!("{} line {}", path.display(), i + 1))?;
            let field = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
            Ok((
                field("_id"),
                format!("{}. {}", field("title"), field("text")),
            ))
        })
        .collect()
}
