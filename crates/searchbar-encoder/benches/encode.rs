//! Encoder speed: single short-query latency and document throughput at 1 and 2 threads.
//!
//! `scripts/bench/encoder.sh` runs this and the onnxruntime peer (`reference/bench_onnxruntime.py`)
//! on the same model and texts in one go and prints the ratios; results live in BENCHMARKS.md.
//! Prints one JSON object per measurement.

use searchbar_encoder::{Encoder, EncoderConfig};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// The system allocator, counting the bytes in use and their peak: what an encoder holds.
struct Counting;
static IN_USE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; only counters are added.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = IN_USE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Heap a query-only encoder holds after load and one query, and the peak while loading, in MB.
fn query_encoder_memory(onnx: &[u8], tok: &[u8], config: EncoderConfig) -> (f64, f64) {
    let base = IN_USE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let encoder = Encoder::new(onnx, tok, config).unwrap();
    encoder.embed(QUERY).unwrap();
    let held = IN_USE.load(Ordering::Relaxed) - base;
    let peak = PEAK.load(Ordering::Relaxed) - base;
    (held as f64 / 1e6, peak as f64 / 1e6)
}

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

/// Median milliseconds of `runs` calls embedding the query, after `warmup` calls.
fn query_median_ms(encoder: &Encoder, warmup: usize, runs: usize) -> f64 {
    for _ in 0..warmup {
        encoder.embed(QUERY).unwrap();
    }
    let times: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            encoder.embed(QUERY).unwrap();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    median(times)
}

fn main() {
    let dir = searchbar_model::default_model_dir().unwrap_or_else(|e| panic!("{e}"));
    let config = EncoderConfig::declared(dir.max_tokens, dir.pooling.as_deref()).unwrap();
    let (onnx, _) = searchbar_encoder::prepare::prepare_onnx(&dir.onnx_bytes().unwrap()).unwrap();
    let tok = dir.tokenizer_json().unwrap();
    let quick = std::env::var_os("BENCH_QUICK").is_some();
    let (kernel, quantized) = searchbar_encoder::matmul_kernel();
    println!(
        r#"{{"runtime":"tract","case":"matmul_kernel","kernel":"{kernel}","i16_activations":{quantized}}}"#
    );
    // The upstream (unprepared) graph, to show what preparing buys.
    let raw = std::fs::read(&dir.onnx).unwrap();
    let upstream = Encoder::new(&raw, &tok, config.clone()).unwrap();
    println!(
        r#"{{"runtime":"tract-upstream-graph","threads":1,"case":"query_8_tokens","median_ms":{:.3}}}"#,
        query_median_ms(&upstream, 5, if quick { 20 } else { 100 })
    );
    drop(upstream);
    // What keeping the matmul weights int8 buys: memory, and the query time with tract's own
    // float32 matmuls instead (1 thread).
    for int8_weights in [true, false] {
        let config = EncoderConfig {
            padded_batches: false,
            int8_weights,
            ..config.clone()
        };
        let (held, peak) = query_encoder_memory(&onnx, &tok, config.clone());
        println!(
            r#"{{"runtime":"tract","int8_weights":{int8_weights},"case":"query_encoder_memory","held_mb":{held:.1},"peak_mb":{peak:.1}}}"#
        );
        if !int8_weights {
            let querier = Encoder::new(&onnx, &tok, config).unwrap();
            println!(
                r#"{{"runtime":"tract-float32-matmuls","threads":1,"case":"query_8_tokens","median_ms":{:.3}}}"#,
                query_median_ms(&querier, 20, if quick { 50 } else { 300 })
            );
        }
    }
    for threads in [1, 2] {
        let config = EncoderConfig {
            threads,
            ..config.clone()
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
        println!(
            r#"{{"runtime":"tract","threads":{threads},"case":"query_8_tokens","median_ms":{:.3}}}"#,
            query_median_ms(&querier, 20, if quick { 50 } else { 300 })
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
            if threads == 1 {
                // What `embed_many` does on one thread before the batches: tokenize them all.
                let t = Instant::now();
                for d in &refs {
                    encoder.tokenizer().ids(d).unwrap();
                }
                println!(
                    r#"{{"runtime":"tract","threads":1,"case":"tokenize_{tokens}_tokens","docs_per_s":{:.0}}}"#,
                    n as f64 / t.elapsed().as_secs_f64()
                );
            }
        }
    }
}
