//! Search latency in the browser: the index files and queries written by
//! `searchbar-bench-index --dump DIR`, fetched from a local server whose URL is fixed at build
//! time (`SEARCHBAR_WASM_BENCH_URL`), searched by this crate compiled to wasm32 with SIMD in
//! headless Chromium. Prints one `WASMBENCH {json}` line per search setting; without the
//! variable it does nothing. Driven by scripts/bench/index.sh.
#![cfg(target_arch = "wasm32")]

use searchbar_index::metrics::recall_at_k;
use searchbar_index::{FetchedRows, Hit, Index, SearchParams};
use serde_json::{json, Value};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::{console_log, wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

/// Index files bigger than this are skipped (they would not be shipped to a browser).
const MAX_BYTES: u64 = 256 << 20;
/// Timed passes over all queries; the fastest is reported (timer resolution in Chromium is
/// coarse, so whole passes are timed, not single queries).
const PASSES: usize = 5;
/// Queries timed one by one on an index with a separate rows file (each makes up to `rerank`
/// range requests, so all 1,000 would take minutes).
const EXTERNAL_QUERIES: usize = 200;

async fn fetch(url: &str) -> Vec<u8> {
    let window = web_sys::window().unwrap();
    let resp = web_sys::Response::from(JsFuture::from(window.fetch_with_str(url)).await.unwrap());
    assert!(resp.ok(), "{url}: HTTP {}", resp.status());
    let buf = JsFuture::from(resp.array_buffer().unwrap()).await.unwrap();
    js_sys::Uint8Array::new(&buf).to_vec()
}

/// What a page does for an index whose re-ranking rows stay on the server: the first stage,
/// one range request per candidate's record (all in flight at once), each record verified
/// against the index, then the second stage.
async fn search_external(
    index: &Index,
    rows_url: &str,
    q: &[f32],
    params: &SearchParams,
) -> Vec<Hit> {
    let candidates = index.candidates(q, 10, params, None).unwrap();
    let docs = candidates.docs();
    let ranges: Vec<_> = docs.iter().map(|&d| index.row_range(d).unwrap()).collect();
    let records = searchbar_query::fetch::fetch_ranges(rows_url, &ranges)
        .await
        .unwrap();
    let mut fetched = FetchedRows::new();
    for (&doc, record) in docs.iter().zip(&records) {
        index.insert_row(&mut fetched, doc, record).unwrap();
    }
    index.rerank(q, candidates, &fetched).unwrap()
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
            let mut report = json!({
                "config": i,
                "nprobe": params.nprobe,
                "rerank": params.rerank,
                "fetch_ms": fetch_ms,
                "load_ms": load_ms,
            });
            if let Some(rows_file) = build["rows_file"].as_str() {
                let url = format!("{base}/{rows_file}");
                let (mut ms, mut recall) = (Vec::new(), 0.0);
                for (q, want) in queries.chunks_exact(dim).zip(&truth).take(EXTERNAL_QUERIES) {
                    let t = now();
                    let hits = search_external(&index, &url, q, &params).await;
                    ms.push(now() - t);
                    let got: Vec<u32> = hits.iter().map(|h| h.doc).collect();
                    recall += recall_at_k(&got, want, 10);
                }
                ms.sort_by(f64::total_cmp);
                report["queries"] = json!(ms.len());
                report["recall_at_10"] = json!(recall / ms.len() as f64);
                report["search_ms_mean"] = json!(ms.iter().sum::<f64>() / ms.len() as f64);
                report["search_ms_p50"] = json!(ms[ms.len() / 2]);
            } else {
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
                report["recall_at_10"] = json!(recall / nq as f64);
                report["search_ms_mean"] = json!(best / nq as f64);
            }
            console_log!("WASMBENCH {report}");
        }
    }
}
