//! A second core for the page's queries: a Web Worker running this same wasm module takes a
//! share of each large int8 matmul ([`searchbar_encoder::helper`] decides the shares).
//!
//! The two instances meet in a `SharedArrayBuffer`, which browsers give only to
//! cross-origin-isolated pages (`Cross-Origin-Opener-Policy: same-origin` and
//! `Cross-Origin-Embedder-Policy: require-corp`; `searchbar serve` sends both). Elsewhere, or
//! if the worker cannot start, the page searches on one core as before.
//!
//! The buffer holds a control block of i32 words and one share at a time:
//! `STATE` goes IDLE → POSTED (page) → CLAIMED (worker) → DONE or FAILED (worker) → IDLE
//! (page). The page takes back a share still POSTED when its own part is done and computes it
//! itself, so it never waits on a worker that is busy or asleep.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use js_sys::{Atomics, Float32Array, Int32Array, Reflect, SharedArrayBuffer, Uint8Array};
use searchbar_encoder::helper::{MatmulHelper, Peer, Share};
use searchbar_encoder::Encoder;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{Blob, BlobPropertyBag, MessageEvent, Url, Worker, WorkerOptions, WorkerType};

const STATE: u32 = 0;
const MATRIX: u32 = 1;
const P0: u32 = 2;
const P1: u32 = 3;
const ROWS: u32 = 4;
const XQ_LEN: u32 = 5;
const OUT_LEN: u32 = 6;
/// Bumped at every post and keystroke; a sleeping worker waits on it.
const WAKE: u32 = 7;
const CONTROL_WORDS: u32 = 16;

const IDLE: i32 = 0;
const POSTED: i32 = 1;
const CLAIMED: i32 = 2;
const DONE: i32 = 3;
const FAILED: i32 = 4;

/// Room for one share of a 256-token text: 256 rows of 768 quantized pairs, 256 steps and
/// half of a 1536-column result, with margin.
const BUFFER_BYTES: u32 = 4 << 20;
/// A claimed share that takes longer than this means the worker is gone: stop using it.
const CLAIMED_TIMEOUT_MS: f64 = 250.0;

/// The worker: loads the page's wasm glue and module, builds a [`MatmulHelper`], then serves
/// shares. It spins between shares for a while after each one (a query's matmuls come tens of
/// microseconds apart), then sleeps on `WAKE` until the next keystroke or post.
const WORKER_JS: &str = r#"
const [STATE, MATRIX, P0, P1, ROWS, XQ_LEN, OUT_LEN, WAKE] = [0, 1, 2, 3, 4, 5, 6, 7];
const [POSTED, CLAIMED, DONE, FAILED] = [1, 2, 3, 4];
const DATA = 64, SPIN_MS = 200;
self.onmessage = async ({ data }) => {
  self.onmessage = null;
  let helper;
  try {
    const glue = await import(data.glue);
    await glue.default({ module_or_path: data.module });
    helper = new glue.MatmulWorker(data.weights);
  } catch (e) {
    self.postMessage({ error: String((e && e.message) || e) });
    return;
  }
  self.postMessage({ ready: true });
  const sab = data.sab, ctl = new Int32Array(sab, 0, 16);
  let until = performance.now() + SPIN_MS;
  for (;;) {
    if (Atomics.load(ctl, STATE) === POSTED &&
        Atomics.compareExchange(ctl, STATE, POSTED, CLAIMED) === POSTED) {
      const rows = ctl[ROWS], xqLen = ctl[XQ_LEN], outLen = ctl[OUT_LEN];
      let state = FAILED;
      try {
        const out = helper.run(ctl[MATRIX], ctl[P0], ctl[P1],
          new Int32Array(sab, DATA, xqLen), new Float32Array(sab, DATA + 4 * xqLen, rows));
        if (out.length === outLen) {
          new Float32Array(sab, DATA + 4 * (xqLen + rows), outLen).set(out);
          state = DONE;
        }
      } catch (e) {}
      Atomics.store(ctl, STATE, state);
      until = performance.now() + SPIN_MS;
    } else if (performance.now() > until) {
      const wake = Atomics.load(ctl, WAKE);
      if (Atomics.load(ctl, STATE) !== POSTED) Atomics.wait(ctl, WAKE, wake);
      until = performance.now() + SPIN_MS;
    }
  }
};
"#;

/// The worker's entry points (exported from this module for [`WORKER_JS`]).
#[wasm_bindgen]
#[derive(Debug)]
pub struct MatmulWorker(MatmulHelper);

#[wasm_bindgen]
impl MatmulWorker {
    #[wasm_bindgen(constructor)]
    pub fn new(weights: &[u8]) -> Result<MatmulWorker, JsError> {
        Ok(Self(MatmulHelper::from_bytes(weights)?))
    }

    pub fn run(
        &self,
        matrix: u32,
        p0: u32,
        p1: u32,
        xq: &[i32],
        steps: &[f32],
    ) -> Result<Vec<f32>, JsError> {
        Ok(self.0.run(matrix, p0 as usize..p1 as usize, xq, steps)?)
    }
}

/// How the helper is doing, for the footer and the benchmark.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    /// "off: why", "starting" or "ready".
    pub state: String,
    /// Shares the worker computed, and shares the page took back and computed itself.
    pub shares: u64,
    pub taken_back: u64,
}

thread_local! {
    static STATS: RefCell<Stats> = RefCell::new(Stats { state: "off".into(), ..Stats::default() });
    static LINK: RefCell<Option<Rc<Link>>> = const { RefCell::new(None) };
}

pub fn stats() -> Stats {
    STATS.with_borrow(Clone::clone)
}

fn set_state(state: String) {
    STATS.with_borrow_mut(|s| s.state = state);
}

/// The page's side of the shared buffer.
struct Link {
    ctl: Int32Array,
    ints: Int32Array,
    floats: Float32Array,
    dead: Cell<bool>,
    /// Where the posted share's result will be (in 4-byte words from the buffer's start).
    out_at: Cell<u32>,
    _worker: Worker,
}

impl Link {
    fn load(&self, word: u32) -> i32 {
        Atomics::load(&self.ctl, word).unwrap_or(FAILED)
    }

    fn store(&self, word: u32, value: i32) {
        let _ = Atomics::store(&self.ctl, word, value);
    }

    fn wake(&self) {
        let _ = Atomics::add(&self.ctl, WAKE, 1);
        let _ = Atomics::notify(&self.ctl, WAKE);
    }
}

impl Peer for Link {
    fn post(&self, share: &Share) -> bool {
        let data = CONTROL_WORDS;
        let words = share.xq.len() + share.steps.len() + share.out_len;
        if self.dead.get() || words as u32 > BUFFER_BYTES / 4 - data || self.load(STATE) != IDLE {
            return false;
        }
        let xq_at = data;
        let steps_at = xq_at + share.xq.len() as u32;
        self.ints.subarray(xq_at, steps_at).copy_from(share.xq);
        let out_at = steps_at + share.steps.len() as u32;
        self.floats
            .subarray(steps_at, out_at)
            .copy_from(share.steps);
        self.out_at.set(out_at);
        for (word, value) in [
            (MATRIX, share.matrix as i32),
            (P0, share.panels.start as i32),
            (P1, share.panels.end as i32),
            (ROWS, share.steps.len() as i32),
            (XQ_LEN, share.xq.len() as i32),
            (OUT_LEN, share.out_len as i32),
        ] {
            self.ctl.set_index(word, value);
        }
        // The store publishes the fields above to the worker's atomic read of STATE.
        self.store(STATE, POSTED);
        self.wake();
        true
    }

    fn collect(&self, out: &mut [f32]) -> bool {
        // Not claimed yet: take it back (the worker then finds IDLE and leaves it).
        if Atomics::compare_exchange(&self.ctl, STATE, POSTED, IDLE) == Ok(POSTED) {
            STATS.with_borrow_mut(|s| s.taken_back += 1);
            return false;
        }
        let start = crate::timing::now();
        let mut state = self.load(STATE);
        while state == CLAIMED {
            if crate::timing::now() - start > CLAIMED_TIMEOUT_MS {
                // Never reuse a buffer the worker may still write: stop sharing for good.
                self.dead.set(true);
                searchbar_encoder::helper::uninstall();
                set_state("off: the worker stopped answering".into());
                return false;
            }
            state = self.load(STATE);
        }
        let ok = state == DONE;
        if ok {
            let at = self.out_at.get();
            self.floats.subarray(at, at + out.len() as u32).copy_to(out);
            STATS.with_borrow_mut(|s| s.shares += 1);
        }
        self.store(STATE, IDLE);
        ok
    }
}

/// Tells a sleeping worker a query is coming (on keydown), so it is spinning by the first
/// matmul.
pub fn wake() {
    LINK.with_borrow(|link| {
        if let Some(link) = link {
            link.wake();
        }
    });
}

/// Starts the worker for `encoder` if the page may share memory; `ready` runs on the main
/// thread when it can take shares (installing it is the caller's step, as the encoder is).
pub fn start(encoder: &Encoder, ready: impl FnOnce(Result<(), String>) + 'static) {
    let global = js_sys::global();
    let isolated = Reflect::get(&global, &"crossOriginIsolated".into())
        .ok()
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    if !isolated {
        set_state("off: the page is not cross-origin isolated".into());
        return;
    }
    match spawn(encoder, ready) {
        Ok(()) => set_state("starting".into()),
        Err(e) => set_state(format!("off: {e}")),
    }
}

fn spawn(
    encoder: &Encoder,
    ready: impl FnOnce(Result<(), String>) + 'static,
) -> Result<(), String> {
    let js = |e: JsValue| format!("{e:?}");
    // trunk's page preloads the glue module; the worker imports the same URL.
    let glue = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.query_selector("link[rel=modulepreload]").ok().flatten())
        .and_then(|link| Reflect::get(&link, &"href".into()).ok())
        .and_then(|href| href.as_string())
        .ok_or("the page does not name its wasm glue module")?;
    let sab = SharedArrayBuffer::new(BUFFER_BYTES);
    let weights = Uint8Array::from(encoder.matmul_weights().as_slice());
    let bag = BlobPropertyBag::new();
    bag.set_type("text/javascript");
    let blob =
        Blob::new_with_str_sequence_and_options(&js_sys::Array::of1(&WORKER_JS.into()), &bag)
            .map_err(js)?;
    let url = Url::create_object_url_with_blob(&blob).map_err(js)?;
    let options = WorkerOptions::new();
    options.set_type(WorkerType::Module);
    let worker = Worker::new_with_options(&url, &options).map_err(js)?;
    let _ = Url::revoke_object_url(&url);
    let link = Rc::new(Link {
        ctl: Int32Array::new_with_byte_offset_and_length(&sab, 0, CONTROL_WORDS),
        ints: Int32Array::new(&sab),
        floats: Float32Array::new(&sab),
        dead: Cell::new(false),
        out_at: Cell::new(0),
        _worker: worker.clone(),
    });
    let mut ready = Some(ready);
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
        let data = e.data();
        let error = Reflect::get(&data, &"error".into())
            .ok()
            .and_then(|v| v.as_string());
        let outcome = match error {
            Some(error) => {
                set_state(format!("off: the worker failed: {error}"));
                Err(error)
            }
            None => {
                LINK.set(Some(link.clone()));
                set_state("ready".into());
                Ok(())
            }
        };
        if let Some(ready) = ready.take() {
            ready(outcome);
        }
    });
    worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    // The worker lives as long as the page.
    on_message.forget();
    let message = js_sys::Object::new();
    for (key, value) in [
        ("glue", JsValue::from(glue)),
        ("module", wasm_bindgen::module()),
        ("weights", weights.clone().into()),
        ("sab", sab.into()),
    ] {
        Reflect::set(&message, &key.into(), &value).map_err(js)?;
    }
    worker
        .post_message_with_transfer(&message, &js_sys::Array::of1(&weights.buffer()))
        .map_err(js)?;
    Ok(())
}

/// The peer to install once [`start`]'s `ready` says so.
pub fn peer() -> Option<Rc<dyn Peer>> {
    LINK.with_borrow(|link| link.clone().map(|l| l as Rc<dyn Peer>))
}
