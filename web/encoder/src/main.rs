//! The search bar's second wasm module: the query encoder. The page's first module (web/) is
//! the box, the lexical index, the vector index, fusion and the rows, and answers by words
//! while this one (tract, the tokenizer, the int8 kernels: most of the bytes) downloads and
//! compiles; it then hands this module each query's text and gets its vector back
//! ([`PageEncoder`]). The two share nothing but what crosses their calls: bytes in, a vector
//! out.
//!
//! The matmul helper worker (worker.rs) runs this module too, not the page's.

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod worker;
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
#[path = "worker_stub.rs"]
mod worker;

use js_sys::{Object, Reflect};
use searchbar_encoder::EmbedJob;
use searchbar_query::{Artifacts, QueryEncoder, TokenRequest};
use searchbar_release::{Manifest, MANIFEST_NAME};
use wasm_bindgen::prelude::*;

#[cfg(target_arch = "wasm32")]
extern "C" {
    /// The static constructors (`inventory` registrations in tract), made by the linker.
    fn __wasm_call_ctors();
}

fn main() {
    // Run once, here. A module none of whose exports calls this counts as a "command" to the
    // linker, which then makes every export (each call from the page or the helper worker)
    // run all the constructors first, a visible share of each search.
    #[cfg(target_arch = "wasm32")]
    // SAFETY: the constructors only register statics (`inventory` skips a node registered
    // before), and nothing here runs before them.
    #[allow(unsafe_code)]
    unsafe {
        __wasm_call_ctors()
    };
}

thread_local! {
    /// Looked up once: the split matmuls read the clock a few times each.
    static PERFORMANCE: Option<web_sys::Performance> =
        web_sys::window().and_then(|w| w.performance());
}

/// Milliseconds since page load (0 where there is no `performance`).
pub fn now() -> f64 {
    PERFORMANCE.with(|p| p.as_ref().map_or(0.0, |p| p.now()))
}

/// The matmul helper's state, as [`PageEncoder::stats`] reports it (`worker.rs`).
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

/// A release's query encoder in the page ([`QueryEncoder`], checked against the manifest).
#[wasm_bindgen]
#[derive(Debug)]
pub struct PageEncoder {
    inner: QueryEncoder,
}

#[wasm_bindgen]
impl PageEncoder {
    /// Verifies the encoder graph, tokenizer and token digests against `manifest` (the
    /// release's manifest.json) and builds the encoder; `saved_token_rows` are rows an earlier
    /// visit kept, each checked against its digest. Blocks while tract optimizes the graph.
    #[wasm_bindgen(constructor)]
    pub fn new(
        manifest: &[u8],
        encoder: Vec<u8>,
        tokenizer: Vec<u8>,
        token_digests: Vec<u8>,
        saved_token_rows: Option<Vec<u8>>,
    ) -> Result<PageEncoder, JsError> {
        let manifest = Manifest::from_json(manifest, MANIFEST_NAME)?;
        let artifacts = Artifacts {
            encoder,
            tokenizer,
            token_digests,
            saved_token_rows,
            ..Artifacts::default()
        };
        Ok(Self {
            inner: QueryEncoder::load(&manifest, &artifacts, 1)?,
        })
    }

    /// The token rows `text` needs that are not at hand yet, four numbers a span
    /// ([`TokenRequest::to_flat`]); `undefined` when there are none to fetch.
    #[wasm_bindgen(js_name = tokenRequest)]
    pub fn token_request(&self, text: &str) -> Result<Option<Vec<f64>>, JsError> {
        Ok(self.inner.token_request(text)?.map(|r| r.to_flat()))
    }

    /// Keeps the rows [`PageEncoder::token_request`] asked for: `bytes` holds each span's
    /// bytes one after the other, `lengths` how many each; every row is checked against its
    /// digest first. `url` names the file in errors.
    #[wasm_bindgen(js_name = insertTokenRows)]
    pub fn insert_token_rows(
        &mut self,
        url: &str,
        spans: &[f64],
        lengths: &[u32],
        bytes: &[u8],
    ) -> Result<(), JsError> {
        let request = TokenRequest::from_flat(url, spans)?;
        let mut parts = Vec::with_capacity(lengths.len());
        let mut rest = bytes;
        for &n in lengths {
            let n = (n as usize).min(rest.len());
            let (part, tail) = rest.split_at(n);
            parts.push(part);
            rest = tail;
        }
        Ok(self.inner.insert_token_rows(&request, &parts)?)
    }

    /// Takes the whole token rows file (from a host that ignores range requests), checked
    /// against the manifest.
    #[wasm_bindgen(js_name = insertTokenFile)]
    pub fn insert_token_file(&mut self, bytes: Vec<u8>) -> Result<(), JsError> {
        Ok(self.inner.insert_token_file(bytes)?)
    }

    /// The token rows fetched so far, for the next visit.
    #[wasm_bindgen(js_name = savedTokenRows)]
    pub fn saved_token_rows(&self) -> Option<Vec<u8>> {
        self.inner.saved_token_rows()
    }

    /// `text`'s vector, in one call.
    pub fn embed(&self, text: &str) -> Result<Vec<f32>, JsError> {
        Ok(self.inner.embed(text)?)
    }

    /// Starts embedding `text` in slices ([`EmbedTask::step`]), for a long text.
    pub fn start(&self, text: &str) -> Result<EmbedTask, JsError> {
        Ok(EmbedTask {
            job: self.inner.encoder().start(text)?,
        })
    }

    /// Starts the matmul helper worker, which imports this module's glue from `glue` (an
    /// absolute URL); resolves when it can take shares ([`PageEncoder::install_helper`]),
    /// rejects with why not (the page is not cross-origin isolated, the worker failed).
    #[wasm_bindgen(js_name = startHelper)]
    pub fn start_helper(&self, glue: String) -> js_sys::Promise {
        let encoder = self.inner.encoder();
        js_sys::Promise::new(&mut |resolve, reject| {
            let ready = {
                let reject = reject.clone();
                move |outcome: Result<(), String>| {
                    let _ = match outcome {
                        Ok(()) => resolve.call0(&JsValue::UNDEFINED),
                        Err(e) => reject.call1(&JsValue::UNDEFINED, &e.into()),
                    };
                }
            };
            if let Err(e) = worker::start(encoder, &glue, ready) {
                let _ = reject.call1(&JsValue::UNDEFINED, &e.into());
            }
        })
    }

    /// Has the encoder's matmuls shared with the worker, once [`PageEncoder::start_helper`]
    /// resolved.
    #[wasm_bindgen(js_name = installHelper)]
    pub fn install_helper(&self) {
        worker::install(self.inner.encoder());
    }

    /// This query's matmuls are done: the worker may sleep.
    pub fn rest(&self) {
        worker::rest();
    }

    /// A query is coming (a keydown): the worker should be spinning by its first matmul.
    pub fn wake(&self) {
        worker::wake();
    }

    /// This module's wasm memory and the matmul helper's state, as the page publishes them
    /// (`window.__searchbar`): `encoderMemoryBytes`, `helper`, `helperPanels`, `pagePanels`,
    /// `helperMemoryBytes`, `helperWaitMs`, `helperWaits`, `workerBusyMs`, `workerSeen`,
    /// `splitMatmuls`, `splitOfferMs`, `splitOwnMs`, `splitClaimedMs`, `splitTheirsMs`.
    pub fn stats(&self) -> Object {
        let stats = Object::new();
        let memory = Reflect::get(&wasm_bindgen::memory(), &"buffer".into())
            .and_then(|buffer| Reflect::get(&buffer, &"byteLength".into()))
            .ok()
            .and_then(|v| v.as_f64())
            .unwrap_or(0.0);
        let helper = worker::stats();
        // Setting plain data properties on a fresh object cannot fail.
        let _ = Reflect::set(&stats, &"helper".into(), &helper.state.into());
        let numbers = [
            ("encoderMemoryBytes", memory),
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
            let _ = Reflect::set(&stats, &key.into(), &value.into());
        }
        stats
    }
}

/// A text being embedded in slices, so a long pasted text never holds the main thread for
/// long.
#[wasm_bindgen]
#[derive(Debug)]
pub struct EmbedTask {
    job: EmbedJob,
}

#[wasm_bindgen]
impl EmbedTask {
    /// Runs the next nodes for at most about `budget_ms`; the vector once the last has run.
    pub fn step(&mut self, budget_ms: f64) -> Result<Option<Vec<f32>>, JsError> {
        Ok(self.job.step_for(budget_ms, now)?)
    }
}
