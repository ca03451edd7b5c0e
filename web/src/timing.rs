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

/// Sets `window.__searchbar = { ready, lastMs, searchMs, wasmMemoryBytes, pageMemoryBytes,
/// encoderMemoryBytes, helper, ... }`: `pageMemoryBytes` and `encoderMemoryBytes` are the
/// linear memories of the page's module and of the encoder's (each only grows: the peak heap so
/// far), `wasmMemoryBytes` their sum; the rest is the matmul helper's state as the encoder's
/// module reports it (web/encoder: `PageEncoder::stats`), `helper` "off: ..." until the
/// encoder is attached.
pub fn publish(ready: bool, last_ms: Option<f64>, search_ms: Option<f64>) {
    let Some(window) = web_sys::window() else {
        return;
    };
    let state = Object::new();
    let num = |v: Option<f64>| v.map_or(JsValue::NULL, JsValue::from_f64);
    // Setting plain data properties on fresh objects cannot fail.
    let _ = Reflect::set(
        &state,
        &"helper".into(),
        &"off: the encoder is not loaded".into(),
    );
    if let Some(stats) = crate::encoder::stats() {
        let _ = Object::assign(&state, &stats);
    }
    let _ = Reflect::set(&state, &"ready".into(), &ready.into());
    let _ = Reflect::set(&state, &"lastMs".into(), &num(last_ms));
    let _ = Reflect::set(&state, &"searchMs".into(), &num(search_ms));
    let page = Reflect::get(&wasm_bindgen::memory(), &"buffer".into())
        .and_then(|buffer| Reflect::get(&buffer, &"byteLength".into()))
        .ok()
        .and_then(|v| v.as_f64())
        .unwrap_or(0.0);
    let encoder = Reflect::get(&state, &"encoderMemoryBytes".into())
        .ok()
        .and_then(|v| v.as_f64())
        .unwrap_or(0.0);
    let _ = Reflect::set(&state, &"pageMemoryBytes".into(), &page.into());
    let _ = Reflect::set(&state, &"encoderMemoryBytes".into(), &encoder.into());
    let _ = Reflect::set(&state, &"wasmMemoryBytes".into(), &(page + encoder).into());
    let _ = Reflect::set(&window, &"__searchbar".into(), &state);
}
