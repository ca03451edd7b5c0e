//! Lexical search latency in the browser: the index and queries that
//! `lexical_bench ... --dump DIR` wrote, fetched from a local server whose URL is fixed at
//! build time (`SEARCHBAR_WASM_BENCH_URL`), searched by this crate compiled to wasm32 in
//! headless Chromium as a page searches: each query fetches the fragments it names, round by
//! round. Prints one `WASMBENCH {json}` line; without the variable it does nothing. Driven by
//! scripts/bench/lexical.sh.
#![cfg(target_arch = "wasm32")]

use searchbar_lexical::{Fragment, LexicalIndex, Outcome};
use serde_json::json;
use std::collections::HashMap;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::{console_log, wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

/// Timed passes over all queries with their fragments at hand; the fastest is reported per
/// query (Chromium's timer is coarse, so each query is repeated within a pass).
const PASSES: usize = 3;
const REPEATS: usize = 20;

async fn fetch(url: &str) -> Vec<u8> {
    fetch_all(&[url.to_string()]).await.remove(0)
}

/// Fetches all at once, as the page fetches the fragments one search round names.
async fn fetch_all(urls: &[String]) -> Vec<Vec<u8>> {
    let window = web_sys::window().unwrap();
    let requests: js_sys::Array = urls.iter().map(|u| window.fetch_with_str(u)).collect();
    let responses = JsFuture::from(js_sys::Promise::all(&requests))
        .await
        .unwrap();
    let bodies = js_sys::Array::new();
    for (resp, url) in js_sys::Array::from(&responses).iter().zip(urls) {
        let resp = web_sys::Response::from(resp);
        assert!(resp.ok(), "{url}: HTTP {}", resp.status());
        bodies.push(&resp.array_buffer().unwrap());
    }
    let bufs = JsFuture::from(js_sys::Promise::all(&bodies)).await.unwrap();
    js_sys::Array::from(&bufs)
        .iter()
        .map(|b| js_sys::Uint8Array::new(&b).to_vec())
        .collect()
}

fn now() -> f64 {
    web_sys::window().unwrap().performance().unwrap().now()
}

fn percentile(v: &mut [f64], p: usize) -> f64 {
    v.sort_by(f64::total_cmp);
    v[(v.len() * p / 100).min(v.len() - 1)]
}

#[wasm_bindgen_test]
async fn lexical_search_in_chromium() {
    let Some(base) = option_env!("SEARCHBAR_WASM_BENCH_URL") else {
        return;
    };
    let root = fetch(&format!("{base}/root.bin")).await;
    let index = LexicalIndex::from_root(&root, "root.bin").unwrap();
    let queries: Vec<String> =
        serde_json::from_slice(&fetch(&format!("{base}/queries.json")).await).unwrap();
    let mut parts: HashMap<usize, Fragment> = HashMap::new();
    // First as a page: each query from an empty cache, fetching what each round names at
    // once, timing the whole answer (fetches from loopback included).
    let (mut bytes, mut answer_ms) = (Vec::new(), Vec::new());
    for q in &queries {
        let mut have: HashMap<usize, Fragment> = HashMap::new();
        let (mut b, started) = (0usize, now());
        loop {
            match index.search(q, 100, &|n| have.get(&n)).unwrap() {
                Outcome::Done(_) => break,
                Outcome::Need(need) => {
                    let urls: Vec<String> =
                        need.iter().map(|n| format!("{base}/{n}.bin")).collect();
                    for (n, raw) in need.into_iter().zip(fetch_all(&urls).await) {
                        b += raw.len();
                        have.insert(n, index.fragment(n, &raw, "fragment").unwrap());
                    }
                }
            }
        }
        answer_ms.push(now() - started);
        bytes.push(b as f64);
        parts.extend(have);
    }
    // Then the search alone, its fragments at hand.
    let mut search_ms = vec![f64::INFINITY; queries.len()];
    for _ in 0..PASSES {
        for (i, q) in queries.iter().enumerate() {
            let t = now();
            for _ in 0..REPEATS {
                let outcome = index.search(q, 100, &|n| parts.get(&n)).unwrap();
                assert!(matches!(outcome, Outcome::Done(_)));
            }
            search_ms[i] = search_ms[i].min((now() - t) / REPEATS as f64);
        }
    }
    let line = json!({
        "documents": index.documents(),
        "queries": queries.len(),
        "search_ms_p50": percentile(&mut search_ms, 50),
        "search_ms_p95": percentile(&mut search_ms, 95),
        "answer_from_empty_cache_ms_p50": percentile(&mut answer_ms, 50),
        "answer_from_empty_cache_ms_p95": percentile(&mut answer_ms, 95),
        "fetched_bytes_p50": percentile(&mut bytes, 50),
        "fetched_bytes_p95": percentile(&mut bytes, 95),
    });
    console_log!("WASMBENCH {line}");
}
