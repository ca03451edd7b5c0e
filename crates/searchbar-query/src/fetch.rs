//! HTTP range reads in the browser: how a page, or a benchmark standing in for one, fetches the
//! re-ranking records and the token rows a query needs from files that stay on the host.

use std::cell::RefCell;
use std::collections::HashSet;
use std::ops::Range;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Headers, Request, RequestInit, Response};

/// `url`'s bytes in each of `ranges`, in order: one range request each, all in flight at once
/// (a CDN serves each from its edge cache). Anything but `206 Partial Content` is an error: a
/// host without range support would send the whole file for every record.
pub async fn fetch_ranges(url: &str, ranges: &[Range<u64>]) -> Result<Vec<Vec<u8>>, String> {
    futures::future::try_join_all(ranges.iter().map(|r| fetch_range(url, r.clone()))).await
}

/// What a host sent for [`fetch_ranges_or_whole`].
#[derive(Debug)]
pub enum Fetched {
    /// Each range's bytes, in order.
    Ranges(Vec<Vec<u8>>),
    /// The whole file: the host ignores `Range`. In JS memory: a page hands it to its encoder's
    /// module, and its own memory, which never shrinks, need not hold megabytes for a moment.
    Whole(js_sys::Uint8Array),
}

thread_local! {
    /// The files whose host has answered a range request with its range.
    static RANGES_SERVED: RefCell<HashSet<String>> = RefCell::new(HashSet::new());
}

/// [`fetch_ranges`] for a file a page can also use whole (the token rows): until the host has
/// answered one range request with its range, the first range goes alone, and a `200 OK` to it
/// is the whole file (then nothing more is asked). A static host without range support then
/// costs one download of the file instead of failing every query.
pub async fn fetch_ranges_or_whole(url: &str, ranges: &[Range<u64>]) -> Result<Fetched, String> {
    let Some((first, rest)) = ranges.split_first() else {
        return Ok(Fetched::Ranges(Vec::new()));
    };
    if RANGES_SERVED.with_borrow(|s| s.contains(url)) {
        return fetch_ranges(url, ranges).await.map(Fetched::Ranges);
    }
    let (status, bytes) = get_range(url, first.clone(), true).await?;
    if status == 200 {
        return Ok(Fetched::Whole(bytes));
    }
    RANGES_SERVED.with_borrow_mut(|s| s.insert(url.to_string()));
    let mut parts = vec![bytes.to_vec()];
    parts.extend(fetch_ranges(url, rest).await?);
    Ok(Fetched::Ranges(parts))
}

async fn fetch_range(url: &str, range: Range<u64>) -> Result<Vec<u8>, String> {
    Ok(get_range(url, range, false).await?.1.to_vec())
}

/// One range request: the response's status (206, or 200 where `whole` allows the whole file)
/// and body. Any other status is an error, before the body is read.
async fn get_range(
    url: &str,
    range: Range<u64>,
    whole: bool,
) -> Result<(u16, js_sys::Uint8Array), String> {
    let fail = |e: JsValue| format!("{url}: {}", describe(&e));
    let headers = Headers::new().map_err(fail)?;
    let value = format!("bytes={}-{}", range.start, range.end.saturating_sub(1));
    headers.set("Range", &value).map_err(fail)?;
    let init = RequestInit::new();
    init.set_headers(&headers);
    let request = Request::new_with_str_and_init(url, &init).map_err(fail)?;
    let window = web_sys::window().ok_or("no window")?;
    let response: Response = JsFuture::from(window.fetch_with_request(&request))
        .await
        .map_err(fail)?
        .unchecked_into();
    let status = response.status();
    if status != 206 && !(whole && status == 200) {
        return Err(format!(
            "{url}: HTTP {status} to a range request (the host must support HTTP range requests)"
        ));
    }
    let body = JsFuture::from(response.array_buffer().map_err(fail)?)
        .await
        .map_err(fail)?;
    Ok((status, js_sys::Uint8Array::new(&body)))
}

/// A JS exception or rejection as text: an `Error`'s message, a string as it is.
pub fn describe(e: &JsValue) -> String {
    if let Some(err) = e.dyn_ref::<js_sys::Error>() {
        return String::from(err.message());
    }
    e.as_string().unwrap_or_else(|| format!("{e:?}"))
}
