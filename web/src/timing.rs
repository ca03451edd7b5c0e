//! Timings for the benchmark and the end-to-end test: `performance.now()` and a
//! `window.__searchbar` object they can read without parsing the DOM.

use js_sys::{Object, Reflect};
use wasm_bindgen::JsValue;

thread_local! {
    /// Looked up once: `window().performance()` is two calls into the glue, and the split
    /// matmuls read the clock a few times each.
    static PERFORMANCE: Option<web_sys::Performance> =
        web_sys::window().and_then(|w| w.performance());
}

/// Milliseconds since page load (0 where there is no `performance`).
pub fn now() -> f64 {
    PERFORMANCE.with(|p| p.as_ref().map_or(0.0, |p| p.now()))
}

/// The matmul helper's state, as [`publish`] reports it (`worker.rs`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HelperStats {
    /// "off: why", "starting" or "ready".
    pub state: String,
    /// Column panels (8 columns of one matmul) of the offered part that the worker computed,
    /// and that the page claimed back and computed itself.
    pub panels: u64,
    pub page_panels: u64,
    /// The worker's wasm memory once it holds the weights.
    pub worker_memory: f64,
    /// Milliseconds the page spent waiting for chunks the worker had claimed, and how many
    /// waits were not over at once.
    pub wait_ms: f64,
    pub waits: u64,
    /// Milliseconds the worker spent computing chunks, and the offers it looked at.
    pub worker_busy_ms: f64,
    pub worker_seen: u64,
    /// Where the page's split matmuls spent their time (`searchbar_encoder::helper::SplitTimes`,
    /// which builds without simd128 do not have): how many, then milliseconds quantizing and
    /// offering the rows, computing the page's own panels and the chunks it claimed back, and
    /// waiting for and reading the worker's.
    pub split_matmuls: u64,
    pub split_ms: [f64; 4],
}

/// Sets `window.__searchbar = { ready, lastMs, searchMs, wasmMemoryBytes, helper, helperPanels,
/// pagePanels, helperMemoryBytes, helperWaitMs, helperWaits, workerBusyMs, workerSeen,
/// splitMatmuls, splitOfferMs, splitOwnMs, splitClaimedMs, splitTheirsMs }`:
/// `wasmMemoryBytes` is the size of the module's linear memory, which only grows (the peak heap
/// so far); the rest is the matmul helper's state ([`HelperStats`]).
pub fn publish(ready: bool, last_ms: Option<f64>, search_ms: Option<f64>) {
    let Some(window) = web_sys::window() else {
        return;
    };
    let state = Object::new();
    let num = |v: Option<f64>| v.map_or(JsValue::NULL, JsValue::from_f64);
    // Setting plain data properties on fresh objects cannot fail.
    let _ = Reflect::set(&state, &"ready".into(), &ready.into());
    let _ = Reflect::set(&state, &"lastMs".into(), &num(last_ms));
    let _ = Reflect::set(&state, &"searchMs".into(), &num(search_ms));
    let memory = Reflect::get(&wasm_bindgen::memory(), &"buffer".into())
        .and_then(|buffer| Reflect::get(&buffer, &"byteLength".into()))
        .ok()
        .and_then(|v| v.as_f64());
    let _ = Reflect::set(&state, &"wasmMemoryBytes".into(), &num(memory));
    let helper = crate::worker::stats();
    let _ = Reflect::set(&state, &"helper".into(), &helper.state.into());
    let numbers = [
        ("helperPanels", helper.panels as f64),
        ("pagePanels", helper.page_panels as f64),
        ("helperMemoryBytes", helper.worker_memory),
        ("helperWaitMs", helper.wait_ms),
        ("helperWaits", helper.waits as f64),
        ("workerBusyMs", helper.worker_busy_ms),
        ("workerSeen", helper.worker_seen as f64),
        ("splitMatmuls", helper.split_matmuls as f64),
        ("splitOfferMs", helper.split_ms[0]),
        ("splitOwnMs", helper.split_ms[1]),
        ("splitClaimedMs", helper.split_ms[2]),
        ("splitTheirsMs", helper.split_ms[3]),
    ];
    for (key, value) in numbers {
        let _ = Reflect::set(&state, &key.into(), &value.into());
    }
    let _ = Reflect::set(&window, &"__searchbar".into(), &state);
}
