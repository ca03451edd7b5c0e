//! HTTP range reads in the browser: how a page, or a benchmark standing in for one, fetches the
//! re-ranking records a query needs from a rows file that stays on the host.

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

async fn fetch_range(url: &str, range: Range<u64>) -> Result<Vec<u8>, String> {
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
    if response.status() != 206 {
        return Err(format!(
            "{url}: HTTP {} to a range request (the host must support HTTP range requests)",
            response.status()
        ));
    }
    let body = JsFuture::from(response.array_buffer().map_err(fail)?)
        .await
        .map_err(fail)?;
    Ok(js_sys::Uint8Array::new(&body).to_vec())
}

/// A JS exception or rejection as text: an `Error`'s message, a string as it is.
pub fn describe(e: &JsValue) -> String {
    if let Some(err) = e.dyn_ref::<js_sys::Error>() {
        return String::from(err.message());
    }
    e.as_string().unwrap_or_else(|| format!("{e:?}"))
}
