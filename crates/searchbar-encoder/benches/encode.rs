//! Encoder speed: single short-query latency and document throughput at 1 and 2 threads.
//!
//! `scripts/bench-encoder.sh` runs this and the onnxruntime peer (`reference/bench_onnxruntime.py`)
//! on the same model and texts in one go and prints the ratios; results live in BENCHMARKS.md.
//! Prints one JSON object per measurement.

use searchbar_encoder::{Encoder, EncoderConfig};
use std::time::Instant;

/// Single-token English words, so a document of n words is exactly n + 2 tokens.
const WORDS: [&str; 20] = [
    "the", "time", "people", "water", "study", "small", "house", "world", "light", "music",
    "paper", "green", "river", "table", "energy", "market", "school", "animal", "cell", "data",
];

/// The same texts as the Python peer builds: document i, `tokens` tokens long.
fn document(i: usize, tokens: usize) -> String {
    (0..tokens - 2)
        .map(|j| WORDS[(i * 7 + j * 3 + j / 5) % WORDS.len()])
        .collect::<Vec<_>>()
        .join(" ")
}

const QUERY: &str = "how do i reset my password"; // 8 tokens with [CLS] and [SEP]

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    let dir = searchbar_model::default_model_dir().unwrap_or_else(|e| panic!("{e}"));
    let (onnx, _) = dir.prepared_onnx().unwrap();
    let tok = dir.tokenizer_json().unwrap();
    let quick = std::env::var_os("BENCH_QUICK").is_some();
    // The upstream (unprepared) graph, to show what preparing buys.
    let raw = std::fs::read(&dir.onnx).unwrap();
    let upstream = Encoder::new(&raw, &tok, dir.config.clone()).unwrap();
    for _ in 0..5 {
        upstream.embed(QUERY).unwrap();
    }
    let times: Vec<f64> = (0..if quick { 20 } else { 100 })
        .map(|_| {
            let t = Instant::now();
            upstream.embed(QUERY).unwrap();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    println!(
        r#"{{"runtime":"tract-upstream-graph","threads":1,"case":"query_8_tokens","median_ms":{:.3}}}"#,
        median(times)
    );
    drop(upstream);
    for threads in [1, 2] {
        let config = EncoderConfig {
            threads,
            ..dir.config.clone()
        };
        // Queries are timed as the search bar and `searchbar query` load the encoder: for one
        // text at a time (`padded_batches` off); documents as the pipeline loads it.
        let querier = Encoder::new(
            &onnx,
            &tok,
            EncoderConfig {
                padded_batches: false,
                ..config.clone()
            },
        )
        .unwrap();
        let encoder = Encoder::new(&onnx, &tok, config).unwrap();
        assert_eq!(encoder.tokenizer().ids(QUERY).unwrap().len(), 8);
        for _ in 0..20 {
            querier.embed(QUERY).unwrap();
        }
        let runs = if quick { 50 } else { 300 };
        let times: Vec<f64> = (0..runs)
            .map(|_| {
                let t = Instant::now();
                querier.embed(QUERY).unwrap();
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        println!(
            r#"{{"runtime":"tract","threads":{threads},"case":"query_8_tokens","median_ms":{:.3}}}"#,
            median(times)
        );
        drop(querier);
        for tokens in [128, 256] {
            let n = if quick { 32 } else { 128 };
            let docs: Vec<String> = (0..n).map(|i| document(i, tokens)).collect();
            let refs: Vec<&str> = docs.iter().map(String::as_str).collect();
            assert_eq!(encoder.tokenizer().ids(refs[0]).unwrap().len(), tokens);
            encoder.embed_many(&refs[..8], 8, |_| {}).unwrap();
            let t = Instant::now();
            encoder.embed_many(&refs, 16, |_| {}).unwrap();
            let secs = t.elapsed().as_secs_f64();
            println!(
                r#"{{"runtime":"tract","threads":{threads},"case":"docs_{tokens}_tokens","docs_per_s":{:.2}}}"#,
                n as f64 / secs
            );
        }
    }
}
