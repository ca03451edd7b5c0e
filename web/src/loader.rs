//! Downloads this page's release (manifest, then the artifacts with progress, in two stages) and
//! polls the live-release pointer.
//!
//! The lexical root comes first: with it a hybrid or lexical release answers by words
//! ([`Searcher::records`]). The dense half follows and is attached when it is ready: the vector
//! index ([`Dense`]), and the encoder, a wasm module of its own with its graph, tokenizer and
//! token digests (most of the bytes; [`crate::encoder`]). A lexical release never downloads
//! it. Lexical fragments and document shards come per query, only those its
//! words and its shown results need ([`fetch_parts`]).
//!
//! URLs are relative to the release's directory, `<target>/releases/<id>/`: the page's own URL
//! there, or the `<base>` of the same page at the target's root (searchbar-release's
//! `layout::root_page`). The manifest next to it is this page's own release, so a deploy that
//! swaps `current.json` never mixes two releases.

use crate::encoder::{self, Encoder, EncoderFiles};
use futures::future::try_join_all;
use js_sys::{Reflect, Uint8Array};
use searchbar_query::fetch::{describe, Fetched};
use searchbar_query::{Artifacts, Dense, Searcher, TokenRequest};
use searchbar_release::{Fetch, FileRef, Manifest, Want, MANIFEST_NAME, POINTER_NAME, TARGET_ROOT};
use std::ops::Range;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::{spawn_local, JsFuture};
use web_sys::{Cache, ReadableStreamDefaultReader, Request, RequestCache, RequestInit, Response};

use crate::cache;

/// `path` as an absolute URL, resolved as the page's fetches and the Cache API resolve it:
/// against the document's base URL, which is the release's directory on the root page too.
pub fn absolute(path: &str) -> Result<String, String> {
    resolve(path).map(|u| u.href())
}

/// [`absolute`], parsed.
pub fn resolve(path: &str) -> Result<web_sys::Url, String> {
    let base = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.base_uri().ok().flatten())
        .ok_or("the page has no base URL")?;
    web_sys::Url::new_with_base(path, &base).map_err(|e| format!("{path}: {}", describe(&e)))
}

/// One artifact being downloaded.
#[derive(Debug, Clone, PartialEq)]
pub struct Download {
    pub name: String,
    pub loaded: u64,
    pub total: u64,
}

impl Download {
    /// Every artifact fetched up front, records first ([`fetch_records`]'s order, then
    /// [`fetch_dense`]'s, then the encoder module's wasm).
    pub fn list(manifest: &Manifest) -> Vec<Download> {
        let module = encoder::module_files(manifest)
            .map(|(_, wasm)| wasm)
            .filter(|_| manifest.search.mode.uses_dense());
        manifest
            .record_files()
            .chain(dense_files(manifest))
            .chain(module)
            .map(|f| Download {
                name: f.path.rsplit('/').next().unwrap_or(&f.path).to_string(),
                loaded: 0,
                total: f.bytes,
            })
            .collect()
    }
}

/// What the dense half needs, where the mode reads a dense list: the index ([`Dense::load`]),
/// then the encoder's graph and tokenizer, and its token digests where its word embeddings are
/// rows (each query fetches its own rows: [`fetch_tokens`]).
fn dense_files(manifest: &Manifest) -> impl Iterator<Item = &FileRef> {
    let f = &manifest.files;
    let dense = manifest.search.mode.uses_dense();
    [&f.index, &f.encoder, &f.tokenizer]
        .into_iter()
        .chain(f.tokens.as_ref().map(|t| &t.digests))
        .filter(move |_| dense)
}

/// The manifest beside the page, and its bytes as served (the encoder module reads them too).
/// A release directory never changes once installed (its id is its content's), so the HTTP
/// cache may answer without asking the server again: a second visit saves a round trip.
pub async fn fetch_manifest() -> Result<(Manifest, Vec<u8>), String> {
    let bytes = fetch_bytes(MANIFEST_NAME, RequestCache::Default, |_| {})
        .await?
        .to_vec();
    let manifest = Manifest::from_json(&bytes, MANIFEST_NAME).map_err(|e| e.to_string())?;
    Ok((manifest, bytes))
}

/// Downloads `files` in parallel; `progress(i, loaded)` counts from `first` in
/// [`Download::list`]'s order. `kept`: through the page's cache ([`fetch_file`]); else
/// straight from the network, which the HTTP cache may answer ([`Kept::No`]).
async fn fetch_all<'a>(
    files: impl Iterator<Item = &'a FileRef>,
    first: usize,
    progress: impl Fn(usize, u64) + Clone,
    kept: Kept,
) -> Result<Vec<Uint8Array>, String> {
    let cache = match kept {
        Kept::Yes => cache::open().await,
        Kept::No => None,
    };
    let fetches = files.enumerate().map(|(i, file)| {
        let progress = progress.clone();
        let cache = cache.clone();
        async move {
            let report = move |n| progress(first + i, n);
            fetch_file(cache, file, report).await
        }
    });
    try_join_all(fetches).await
}

/// Whether a file goes through the page's cache. Roots and part table pages do not: they are
/// small, on the first result's path, and their names (their hashes) let the HTTP cache keep
/// them as well. The roots are preloaded beside the page's first module, so their bytes are
/// on their way whatever the page's cache holds: looking there first only delays the first
/// query, and storing them keeps the cache busy while that query looks up its own files
/// (15 ms measured on a 1,000,000-document release's first visit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kept {
    Yes,
    No,
}

/// One root of the release's manifest, not kept in the page's cache ([`Kept`]), for the page
/// to verify ([`Manifest::shard_table_root`]).
pub async fn fetch_root(file: &FileRef) -> Result<Vec<u8>, String> {
    Ok(fetch_file(None, file, |_| {}).await?.to_vec())
}

/// One content-addressed file: the page's verified copy where it has one ([`cache`]), else
/// from the network (the HTTP cache may serve it as is: it never changes), then kept. In JS
/// memory: the encoder's files go to the encoder's module without passing through this one.
async fn fetch_file(
    cache: Option<Cache>,
    file: &FileRef,
    mut progress: impl FnMut(u64),
) -> Result<Uint8Array, String> {
    if let Some(cache) = &cache {
        if let Some(bytes) = cache::read(cache, file).await {
            progress(u64::from(bytes.length()));
            return Ok(bytes);
        }
    }
    let bytes = fetch_bytes(&file.path, RequestCache::Default, progress).await?;
    if let Some(cache) = cache {
        // Checked and written in the background: nothing waits for the disk.
        spawn_local(cache::store(cache, file.clone(), bytes.clone()));
    }
    Ok(bytes)
}

/// The records stage, downloaded ([`fetch_records`]).
#[derive(Debug)]
pub struct Records {
    artifacts: Artifacts,
    /// The stemmer module's bytes, where the release has one ([`Manifest::stemmer`]).
    stemmer: Option<Vec<u8>>,
}

/// Downloads the records stage ([`Manifest::record_files`]). Verification is left to
/// [`open_records`].
pub async fn fetch_records(
    manifest: &Manifest,
    progress: impl Fn(usize, u64) + Clone,
) -> Result<Records, String> {
    let files: Vec<&FileRef> = manifest.record_files().collect();
    let bytes = fetch_all(files.iter().copied(), 0, progress, Kept::No).await?;
    let bytes_of = |file: Option<&FileRef>| {
        let at = files.iter().position(|f| Some(*f) == file)?;
        Some(bytes[at].to_vec())
    };
    let lexical = manifest.lexical();
    Ok(Records {
        artifacts: Artifacts {
            lexical_root: bytes_of(lexical.map(|l| &l.root)),
            lexical_table: bytes_of(lexical.and_then(|l| l.fragments.root())),
            ..Artifacts::default()
        },
        stemmer: bytes_of(manifest.stemmer().map(|(f, _)| f)),
    })
}

/// The dense stage, downloaded: the vector index for [`Dense::load`], and the encoder module
/// with its files for [`Encoder::open`].
#[derive(Debug)]
pub struct DenseParts {
    pub index: Artifacts,
    pub files: EncoderFiles,
    pub module: (JsValue, String),
}

/// Downloads the dense stage: the index, the encoder's files and its module (compiled as it
/// streams in), all at once. An index with external rows or lists fetches its candidates' records
/// and its probed lists per query ([`fetch_numbered`]).
pub async fn fetch_dense(
    manifest: &Manifest,
    progress: impl Fn(usize, u64) + Clone + 'static,
) -> Result<DenseParts, String> {
    let first = manifest.record_files().count();
    let module_at = first + dense_files(manifest).count();
    let module_progress = progress.clone();
    let files = fetch_all(dense_files(manifest), first, progress, Kept::Yes);
    let module = encoder::load_module(manifest, move |n| module_progress(module_at, n));
    let (files, module) = futures::future::try_join(files, module).await?;
    let mut files = files.into_iter();
    // The token rows earlier visits fetched ([`save_tokens`]).
    let saved_token_rows = match (cache::open().await, cache::saved_rows_key(manifest)) {
        (Some(cache), Some(key)) => cache::read_saved(&cache, &key).await,
        _ => None,
    };
    let mut next = || files.next().unwrap_or_default();
    Ok(DenseParts {
        index: Artifacts {
            index: next().to_vec(),
            ..Artifacts::default()
        },
        files: EncoderFiles {
            graph: next(),
            tokenizer: next(),
            token_digests: next(),
            saved_token_rows,
        },
        module,
    })
}

/// The lexical fragments or document shards a query needs (with, in a part table without
/// proofs, the pages that name them where those are not at hand), all in flight at once and
/// returned in the order asked (pages first); [`Searcher::insert_fragment`] and
/// [`Searcher::insert_shard`] verify each. A part whose entry is known is kept across visits
/// like the other files; one checked by its path to its page's tree root, or fetched with its
/// page, has no entry here, so it is left to the HTTP cache (its name, from its page's hash,
/// never changes), as are the pages ([`Kept`]). Nothing else waits for the page's cache.
pub async fn fetch_parts(files: Vec<Fetch>) -> Result<Vec<(Want, Vec<u8>)>, String> {
    let fetches = files.into_iter().map(|f| async move {
        let bytes = match (&f.entry, f.want) {
            (Some(entry), Want::Part(_)) => fetch_file(cache::open().await, entry, |_| {}).await?,
            _ => fetch_bytes(&f.path, RequestCache::Default, |_| {}).await?,
        };
        Ok::<_, String>((f.want, bytes.to_vec()))
    });
    try_join_all(fetches).await
}

/// The numbered byte ranges of `url` one query needs ([`searchbar_query::fetch::fetch_ranges`]):
/// the re-ranking records of a `RowRequest` (verified by [`Searcher::complete`]) or the
/// inverted lists of a `ListRequest` (verified by [`Searcher::insert_lists`]).
pub async fn fetch_numbered(
    url: &str,
    numbered: &[(u32, Range<u64>)],
) -> Result<Vec<(u32, Vec<u8>)>, String> {
    let ranges: Vec<_> = numbered.iter().map(|(_, r)| r.clone()).collect();
    let records = searchbar_query::fetch::fetch_ranges(url, &ranges).await?;
    Ok(numbered.iter().map(|(n, _)| *n).zip(records).collect())
}

/// The word-embedding rows one query needs ([`Encoder::token_request`]), each span by one
/// range request, all in flight at once; the encoder's module verifies every row.
/// A host that ignores range requests sends the whole file instead, once.
pub async fn fetch_tokens(request: &TokenRequest) -> Result<Fetched, String> {
    let ranges: Vec<_> = request.spans.iter().map(|s| s.bytes.clone()).collect();
    searchbar_query::fetch::fetch_ranges_or_whole(&request.url, &ranges).await
}

/// Keeps the token rows `encoder` has fetched so far for the next visit, in the background.
pub fn save_tokens(manifest: &Manifest, encoder: &Encoder) {
    let (Some(key), Some(saved)) = (cache::saved_rows_key(manifest), encoder.saved_token_rows())
    else {
        return;
    };
    spawn_local(async move {
        if let Some(cache) = cache::open().await {
            cache::store_saved(cache, key, saved).await;
        }
    });
}

/// Verifies and opens the records stage: the stemmer module first, which the lexical index
/// analyses words with ([`crate::stem`]).
pub async fn open_records(manifest: &Manifest, records: Records) -> Result<Searcher, String> {
    if let (Some((file, language)), Some(bytes)) = (manifest.stemmer(), &records.stemmer) {
        crate::stem::install(file, language, bytes).await?;
    }
    Searcher::records(manifest, &records.artifacts).map_err(|e| e.to_string())
}

/// Verifies and builds the dense half: the index here, the encoder in its module (which blocks
/// the main thread while tract optimizes the model).
pub fn open_dense(
    manifest: &Manifest,
    manifest_bytes: &[u8],
    parts: DenseParts,
) -> Result<(Dense, Encoder), String> {
    let dense = Dense::load(manifest, &parts.index).map_err(|e| e.to_string())?;
    let encoder = Encoder::open(parts.module, manifest_bytes, parts.files)?;
    Ok((dense, encoder))
}

/// The release [`searchbar_release::Pointer`] names now, or `None` when it cannot be read (for
/// example when the page is served outside a deploy target).
pub async fn live_release() -> Option<String> {
    let url = format!("{TARGET_ROOT}{POINTER_NAME}");
    let bytes = fetch_bytes(&url, RequestCache::NoStore, |_| {})
        .await
        .ok()?
        .to_vec();
    // Read only `release`, not the whole `Pointer`: this page must keep understanding pointers
    // that later pipeline versions write (the struct refuses unknown fields).
    let pointer: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    pointer.get("release")?.as_str().map(str::to_string)
}

/// Resolves after the browser has had a chance to paint what was rendered so far.
pub async fn next_paint() {
    if let Some(window) = web_sys::window() {
        let frame = js_sys::Promise::new(&mut |resolve, _| {
            let _ = window.request_animation_frame(&resolve);
        });
        let _ = JsFuture::from(frame).await;
    }
    gloo_timers::future::TimeoutFuture::new(0).await;
}

/// GETs `url` (relative to the page), reporting the bytes received so far after each chunk.
async fn fetch_bytes(
    url: &str,
    cache: RequestCache,
    mut progress: impl FnMut(u64),
) -> Result<Uint8Array, String> {
    let fail = |e: JsValue| format!("{url}: {}", describe(&e));
    let window = web_sys::window().ok_or("no window")?;
    let init = RequestInit::new();
    init.set_cache(cache);
    let request = Request::new_with_str_and_init(url, &init).map_err(fail)?;
    let response: Response = JsFuture::from(window.fetch_with_request(&request))
        .await
        .map_err(fail)?
        .unchecked_into();
    if !response.ok() {
        return Err(format!(
            "{url}: HTTP {} {}",
            response.status(),
            response.status_text()
        ));
    }
    let Some(body) = response.body() else {
        return Ok(Uint8Array::new_with_length(0));
    };
    let reader: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    // The chunks stay in JS memory; one copy joins them at the end.
    let mut chunks = Vec::new();
    let mut received = 0u32;
    loop {
        let chunk = JsFuture::from(reader.read()).await.map_err(fail)?;
        if Reflect::get(&chunk, &"done".into())
            .map_err(fail)?
            .is_truthy()
        {
            break;
        }
        let value: Uint8Array = Reflect::get(&chunk, &"value".into())
            .map_err(fail)?
            .unchecked_into();
        received += value.length();
        chunks.push(value);
        progress(u64::from(received));
    }
    let bytes = Uint8Array::new_with_length(received);
    let mut at = 0;
    for chunk in chunks {
        bytes.set(&chunk, at);
        at += chunk.length();
    }
    Ok(bytes)
}
