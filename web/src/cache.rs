//! The page's own store of release files, kept across visits in the Cache API.
//!
//! Every file a page downloads whole is content-addressed (its name carries its hash), so a
//! copy stays right for as long as a release names it: a second visit, or a new release that
//! keeps the same encoder, reads it from here instead of the network. The roots and the part
//! table pages are not kept here (`loader::Kept`: small, on the first result's path, and the
//! HTTP cache keeps them by name as well). The HTTP cache would
//! often do the same, but it may drop a 23 MB encoder whenever it likes and never says whether
//! what it returns is intact. A copy read back is checked against the manifest (size and
//! sha256, by the browser's own `crypto.subtle`), and one that does not match is deleted and
//! fetched again; only bytes that match are stored. Where the Cache API is missing (a page
//! that is not a secure context, some private modes) or fails, the page fetches as before.

use js_sys::{Array, Uint8Array};
use searchbar_release::{FileRef, Manifest, PartList};
use std::cell::RefCell;
use std::collections::HashSet;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Cache, Request, Response};

/// The cache's name. A change in how entries are stored takes a new name.
const NAME: &str = "searchbar-files-v1";

/// The most entries of paged kinds (document shards and lexical fragments) the cache keeps: a
/// few megabytes. They are kept across releases, so without a bound a page
/// opened over many releases of a large catalog would keep every part it ever fetched.
const KEPT_PARTS: usize = 2_000;

thread_local! {
    /// The cache once opened: every download and every query's fragments use the same one.
    static OPENED: RefCell<Option<Cache>> = const { RefCell::new(None) };
}

/// The page's cache, or `None` where there is none. Opened once per page.
pub async fn open() -> Option<Cache> {
    if let Some(cache) = OPENED.with_borrow(Clone::clone) {
        return Some(cache);
    }
    let storage = web_sys::window()?.caches().ok()?;
    let cache: Cache = JsFuture::from(storage.open(NAME))
        .await
        .ok()?
        .dyn_into()
        .ok()?;
    OPENED.set(Some(cache.clone()));
    Some(cache)
}

/// `file`'s bytes, if the cache holds a copy that matches the manifest. A copy that does not
/// is deleted, so the caller's fetch replaces it. Checked where the copy lies, in JS memory,
/// and left there: the caller copies into wasm what its module needs.
pub async fn read(cache: &Cache, file: &FileRef) -> Option<Uint8Array> {
    let hit = JsFuture::from(cache.match_with_str(&file.path))
        .await
        .ok()?;
    let response: Response = hit.dyn_into().ok()?;
    let body = JsFuture::from(response.array_buffer().ok()?).await.ok();
    if let Some(body) = body {
        let bytes = Uint8Array::new(&body);
        if matches(file, &bytes).await {
            return Some(bytes);
        }
    }
    web_sys::console::warn_1(
        &format!(
            "{}: the cached copy does not match: fetching it again",
            file.path
        )
        .into(),
    );
    let _ = JsFuture::from(cache.delete_with_str(&file.path)).await;
    None
}

/// Stores `bytes` as `file` if they match the manifest; failures (a full disk, a quota) only
/// mean the next visit fetches it again.
pub async fn store(cache: Cache, file: FileRef, bytes: Uint8Array) {
    if !matches(&file, &bytes).await {
        return;
    }
    if let Ok(response) = Response::new_with_opt_buffer_source(Some(&bytes)) {
        let _ = JsFuture::from(cache.put_with_str(&file.path, &response)).await;
    }
}

/// Where the page keeps the token rows it has fetched so far (`searchbar_query::QueryEncoder::
/// saved_token_rows`): under the rows file's own name, which every release of the same encoder
/// shares. What is read back is checked row by row against the digests, not here.
pub fn saved_rows_key(manifest: &Manifest) -> Option<String> {
    let tokens = manifest.files.tokens.as_ref()?;
    Some(format!("{}?saved", tokens.rows.path))
}

/// The bytes kept under `key`, if any (for the encoder's module, which checks each row).
pub async fn read_saved(cache: &Cache, key: &str) -> Option<Uint8Array> {
    let hit = JsFuture::from(cache.match_with_str(key)).await.ok()?;
    let response: Response = hit.dyn_into().ok()?;
    let body = JsFuture::from(response.array_buffer().ok()?).await.ok()?;
    Some(Uint8Array::new(&body))
}

/// Keeps `bytes` under `key`, replacing what was there; a failure only means the next visit
/// fetches those rows again.
pub async fn store_saved(cache: Cache, key: String, bytes: Uint8Array) {
    if let Ok(response) = Response::new_with_opt_buffer_source(Some(&bytes)) {
        let _ = JsFuture::from(cache.put_with_str(&key, &response)).await;
    }
}

/// Deletes every entry that `manifest` does not name: files of releases this page no longer
/// uses. (A page of another release, open in another tab, then fetches its files again.) The
/// parts of a paged list are named in table pages the page may not have read: entries of their
/// kind (`docs-…`) are kept, so unchanged shards and fragments stay across releases, up to
/// [`KEPT_PARTS`] of them, the most recently stored (the Cache API lists keys in the order they
/// were stored).
pub async fn prune(cache: &Cache, manifest: &Manifest) {
    let href = crate::loader::absolute;
    let files = &manifest.files;
    let keep: Result<HashSet<String>, String> = files
        .named()
        .filter(|f| !files.is_fetched_by_range(f))
        .map(|f| f.path.clone())
        .chain(saved_rows_key(manifest))
        .map(|path| href(&path))
        .collect();
    let paged: Result<Vec<String>, String> = std::iter::once(&files.docs)
        .chain(files.lexical.as_ref().map(|l| &l.fragments))
        .filter_map(|list| match list {
            PartList::Paged(table) => Some(href(&table.prefix())),
            PartList::Listed(_) => None,
        })
        .collect();
    // A name that cannot be resolved would leave its entry out of what is kept: then nothing
    // is deleted.
    let (Ok(keep), Ok(paged)) = (keep, paged) else {
        return;
    };
    let Ok(keys) = JsFuture::from(cache.keys()).await else {
        return;
    };
    let mut parts = Vec::new();
    for key in Array::from(&keys).iter() {
        let Ok(request) = key.dyn_into::<Request>() else {
            continue;
        };
        let url = request.url();
        if keep.contains(&url) {
            continue;
        }
        if paged.iter().any(|p| url.starts_with(p.as_str())) {
            parts.push(request);
        } else {
            let _ = JsFuture::from(cache.delete_with_request(&request)).await;
        }
    }
    let over = parts.len().saturating_sub(KEPT_PARTS);
    for request in &parts[..over] {
        let _ = JsFuture::from(cache.delete_with_request(request)).await;
    }
}

/// Whether `bytes` have `file`'s size and sha256.
async fn matches(file: &FileRef, bytes: &Uint8Array) -> bool {
    if u64::from(bytes.length()) != file.bytes {
        return false;
    }
    let Some(subtle) = web_sys::window()
        .and_then(|w| w.crypto().ok())
        .map(|c| c.subtle())
    else {
        return false;
    };
    let Ok(digest) = subtle.digest_with_str_and_buffer_source("SHA-256", bytes) else {
        return false;
    };
    let Ok(digest) = JsFuture::from(digest).await else {
        return false;
    };
    file.matches_sha256(&hex::encode(Uint8Array::new(&digest).to_vec()))
}
