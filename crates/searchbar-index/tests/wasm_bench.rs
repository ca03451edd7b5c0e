//! Search latency in the browser: the index files and queries written by
//! `searchbar bench-index --dump DIR`, fetched from a local server whose URL is fixed at build
//! time (`SEARCHBAR_WASM_BENCH_URL`), searched by this crate compiled to wasm32 with SIMD in
//! headless Chromium. Prints one `WASMBENCH {json}` line per search setting; without the
//! variable it does nothing. Driven by scripts/bench-index.sh.
#![cfg(target_arch = "wasm32")]

use searchbar_index::metrics::recall_at_k;
use searchbar_index::{Index, SearchParams};
use serde_json::{json, Value};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::{console_log, wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

/// Index files bigger than this are skipped (they would not be shipped to a browser).
const MAX_BYTES: u64 = 256 << 20;
/// Timed passes over all queries; the fastest is reported (timer resolution in Chromium is
/// coarse, so whole passes are timed, not single queries).
const PASSES: usize = 5;

async fn fetch(url: &str) -> Vec<u8> {
    let window = web_sys::window().unwrap();
    let resp = web_sys::Response::from(JsFuture::from(window.fetch_with_str(url)).await.unwrap());
    assert!(resp.ok(), "{url}: HTTP {}", resp.status());
    let buf = JsFuture::from(resp.array_buffer().unwrap()).await.unwrap();
    js_sys::Uint8Array::new(&buf).to_vec()
}

fn now() -> f64 {
    web_sys::window().unwrap().performance().unwrap().now()
}

#[wasm_bindgen_test]
async fn search_latency() {
    let Some(base) = option_env!("SEARCHBAR_WASM_BENCH_URL") else {
        console_log!(
            "wasm_bench: SEARCHBAR_WASM_BENCH_URL was not set at build time; nothing to do"
        );
        return;
    };
    let meta: Value = serde_json::from_slice(&fetch(&format!("{base}/bench.json")).await).unwrap();
    let dim = meta["dim"].as_u64().unwrap() as usize;
    let queries: Vec<f32> = fetch(&format!("{base}/queries.f32"))
        .await
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let truth: Vec<Vec<u32>> = fetch(&format!("{base}/truth.u32"))
        .await
        .chunks_exact(40)
        .map(|r| {
            r.chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .filter(|&d| d != u32::MAX)
                .collect()
        })
        .collect();
    let nq = queries.len() / dim;
    for (i, build) in meta["builds"].as_array().unwrap().iter().enumerate() {
        let (Some(file), Some(bytes)) = (build["file"].as_str(), build["bytes"].as_u64()) else {
            continue;
        };
        if bytes > MAX_BYTES {
            console_log!(
                "WASMBENCH {}",
                json!({"config": i, "skipped": "file too big"})
            );
            continue;
        }
        let t = now();
        let raw = fetch(&format!("{base}/{file}")).await;
        let fetched = now();
        let index = Index::from_bytes(&raw).unwrap();
        let load_ms = now() - fetched;
        let fetch_ms = fetched - t;
        drop(raw);
        for row in meta["rows"].as_array().unwrap() {
            if row["config"].as_u64() != Some(i as u64) {
                continue;
            }
            let params = SearchParams {
                nprobe: row["nprobe"].as_u64().unwrap() as usize,
                rerank: row["rerank"].as_u64().unwrap() as usize,
            };
            let mut best = f64::INFINITY;
            let mut recall = 0.0;
            for pass in 0..PASSES {
                let t = now();
                for (q, want) in queries.chunks_exact(dim).zip(&truth) {
                    let hits = index.search(q, 10, &params, None).unwrap();
                    if pass == 0 {
                        let got: Vec<u32> = hits.iter().map(|h| h.doc).collect();
                        recall += recall_at_k(&got, want, 10);
                    }
                }
                best = best.min(now() - t);
            }
            console_log!(
                "WASMBENCH {}",
                json!({
                    "config": i,
                    "nprobe": params.nprobe,
                    "rerank": params.rerank,
                    "recall_at_10": recall / nq as f64,
                    "search_ms_mean": best / nq as f64,
                    "fetch_ms": fetch_ms,
                    "load_ms": load_ms,
                })
            );
        }
    }
}
