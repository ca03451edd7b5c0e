//! A second core for the page's queries: a Web Worker running this same wasm module (the
//! encoder's, not the page's) computes part of each large int8 matmul
//! ([`searchbar_encoder::helper`] offers the chunks).
//!
//! The two instances meet in a `SharedArrayBuffer`, which browsers give only to
//! cross-origin-isolated pages (`Cross-Origin-Opener-Policy: same-origin` and
//! `Cross-Origin-Embedder-Policy: require-corp`; `searchbar serve` sends both). Elsewhere, or
//! if the worker cannot start, the page searches on one core as before.
//!
//! The buffer holds a control block of i32 words, then the offered matmul's quantized rows and
//! the worker's results. `NEXT` packs a share number (11 bits), the share's end panel and its
//! next unclaimed panel (10 bits each): both sides claim a chunk by compare-and-swap on it, so
//! a claim made for an older share, or after the last chunk, fails, and no claim depends on
//! another word read at another time. The worker copies a share's rows once, when it first
//! sees its number, and counts the panels it wrote in `DONE`.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use crate::HelperStats;
use js_sys::{Atomics, Float32Array, Int32Array, Reflect, SharedArrayBuffer, Uint8Array};
use searchbar_encoder::helper::{MatmulHelper, Peer, Share};
use searchbar_encoder::Encoder;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{Blob, BlobPropertyBag, MessageEvent, Url, Worker, WorkerOptions, WorkerType};

const NEXT: u32 = 0;
/// `NEXT`'s fields: next panel (bits 0-9), end panel (10-19), share number (20-30).
const PANEL_BITS: i32 = 10;
const PANEL_MASK: i32 = (1 << PANEL_BITS) - 1;
const SEQ_MASK: i32 = (1 << 11) - 1;
/// Bumped at every offer and keystroke; a sleeping worker waits on it.
const WAKE: u32 = 1;
/// Diagnostics the worker adds to: microseconds it spent computing chunks, and the offers it
/// looked at.
const BUSY_US: u32 = 2;
const SEEN: u32 = 3;
/// 1 while the worker is about to wait or waiting on `WAKE`: only then does a wake need
/// `Atomics.notify`, which otherwise costs the page a call into the futex table per offer.
const SLEEPING: u32 = 4;
/// 1 once the page has its query's vector: the worker stops spinning and sleeps at once. Its
/// spin would otherwise hold the second core while the page searches and shows the results,
/// and the browser's other threads (compositor, IO) then take the page's. The next keystroke
/// or offer clears it.
const REST: u32 = 5;
/// The offer's words, written with its rows in one copy (`NEXT`'s atomic store publishes
/// them): every offer's full number (the 11 bits in `NEXT` wrap, so after claiming, the worker
/// checks that the rows it holds are this offer's), the matrix, rows, the quantized rows'
/// length, the chunk, the panels the worker has written (`DONE`), whether computing a chunk
/// failed, and where the result area starts (in 4-byte words).
const SHARE: u32 = 8;
const DONE: u32 = 13;
const FAILED: u32 = 14;
const CONTROL_WORDS: u32 = 16;

/// Room for a 256-token text's largest matmul: 256 rows of 768 quantized pairs and steps, and
/// a 256 x 1536 result.
const BUFFER_BYTES: u32 = 4 << 20;
/// Waiting longer than this for the worker's chunks means it is gone: stop using it.
const WAIT_TIMEOUT_MS: f64 = 250.0;

/// The worker: loads the page's wasm glue and module, builds a [`MatmulHelper`], then claims
/// chunks. It spins 3 ms after each chunk or wake (a query's matmuls come tens of
/// microseconds apart), then sleeps on `WAKE` until the next keystroke or offer. Longer spins
/// gave no faster queries and took a core from the page and the rest of the browser.
const WORKER_JS: &str = r#"
const [NEXT, WAKE, BUSY_US, SEEN, SLEEPING, REST] = [0, 1, 2, 3, 4, 5];
const [SHARE, MATRIX, ROWS, XQ_LEN, CHUNK, DONE, FAILED, OUT_AT] = [8, 9, 10, 11, 12, 13, 14, 15];
const open = (v) => (v & 1023) < ((v >>> 10) & 1023);
const DATA = 16, SPIN_MS = 3;
self.onmessage = async ({ data }) => {
  self.onmessage = null;
  let helper, memory, wasm;
  try {
    const glue = await import(data.glue);
    wasm = await glue.default({ module_or_path: data.module });
    helper = new glue.MatmulWorker(data.weights);
    memory = wasm.memory.buffer.byteLength;
  } catch (e) {
    self.postMessage({ error: String((e && e.message) || e) });
    return;
  }
  self.postMessage({ ready: true, memory });
  const sab = data.sab, ctl = new Int32Array(sab, 0, 16);
  const ints = new Int32Array(sab), floats = new Float32Array(sab);
  let loaded = -1, share = -1, matrix = 0, rows = 0, chunk = 1, outAt = 0;
  // Rows in and results out are copied straight between the shared buffer and the worker's
  // own wasm memory (no glue-made copies, no allocation per chunk).
  const load = (seq) => {
    share = ctl[SHARE]; matrix = ctl[MATRIX]; rows = ctl[ROWS]; chunk = ctl[CHUNK];
    outAt = ctl[OUT_AT];
    const len = ctl[XQ_LEN] + rows;
    new Int32Array(wasm.memory.buffer, helper.rows_at(len), len)
      .set(ints.subarray(DATA, DATA + len));
    helper.loaded(rows);
    loaded = seq;
    Atomics.add(ctl, SEEN, 1);
  };
  let until = performance.now() + SPIN_MS;
  for (;;) {
    const v = Atomics.load(ctl, NEXT), seq = v >>> 20, p = v & 1023, end = (v >>> 10) & 1023;
    if (p < end) {
      if (seq !== loaded || ctl[SHARE] !== share) {
        // Written before NEXT was stored; a claim below fails if they were replaced since.
        load(seq);
        continue;
      }
      if (Atomics.compareExchange(ctl, NEXT, v, v + chunk) === v) {
        // An open offer's rows stay put until its chunks are done: reload if these are older.
        if (ctl[SHARE] !== share) load(seq);
        const stop = Math.min(p + chunk, end), t0 = performance.now();
        try {
          const len = helper.run(matrix, p, stop);
          floats.set(new Float32Array(wasm.memory.buffer, helper.out_at(), len), outAt + rows * p * 8);
        } catch (e) {
          self.postMessage({ error: `panels ${p}..${stop} of matrix ${matrix}: ${e}` });
          Atomics.store(ctl, FAILED, 1);
        }
        Atomics.add(ctl, DONE, stop - p);
        const t1 = performance.now();
        Atomics.add(ctl, BUSY_US, Math.round((t1 - t0) * 1000));
        until = t1 + SPIN_MS;
      }
    } else if (performance.now() > until || Atomics.load(ctl, REST)) {
      // Says so before looking at NEXT a last time: an offer made after that look finds the
      // flag set and notifies, and one made before it is seen here (or bumped WAKE already).
      Atomics.store(ctl, SLEEPING, 1);
      const wake = Atomics.load(ctl, WAKE);
      if (!open(Atomics.load(ctl, NEXT))) Atomics.wait(ctl, WAKE, wake);
      Atomics.store(ctl, SLEEPING, 0);
      until = performance.now() + SPIN_MS;
    }
  }
};
"#;

/// The worker's entry points (exported from this module for [`WORKER_JS`]). The worker's
/// script copies an offer's rows into [`Self::rows_at`] and each chunk's result out of
/// [`Self::out_at`] itself, so no call allocates.
#[wasm_bindgen]
#[derive(Debug)]
pub struct MatmulWorker {
    helper: MatmulHelper,
    /// An offer as the shared buffer holds it: quantized rows, then each row's step's bits.
    rows: Vec<i32>,
    xq_len: usize,
    steps: Vec<f32>,
    out: Vec<f32>,
}

#[wasm_bindgen]
impl MatmulWorker {
    #[wasm_bindgen(constructor)]
    pub fn new(weights: &[u8]) -> Result<MatmulWorker, JsError> {
        Ok(Self {
            helper: MatmulHelper::from_bytes(weights)?,
            rows: Vec::new(),
            xq_len: 0,
            steps: Vec::new(),
            out: Vec::new(),
        })
    }

    /// Room for an offer's `len` words (rows and steps); the caller fills it, then calls
    /// [`Self::loaded`]. Valid until the next call.
    pub fn rows_at(&mut self, len: usize) -> *mut i32 {
        self.rows.resize(len, 0);
        self.rows.as_mut_ptr()
    }

    /// The words at [`Self::rows_at`] are an offer of `rows` rows.
    pub fn loaded(&mut self, rows: usize) {
        let rows = rows.min(self.rows.len());
        self.xq_len = self.rows.len() - rows;
        self.steps.clear();
        let bits = &self.rows[self.xq_len..];
        self.steps
            .extend(bits.iter().map(|&b| f32::from_bits(b as u32)));
    }

    /// Computes panels `p0..p1` of `matrix` for the loaded rows into [`Self::out_at`];
    /// returns how many values it wrote.
    pub fn run(&mut self, matrix: u32, p0: u32, p1: u32) -> Result<usize, JsError> {
        let panels = p0 as usize..p1 as usize;
        let xq = &self.rows[..self.xq_len];
        self.helper
            .run(matrix, panels, xq, &self.steps, &mut self.out)?;
        Ok(self.out.len())
    }

    /// Where [`Self::run`] left its result.
    pub fn out_at(&self) -> *const f32 {
        self.out.as_ptr()
    }
}

thread_local! {
    static STATS: RefCell<HelperStats> =
        RefCell::new(HelperStats { state: "off".into(), ..HelperStats::default() });
    static LINK: RefCell<Option<Rc<Link>>> = const { RefCell::new(None) };
}

pub fn stats() -> HelperStats {
    let mut stats = STATS.with_borrow(Clone::clone);
    LINK.with_borrow(|link| {
        if let Some(link) = link {
            stats.worker_busy_ms = f64::from(link.load(BUSY_US)) / 1e3;
            stats.worker_seen = link.load(SEEN) as u64;
        }
    });
    let split = searchbar_encoder::helper::split_times();
    stats.split_matmuls = split.matmuls;
    stats.split_ms = [
        split.offer_ms,
        split.own_ms,
        split.claimed_ms,
        split.theirs_ms,
    ];
    stats
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
    /// Offers made (the current share's full number), its chunk and its result area.
    shares: Cell<i32>,
    chunk: Cell<i32>,
    out_at: Cell<u32>,
    _worker: Worker,
}

impl Link {
    /// The current share's number as `NEXT` holds it.
    fn seq(&self) -> i32 {
        self.shares.get() & SEQ_MASK
    }

    fn load(&self, word: u32) -> i32 {
        Atomics::load(&self.ctl, word).unwrap_or(0)
    }

    fn store(&self, word: u32, value: i32) {
        let _ = Atomics::store(&self.ctl, word, value);
    }

    fn wake(&self) {
        self.store(REST, 0);
        let _ = Atomics::add(&self.ctl, WAKE, 1);
        if self.load(SLEEPING) != 0 {
            let _ = Atomics::notify(&self.ctl, WAKE);
        }
    }

    /// Stops offering matmuls (the encoder then runs them here; [`Peer::post`] says no).
    fn give_up(&self, why: String) {
        self.dead.set(true);
        set_state(format!("off: {why}"));
    }
}

impl Peer for Link {
    fn post(&self, share: &Share) -> bool {
        let rows = share.steps.len();
        let xq_at = CONTROL_WORDS as usize;
        let out_at = xq_at + share.xq.len() + rows;
        let needed = out_at + rows * share.panels.end * 8;
        let panel_room = share.panels.end + share.chunk <= PANEL_MASK as usize;
        if self.dead.get() || needed > BUFFER_BYTES as usize / 4 || !panel_room {
            return false;
        }
        // The previous share is complete (its caller waited for it): nothing reads these now,
        // and the worker writes none of them until it claims a chunk of this one.
        let shares = self.shares.get().wrapping_add(1);
        let mut words = Vec::with_capacity(out_at - SHARE as usize);
        words.extend([
            shares,
            share.matrix as i32,
            rows as i32,
            share.xq.len() as i32,
            share.chunk as i32,
            0,
            0,
            out_at as i32,
        ]);
        words.extend_from_slice(share.xq);
        words.extend(share.steps.iter().map(|s| s.to_bits() as i32));
        self.ints.subarray(SHARE, out_at as u32).copy_from(&words);
        self.shares.set(shares);
        let seq = self.seq();
        self.chunk.set(share.chunk as i32);
        self.out_at.set(out_at as u32);
        let (start, end) = (share.panels.start as i32, share.panels.end as i32);
        // Publishes everything above to the worker's atomic read of NEXT.
        self.store(
            NEXT,
            (seq << (2 * PANEL_BITS)) | (end << PANEL_BITS) | start,
        );
        self.wake();
        true
    }

    fn claim(&self) -> Option<usize> {
        loop {
            let v = self.load(NEXT);
            let (p, end) = (v & PANEL_MASK, (v >> PANEL_BITS) & PANEL_MASK);
            if v >> (2 * PANEL_BITS) != self.seq() || p >= end {
                return None;
            }
            let claimed = v + self.chunk.get();
            if Atomics::compare_exchange(&self.ctl, NEXT, v, claimed) == Ok(v) {
                let panels = (end - p).min(self.chunk.get()) as u64;
                STATS.with_borrow_mut(|s| s.page_panels += panels);
                return Some(p as usize);
            }
        }
    }

    fn wait(&self, panels: usize) -> bool {
        let start = crate::now();
        if (self.load(DONE) as usize) < panels {
            STATS.with_borrow_mut(|s| s.waits += 1);
        }
        while (self.load(DONE) as usize) < panels {
            if crate::now() - start > WAIT_TIMEOUT_MS {
                // Never reuse a buffer the worker may still write.
                let done = self.load(DONE);
                self.give_up(format!(
                    "the worker stopped answering ({done} of {panels} panels after \
                     {WAIT_TIMEOUT_MS} ms)"
                ));
                return false;
            }
        }
        if self.load(FAILED) != 0 {
            self.give_up("the worker failed to compute a chunk".into());
            return false;
        }
        let waited = crate::now() - start;
        STATS.with_borrow_mut(|s| {
            s.panels += panels as u64;
            s.wait_ms += waited;
        });
        true
    }

    fn read(&self, offset: usize, out: &mut [f32]) {
        let at = self.out_at.get() + offset as u32;
        self.floats.subarray(at, at + out.len() as u32).copy_to(out);
    }

    fn now(&self) -> f64 {
        crate::now()
    }
}

/// Tells the worker this query's matmuls are done: it sleeps instead of spinning on (see
/// `REST`).
pub fn rest() {
    LINK.with_borrow(|link| {
        if let Some(link) = link {
            link.store(REST, 1);
        }
    });
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

/// Starts the worker for `encoder` if the page may share memory; the worker imports this
/// module's glue from `glue` (an absolute URL). `ready` runs on the main thread when it can take
/// shares (installing it is the caller's step, as the encoder is); an error says why no worker
/// starts.
pub fn start(
    encoder: &Encoder,
    glue: &str,
    ready: impl FnOnce(Result<(), String>) + 'static,
) -> Result<(), String> {
    let global = js_sys::global();
    let isolated = Reflect::get(&global, &"crossOriginIsolated".into())
        .ok()
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let outcome = if isolated {
        spawn(encoder, glue, ready)
    } else {
        Err("the page is not cross-origin isolated".into())
    };
    match &outcome {
        Ok(()) => set_state("starting".into()),
        Err(e) => set_state(format!("off: {e}")),
    }
    outcome
}

fn spawn(
    encoder: &Encoder,
    glue: &str,
    ready: impl FnOnce(Result<(), String>) + 'static,
) -> Result<(), String> {
    let js = |e: JsValue| format!("{e:?}");
    let sab = SharedArrayBuffer::new(BUFFER_BYTES);
    // Copied out a matrix at a time: this module's memory never holds the packed weights
    // whole (it would keep the 11 MB for good).
    let weights = Uint8Array::new_with_length(encoder.matmul_weights_len() as u32);
    let mut at = 0u32;
    encoder.write_matmul_weights(&mut |part| {
        let end = at + part.len() as u32;
        weights.subarray(at, end).copy_from(part);
        at = end;
    });
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
        shares: Cell::new(0),
        chunk: Cell::new(1),
        out_at: Cell::new(0),
        _worker: worker.clone(),
    });
    let mut ready = Some(ready);
    let on_message = {
        let link = link.clone();
        Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            let error = Reflect::get(&e.data(), &"error".into())
                .ok()
                .and_then(|v| v.as_string());
            let outcome = match error {
                Some(error) => {
                    link.give_up(format!("the worker failed: {error}"));
                    Err(error)
                }
                None => {
                    let memory = Reflect::get(&e.data(), &"memory".into())
                        .ok()
                        .and_then(|v| v.as_f64())
                        .unwrap_or(0.0);
                    STATS.with_borrow_mut(|s| s.worker_memory = memory);
                    LINK.set(Some(link.clone()));
                    set_state("ready".into());
                    Ok(())
                }
            };
            if let Some(ready) = ready.take() {
                ready(outcome);
            }
        })
    };
    // An exception the worker did not catch ends it.
    let on_error = Closure::<dyn FnMut(web_sys::ErrorEvent)>::new(move |e: web_sys::ErrorEvent| {
        link.give_up(format!("the worker stopped: {}", e.message()));
    });
    worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    // The worker lives as long as the page.
    on_message.forget();
    on_error.forget();
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

/// Has `encoder`'s matmuls shared with the worker, once [`start`]'s `ready` says it is. A
/// `split=OFFERED,CHUNKS` parameter in the page's URL (64ths of each matmul offered, in how
/// many chunks) overrides the encoder's split, for measuring others on a given machine.
pub fn install(encoder: &Encoder) {
    if let Some(link) = LINK.with_borrow(Clone::clone) {
        let search = web_sys::window().and_then(|w| w.location().search().ok());
        if let Some((offered, chunks)) = search.as_deref().and_then(split_parameter) {
            searchbar_encoder::helper::tune(offered, chunks);
        }
        encoder.share_matmuls(link);
    }
}

/// `OFFERED,CHUNKS` from a URL's `?...&split=OFFERED,CHUNKS&...`.
fn split_parameter(search: &str) -> Option<(usize, usize)> {
    let value = search
        .trim_start_matches('?')
        .split('&')
        .find_map(|pair| pair.strip_prefix("split="))?;
    let (offered, chunks) = value.split_once(',').or_else(|| value.split_once("%2C"))?;
    Some((offered.parse().ok()?, chunks.parse().ok()?))
}
