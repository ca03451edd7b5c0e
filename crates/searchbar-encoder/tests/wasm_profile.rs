//! Where an embedding's time goes in wasm: the page's query path (`Encoder::embed` on the
//! prepared graph, batch 1) timed whole, then a step per model node, summed by op. Not a test
//! of anything: `scripts/bench/profile-wasm.sh` runs it under Node or in headless Chromium.

#![cfg(target_arch = "wasm32")]

use searchbar_encoder::prepare::prepare_onnx;
use searchbar_encoder::{Encoder, EncoderConfig};
use std::collections::BTreeMap;
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;

const RAW: &[u8] = include_bytes!(concat!(env!("SEARCHBAR_MODEL_DIR"), "/model.onnx"));
const TOK: &[u8] = include_bytes!(concat!(env!("SEARCHBAR_MODEL_DIR"), "/tokenizer.json"));
const QUERIES: [&str; 3] = [
    "monitor air quality at home",
    "how do I detect fraud in card payments",
    "which patients are likely to end up back in hospital soon after going home",
];
const RUNS: usize = 100;

#[wasm_bindgen]
extern "C" {
    /// `performance.now()`: Node and browsers both have it.
    #[wasm_bindgen(js_namespace = performance)]
    fn now() -> f64;
}

#[wasm_bindgen_test]
fn profile_query_embedding() {
    let (prepared, _) = prepare_onnx(RAW).unwrap();
    let config = EncoderConfig {
        padded_batches: false,
        ..Default::default()
    };
    let encoder = Encoder::new(&prepared, TOK, config.clone()).unwrap();
    let unfused = Encoder::new(
        &prepared,
        TOK,
        EncoderConfig {
            fused_ops: false,
            ..config
        },
    )
    .unwrap();
    for query in QUERIES {
        // The fused ops against tract's own, alternating so that both see the same machine.
        let (mut fused_ms, mut unfused_ms) = (0.0, 0.0);
        for _ in 0..RUNS / 5 {
            unfused.embed(query).unwrap();
        }
        for _ in 0..RUNS / 2 {
            for (encoder, total) in [(&encoder, &mut fused_ms), (&unfused, &mut unfused_ms)] {
                let start = now();
                encoder.embed(query).unwrap();
                *total += now() - start;
            }
        }
        console_log!(
            "fused ops {:.3} ms, tract's ops {:.3} ms per call: {:.2}x",
            fused_ms / (RUNS / 2) as f64,
            unfused_ms / (RUNS / 2) as f64,
            fused_ms / unfused_ms
        );
        let tokens = encoder.tokenizer().ids(query).unwrap().len();
        for _ in 0..RUNS / 5 {
            encoder.embed(query).unwrap();
        }
        let start = now();
        for _ in 0..RUNS {
            encoder.embed(query).unwrap();
        }
        let whole = (now() - start) / RUNS as f64;
        let mut by_op: BTreeMap<String, (f64, usize)> = BTreeMap::new();
        for _ in 0..RUNS {
            let mut job = encoder.start(query).unwrap();
            while let Some(op) = job.next_op() {
                let start = now();
                job.step(|| true).unwrap();
                let entry = by_op.entry(op).or_default();
                entry.0 += now() - start;
                entry.1 += 1;
            }
        }
        // Timed again after the steps: V8 may still have been optimising new code the first time.
        let start = now();
        for _ in 0..RUNS {
            encoder.embed(query).unwrap();
        }
        let again = (now() - start) / RUNS as f64;
        console_log!(
            "{tokens} tokens: embed {whole:.3} ms per call, {again:.3} ms after the steps \
             ({query:?}); by op, a step per node:"
        );
        let mut ops: Vec<_> = by_op.into_iter().collect();
        ops.sort_by(|a, b| b.1 .0.total_cmp(&a.1 .0));
        for (op, (ms, nodes)) in ops {
            console_log!(
                "  {op:32} {:7.3} ms {:4} nodes",
                ms / RUNS as f64,
                nodes / RUNS
            );
        }
    }
}
