//! The query encoder, a wasm module of its own (web/encoder): this page's module answers by
//! words while it downloads and compiles, then hands it each query's text and gets the vector
//! back. Its bytes (graph, tokenizer, token digests) are fetched and checked here like every
//! other file and given to it as they are; it checks them against the manifest again as it
//! builds the encoder.
//!
//! The module is found in the manifest's list of the page's own files (`files.app`), its glue
//! imported and its wasm streamed into compilation by the page's shell (`searchbarEncoder`
//! in index.html: an inline script, so no `eval` and no extra file), each checked by the
//! browser against the manifest's sha256 (Subresource Integrity) before it runs.

use js_sys::{Array, Function, Object, Promise, Reflect, Uint8Array};
use searchbar_query::fetch::describe;
use searchbar_query::TokenRequest;
use searchbar_release::{FileRef, Manifest};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

/// The encoder module's files in the bundle: `<PREFIX><hash>.js` (its glue) and
/// `<PREFIX><hash>_bg.wasm` (scripts/build-web.sh names them).
pub const MODULE_PREFIX: &str = "searchbar-encoder-";

// Every call can throw: a module that trapped (out of memory, a panic) throws on every later
// call into it. Each is caught, so the page's own state is never left mid-update by an
// exception passing through it, and keyword search goes on.
#[wasm_bindgen]
extern "C" {
    /// web/encoder's `PageEncoder`.
    #[derive(Debug, Clone)]
    type PageEncoder;
    #[wasm_bindgen(method, catch)]
    fn embed(this: &PageEncoder, text: &str) -> Result<Vec<f32>, JsValue>;
    #[wasm_bindgen(method, catch)]
    fn start(this: &PageEncoder, text: &str) -> Result<JsEmbedTask, JsValue>;
    #[wasm_bindgen(method, catch, js_name = tokenRequest)]
    fn token_request(this: &PageEncoder, text: &str) -> Result<Option<Vec<f64>>, JsValue>;
    #[wasm_bindgen(method, catch, js_name = insertTokenRows)]
    fn insert_token_rows(
        this: &PageEncoder,
        url: &str,
        spans: &[f64],
        lengths: &[u32],
        bytes: &[u8],
    ) -> Result<(), JsValue>;
    #[wasm_bindgen(method, catch, js_name = insertTokenFile)]
    fn insert_token_file(this: &PageEncoder, bytes: &Uint8Array) -> Result<(), JsValue>;
    #[wasm_bindgen(method, catch, js_name = savedTokenRows)]
    fn saved_token_rows(this: &PageEncoder) -> Result<Option<Uint8Array>, JsValue>;
    #[wasm_bindgen(method, catch, js_name = startHelper)]
    fn start_helper(this: &PageEncoder, glue: &str) -> Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch, js_name = installHelper)]
    fn install_helper(this: &PageEncoder) -> Result<(), JsValue>;
    #[wasm_bindgen(method, catch)]
    fn rest(this: &PageEncoder) -> Result<(), JsValue>;
    #[wasm_bindgen(method, catch)]
    fn wake(this: &PageEncoder) -> Result<(), JsValue>;
    #[wasm_bindgen(method, catch)]
    fn stats(this: &PageEncoder) -> Result<Object, JsValue>;

    /// web/encoder's `EmbedTask`.
    #[derive(Debug)]
    type JsEmbedTask;
    #[wasm_bindgen(method, catch)]
    fn step(this: &JsEmbedTask, budget_ms: f64) -> Result<Option<Vec<f32>>, JsValue>;
    #[wasm_bindgen(method, catch)]
    fn free(this: &JsEmbedTask) -> Result<(), JsValue>;
}

/// The release's query encoder, running in its own module.
#[derive(Debug, Clone)]
pub struct Encoder {
    js: PageEncoder,
    /// The module's glue, for the matmul helper worker, which runs the same module.
    glue: String,
}

/// A text being embedded in slices; dropping it frees it in the encoder's module.
#[derive(Debug)]
pub struct EmbedTask(JsEmbedTask);

impl Drop for EmbedTask {
    fn drop(&mut self) {
        // A task of a module that trapped cannot be freed, nor does it need to be.
        let _ = self.0.free();
    }
}

impl EmbedTask {
    /// Runs the next nodes for at most about `budget_ms`; the vector once the last has run.
    pub fn step(&self, budget_ms: f64) -> Result<Option<Vec<f32>>, String> {
        self.0.step(budget_ms).map_err(|e| describe(&e))
    }
}

/// The encoder module's glue and wasm, as the manifest lists them among the page's files: a
/// glue and the wasm of the same build (one name stem).
pub fn module_files(manifest: &Manifest) -> Option<(&FileRef, &FileRef)> {
    let name = |f: &'_ FileRef| f.path.rsplit('/').next().unwrap_or("").to_string();
    let app = &manifest.files.app;
    app.iter().find_map(|glue| {
        let stem = name(glue)
            .strip_suffix(".js")
            .filter(|s| s.starts_with(MODULE_PREFIX))?
            .to_string();
        let wasm = app.iter().find(|f| name(f) == format!("{stem}_bg.wasm"))?;
        Some((glue, wasm))
    })
}

/// Imports the encoder module and compiles its wasm as it streams in, reporting the bytes
/// received; resolves to the module's exports.
pub async fn load_module(
    manifest: &Manifest,
    progress: impl Fn(u64) + 'static,
) -> Result<(JsValue, String), String> {
    let (glue_file, wasm_file) = module_files(manifest).ok_or(
        "the release's web bundle has no encoder module (searchbar-encoder-*.js and _bg.wasm)",
    )?;
    let (glue, wasm) = (
        crate::loader::absolute(&glue_file.path)?,
        crate::loader::absolute(&wasm_file.path)?,
    );
    let window = web_sys::window().ok_or("no window")?;
    let loader: Function = Reflect::get(&window, &"searchbarEncoder".into())
        .ok()
        .and_then(|f| f.dyn_into().ok())
        .ok_or("the page's shell has no searchbarEncoder loader (index.html)")?;
    // Kept for the page's life: the stream may still report bytes after this future is
    // dropped (the other files of the dense stage failed first), and one small closure per
    // page is cheaper than a call into a freed one.
    let progress = Closure::<dyn Fn(f64)>::new(move |n: f64| progress(n as u64)).into_js_value();
    let args = Array::of5(
        &glue.clone().into(),
        &glue_file.sha256.clone().into(),
        &wasm.into(),
        &wasm_file.sha256.clone().into(),
        &progress,
    );
    // The loader names the file a failure is about.
    let started = loader
        .apply(&JsValue::UNDEFINED, &args)
        .map_err(|e| describe(&e))?;
    let exports = JsFuture::from(Promise::from(started))
        .await
        .map_err(|e| describe(&e))?;
    Ok((exports, glue))
}

/// The bytes the encoder is built from, in JS memory (this module never needs them).
#[derive(Debug)]
pub struct EncoderFiles {
    pub graph: Uint8Array,
    pub tokenizer: Uint8Array,
    pub token_digests: Uint8Array,
    pub saved_token_rows: Option<Uint8Array>,
}

impl Encoder {
    /// Builds the encoder in its module from `files`, checked there against `manifest` (the
    /// release's manifest.json as served). Blocks while tract optimizes the graph.
    pub fn open(
        (exports, glue): (JsValue, String),
        manifest: &[u8],
        files: EncoderFiles,
    ) -> Result<Self, String> {
        let class: Function = Reflect::get(&exports, &"PageEncoder".into())
            .ok()
            .and_then(|c| c.dyn_into().ok())
            .ok_or("the encoder module exports no PageEncoder")?;
        let args = Array::of5(
            &Uint8Array::from(manifest).into(),
            &files.graph.into(),
            &files.tokenizer.into(),
            &files.token_digests.into(),
            &files
                .saved_token_rows
                .map_or(JsValue::UNDEFINED, Into::into),
        );
        let js = Reflect::construct(&class, &args).map_err(|e| describe(&e))?;
        Ok(Self {
            js: js.unchecked_into(),
            glue,
        })
    }

    pub fn embed(&self, text: &str) -> Result<Vec<f32>, String> {
        self.js.embed(text).map_err(|e| describe(&e))
    }

    /// Starts embedding `text` in slices ([`EmbedTask::step`]).
    pub fn start(&self, text: &str) -> Result<EmbedTask, String> {
        self.js.start(text).map(EmbedTask).map_err(|e| describe(&e))
    }

    /// The token rows `text` needs that are not at hand yet, to fetch from `url` (the
    /// manifest's token rows file).
    pub fn token_request(&self, text: &str, url: &str) -> Result<Option<TokenRequest>, String> {
        let Some(flat) = self.js.token_request(text).map_err(|e| describe(&e))? else {
            return Ok(None);
        };
        TokenRequest::from_flat(url, &flat)
            .map(Some)
            .map_err(|e| e.to_string())
    }

    /// Keeps the rows `request` asked for (each span's bytes, in order); the encoder checks
    /// each row against its digest.
    pub fn insert_token_rows(
        &self,
        request: &TokenRequest,
        fetched: &[Vec<u8>],
    ) -> Result<(), String> {
        let lengths: Vec<u32> = fetched.iter().map(|b| b.len() as u32).collect();
        // One copy into the encoder's memory rather than one per span (most are a row or two).
        let bytes = fetched.concat();
        self.js
            .insert_token_rows(&request.url, &request.to_flat(), &lengths, &bytes)
            .map_err(|e| describe(&e))
    }

    /// Takes the whole token rows file (a host without range requests sent it), checked by the
    /// encoder against the manifest.
    pub fn insert_token_file(&self, bytes: &Uint8Array) -> Result<(), String> {
        self.js.insert_token_file(bytes).map_err(|e| describe(&e))
    }

    /// The token rows fetched so far, for the next visit (in JS memory: they go to the cache).
    pub fn saved_token_rows(&self) -> Option<Uint8Array> {
        self.js.saved_token_rows().ok().flatten()
    }

    /// Starts the matmul helper worker; resolves when it can take shares, fails with why not.
    pub async fn start_helper(&self) -> Result<(), String> {
        let started = self.js.start_helper(&self.glue).map_err(|e| describe(&e))?;
        JsFuture::from(started)
            .await
            .map(drop)
            .map_err(|e| describe(&e))
    }

    /// Shares the encoder's matmuls with the worker [`Encoder::start_helper`] started.
    pub fn install_helper(&self) {
        let _ = self.js.install_helper();
    }

    /// This query's matmuls are done: the helper worker may sleep.
    pub fn rest(&self) {
        let _ = self.js.rest();
    }

    /// A query is coming: the helper worker should be spinning by its first matmul.
    pub fn wake(&self) {
        let _ = self.js.wake();
    }

    /// The encoder module's memory and the helper's state ([`crate::timing::publish`]); `None`
    /// once the module has failed.
    pub fn stats(&self) -> Option<Object> {
        self.js.stats().ok()
    }
}

thread_local! {
    /// The attached encoder, for what runs outside the app's update: the box's keydown wakes the
    /// helper, the timings read the module's memory and the helper's state.
    static CURRENT: std::cell::RefCell<Option<Encoder>> = const { std::cell::RefCell::new(None) };
}

/// Makes `encoder` the one [`wake`], [`rest`] and [`stats`] speak to.
pub fn set_current(encoder: &Encoder) {
    CURRENT.set(Some(encoder.clone()));
}

/// A query is coming (a keydown): the helper worker, if any, should be spinning by its first
/// matmul.
pub fn wake() {
    CURRENT.with_borrow(|e| e.as_ref().map(Encoder::wake));
}

/// This query's matmuls are done: the helper worker may sleep.
pub fn rest() {
    CURRENT.with_borrow(|e| e.as_ref().map(Encoder::rest));
}

/// The encoder module's memory and the helper's state, once an encoder is attached.
pub fn stats() -> Option<Object> {
    CURRENT.with_borrow(|e| e.as_ref().and_then(Encoder::stats))
}
