//! Downloads this page's release (manifest, then the artifacts with progress, in two stages) and
//! polls the live-release pointer.
//!
//! The lexical root comes first: with it a hybrid or lexical release answers by words
//! ([`Searcher::records`]). The dense half (encoder, tokenizer, vector index: most of the
//! bytes) follows and is attached when it is ready ([`Dense`]); a lexical release never
//! downloads it. Lexical fragments and document shards come per query, only those its
//! words and its shown results need ([`fetch_parts`]).
//!
//! URLs are relative to the page, which is `<target>/releases/<id>/`: the manifest next to it is
//! this page's own release, so a deploy that swaps `current.json` never mixes two releases.

use futures::future::try_join_all;
use js_sys::{Reflect, Uint8Array};
use searchbar_query::fetch::{describe, Fetched};
use searchbar_query::{Artifacts, Dense, RowRequest, Searcher, TokenRequest};
use searchbar_release::{
    FileRef, LexicalFiles, Manifest, MANIFEST_NAME, POINTER_NAME, TARGET_ROOT,
};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::{spawn_local, JsFuture};
use web_sys::{Cache, ReadableStreamDefaultReader, Request, RequestCache, RequestInit, Response};

use crate::cache;

/// One artifact being downloaded.
#[derive(Debug, Clone, PartialEq)]
pub struct Download {
    pub name: String,
    pub loaded: u64,
    pub total: u64,
}

impl Download {
    /// Every artifact fetched up front, records first ([`fetch_records`]'s order, then
    /// [`fetch_dense`]'s).
    pub fn list(manifest: &Manifest) -> Vec<Download> {
        record_files(manifest)
            .chain(dense_files(manifest))
            .map(|f| Download {
                name: f.path.rsplit('/').next().unwrap_or(&f.path).to_string(),
                loaded: 0,
                total: f.bytes,
            })
            .collect()
    }
}

/// The lexical index, where the mode reads it.
fn lexical(manifest: &Manifest) -> Option<&LexicalFiles> {
    manifest
        .files
        .lexical
        .as_ref()
        .filter(|_| manifest.search.mode.uses_lexical())
}

/// What [`Searcher::records`] needs up front: the lexical root where the mode reads it.
fn record_files(manifest: &Manifest) -> impl Iterator<Item = &FileRef> {
    lexical(manifest).map(|l| &l.root).into_iter()
}

/// What [`Dense::load`] needs, where the mode reads a dense list: encoder, tokenizer, index,
/// and the token digests where the encoder's word embeddings are rows (each query fetches its
/// own rows: [`fetch_tokens`]).
fn dense_files(manifest: &Manifest) -> impl Iterator<Item = &FileRef> {
    let f = &manifest.files;
    let dense = manifest.search.mode.uses_dense();
    [&f.encoder, &f.tokenizer, &f.index]
        .into_iter()
        .chain(f.tokens.as_ref().map(|t| &t.digests))
        .filter(move |_| dense)
}

/// The manifest beside the page. A release directory never changes once installed (its id is
/// its content's), so the HTTP cache may answer without asking the server again: a second
/// visit saves a round trip.
pub async fn fetch_manifest() -> Result<Manifest, String> {
    let bytes = fetch_bytes(MANIFEST_NAME, RequestCache::Default, |_| {}).await?;
    Manifest::from_json(&bytes, MANIFEST_NAME).map_err(|e| e.to_string())
}

/// Downloads `files` in parallel; `progress(i, loaded)` counts from `first` in
/// [`Download::list`]'s order.
async fn fetch_all<'a>(
    files: impl Iterator<Item = &'a FileRef>,
    first: usize,
    progress: impl Fn(usize, u64) + Clone,
) -> Result<Vec<Vec<u8>>, String> {
    let cache = cache::open().await;
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

/// One content-addressed file: the page's verified copy where it has one ([`cache`]), else
/// from the network (the HTTP cache may serve it as is: it never changes), then kept.
async fn fetch_file(
    cache: Option<Cache>,
    file: &FileRef,
    mut progress: impl FnMut(u64),
) -> Result<Vec<u8>, String> {
    if let Some(cache) = &cache {
        if let Some(bytes) = cache::read(cache, file).await {
            progress(bytes.len() as u64);
            return Ok(bytes);
        }
    }
    let bytes = fetch_bytes(&file.path, RequestCache::Default, progress).await?;
    if let Some(cache) = cache {
        // Checked and written in the background: nothing waits for the disk.
        spawn_local(cache::store(
            cache,
            file.clone(),
            Uint8Array::from(&bytes[..]),
        ));
    }
    Ok(bytes)
}

/// Downloads the records stage (the lexical root, where the mode reads one) into
/// `artifacts`. Verification is left to [`Searcher::records`], which checks it against the
/// manifest.
pub async fn fetch_records(
    manifest: &Manifest,
    progress: impl Fn(usize, u64) + Clone,
) -> Result<Artifacts, String> {
    let mut bytes = fetch_all(record_files(manifest), 0, progress).await?;
    Ok(Artifacts {
        lexical_root: bytes.pop(),
        ..Artifacts::default()
    })
}

/// Downloads the dense stage (encoder, tokenizer, index) into a fresh [`Artifacts`], for
/// [`Dense::load`]. An index with external rows fetches its candidates' records per query
/// ([`fetch_rows`]).
pub async fn fetch_dense(
    manifest: &Manifest,
    progress: impl Fn(usize, u64) + Clone,
) -> Result<Artifacts, String> {
    let first = record_files(manifest).count();
    let mut bytes = fetch_all(dense_files(manifest), first, progress)
        .await?
        .into_iter();
    // The token rows earlier visits fetched ([`save_tokens`]).
    let saved_token_rows = match (cache::open().await, cache::saved_rows_key(manifest)) {
        (Some(cache), Some(key)) => cache::read_saved(&cache, &key).await,
        _ => None,
    };
    Ok(Artifacts {
        encoder: bytes.next().unwrap_or_default(),
        tokenizer: bytes.next().unwrap_or_default(),
        index: bytes.next().unwrap_or_default(),
        token_digests: bytes.next().unwrap_or_default(),
        saved_token_rows,
        ..Artifacts::default()
    })
}

/// The lexical fragments or document shards a query needs (number, manifest entry), all in
/// flight at once, kept across visits like the other files; [`Searcher::insert_fragment`]
/// and [`Searcher::insert_shard`] verify each.
pub async fn fetch_parts(files: Vec<(usize, FileRef)>) -> Result<Vec<(usize, Vec<u8>)>, String> {
    let cache = cache::open().await;
    let fetches = files.into_iter().map(|(n, file)| {
        let cache = cache.clone();
        async move {
            let bytes = fetch_file(cache, &file, |_| {}).await?;
            Ok::<_, String>((n, bytes))
        }
    });
    try_join_all(fetches).await
}

/// The re-ranking records one query needs ([`searchbar_query::fetch::fetch_ranges`]);
/// [`Searcher::complete`] verifies every record.
pub async fn fetch_rows(request: &RowRequest) -> Result<Vec<(u32, Vec<u8>)>, String> {
    let ranges: Vec<_> = request.ranges.iter().map(|(_, r)| r.clone()).collect();
    let records = searchbar_query::fetch::fetch_ranges(&request.url, &ranges).await?;
    Ok(request
        .ranges
        .iter()
        .map(|(doc, _)| *doc)
        .zip(records)
        .collect())
}

/// The word-embedding rows one query needs ([`Searcher::token_request`]), each span by one
/// range request, all in flight at once; [`Searcher::insert_token_rows`] verifies every row.
/// A host that ignores range requests sends the whole file instead, once.
pub async fn fetch_tokens(request: &TokenRequest) -> Result<Fetched, String> {
    let ranges: Vec<_> = request.spans.iter().map(|(_, r)| r.clone()).collect();
    searchbar_query::fetch::fetch_ranges_or_whole(&request.url, &ranges).await
}

/// Keeps the token rows `searcher` has fetched so far for the next visit, in the background.
pub fn save_tokens(manifest: &Manifest, searcher: &Searcher) {
    let (Some(key), Some(saved)) = (cache::saved_rows_key(manifest), searcher.saved_token_rows())
    else {
        return;
    };
    spawn_local(async move {
        if let Some(cache) = cache::open().await {
            cache::store_saved(cache, key, saved).await;
        }
    });
}

/// Verifies and opens the records stage.
pub fn open_records(manifest: &Manifest, artifacts: &Artifacts) -> Result<Searcher, String> {
    Searcher::records(manifest, artifacts).map_err(|e| e.to_string())
}

/// Verifies and builds the dense half; blocks the main thread while tract optimizes the model.
pub fn open_dense(manifest: &Manifest, artifacts: &Artifacts) -> Result<Dense, String> {
    Dense::load(manifest, artifacts, 1).map_err(|e| e.to_string())
}

/// The release [`searchbar_release::Pointer`] names now, or `None` when it cannot be read (for
/// example when the page is served outside a deploy target).
pub async fn live_release() -> Option<String> {
    let url = format!("{TARGET_ROOT}{POINTER_NAME}");
    let bytes = fetch_bytes(&url, RequestCache::NoStore, |_| {})
        .await
        .ok()?;
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
) -> Result<Vec<u8>, String> {
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
        return Ok(Vec::new());
    };
    let reader: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    let mut bytes = Vec::new();
    loop {
        let chunk = JsFuture::from(reader.read()).await.map_err(fail)?;
        if Reflect::get(&chunk, &"done".into())
            .map_err(fail)?
            .is_truthy()
        {
            return Ok(bytes);
        }
        let value: Uint8Array = Reflect::get(&chunk, &"value".into())
            .map_err(fail)?
            .unchecked_into();
        let start = bytes.len();
        bytes.resize(start + value.length() as usize, 0);
        value.copy_to(&mut bytes[start..]);
        progress(bytes.len() as u64);
    }
}
