//! Driving the search page in the browser tests: open it, type a query and read the ranked
//! ids back, and the CLI's answer to compare with.

use crate::webdriver::Browser;
use crate::{require_web_bundle, Project, Served};
use serde_json::{json, Value};
use std::sync::OnceLock;
use std::time::Duration;

/// A script returning the ids rendered for the query `arguments[0]`, or null until they are,
/// ranked as the manifest says (`data-stage` `complete`), or at the stage `arguments[1]` where
/// given (`words`: by words alone while the encoder loads).
pub const RESULTS_FOR: &str = "const r = document.querySelector('#results'); \
    return r && r.dataset.query === arguments[0] \
      && r.dataset.stage === (arguments[1] || 'complete') \
      ? Array.from(r.querySelectorAll('li.result')).map(li => li.dataset.id) : null;";

/// Opens the page at `url`, waits for the app to take the search box over (the box itself is
/// there from the first paint) and starts recording uncaught
/// errors (a trap in the wasm module shows up there; [`status`] reports them on failure).
pub fn open(b: &Browser, url: &str) {
    b.goto(url).unwrap();
    b.wait_for(
        "return document.querySelector('#q[data-app]')",
        json!([]),
        Duration::from_secs(30),
    )
    .unwrap();
    b.eval(
        "window.__errors = []; \
         window.addEventListener('error', e => window.__errors.push(String(e.message))); \
         window.addEventListener('unhandledrejection', e => window.__errors.push(String(e.reason))); \
         performance.setResourceTimingBufferSize(100000);",
        json!([]),
    )
    .unwrap();
}

/// Types `q` into the box and returns the ids of the results rendered for it.
pub fn search(b: &Browser, q: &str) -> Vec<String> {
    search_at(b, q, "complete")
}

/// [`search`], waiting for the results of `stage` (`complete` or `words`).
pub fn search_at(b: &Browser, q: &str, stage: &str) -> Vec<String> {
    let input = b.find("#q").unwrap();
    b.clear(&input).unwrap();
    b.type_into(&input, q).unwrap();
    let v = b
        .wait_for(RESULTS_FOR, json!([q, stage]), Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("query {q:?}: {e}; status: {:?}", status(b)));
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

/// The status line's state and text, and the uncaught errors so far.
pub fn status(b: &Browser) -> Value {
    b.eval(
        "const s = document.querySelector('#status'); \
         return s ? [s.dataset.state, s.textContent, window.__errors || []] : null;",
        json!([]),
    )
    .unwrap_or(Value::Null)
}

/// The ids `searchbar query` returns for `q` from the stage target.
pub fn native(p: &Project, q: &str) -> Vec<String> {
    native_with(p, q, &[])
}

/// [`native`] with more `searchbar query` arguments (such as `--words-only`).
pub fn native_with(p: &Project, q: &str, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["query", "--env", "stage", "--json"];
    args.extend_from_slice(extra);
    args.push(q);
    let out = p.ok(&args);
    let v: Value = serde_json::from_str(&out).unwrap();
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

/// The sample catalog with two rows of hostile input added, run through the whole pipeline to
/// `stage` and served there for the rest of the test process: the browser tests of one binary
/// share it. One added row's title is markup (it must show as text, never run); the other's
/// link is a script, which ingest quarantines so that it never ships (the page refuses such
/// links too: markup.rs's unit tests).
pub fn sample_release() -> &'static Served {
    static SERVED: OnceLock<Served> = OnceLock::new();
    SERVED.get_or_init(|| {
        require_web_bundle();
        // Extra configuration for benchmarks that compare settings (scripts/bench/web.sh).
        let extra = std::env::var("SEARCHBAR_SAMPLE_CONFIG").unwrap_or_default();
        let p = Project::sample(&extra);
        p.ok(&["ingest"]);
        p.sqlite()
            .execute(
                "INSERT INTO projects (id, title, description, learn, domain, url) VALUES \
                 ('p901-markup', '<img src=x onerror=\"window.__xss=1\"> Tide tables <b>bold</b>', \
                  'Tide tables for harbour pilots, rendered from harmonic constituents.', \
                  'tides', 'science', 'https://example.org/tides?a=1&b=\"2\"'), \
                 ('p902-script-link', 'Tide clock', 'A tide clock.', 'tides', 'science', \
                  'javascript:window.__xss=2')",
                [],
            )
            .unwrap();
        let out = p.run(&["run", "--env", "stage"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(
            stderr.contains("field url: link scheme `javascript:` is not allowed"),
            "{stderr}"
        );
        p.serve_for_process("stage")
    })
}

/// The page of the shared [`sample_release`]. `SEARCHBAR_PAGE_QUERY` (such as `?split=34,6`,
/// web/encoder/src/worker.rs) opens it with other settings, for comparing them in alternating runs.
pub fn sample_url() -> String {
    let page_query = std::env::var("SEARCHBAR_PAGE_QUERY").unwrap_or_default();
    format!("http://{}/{page_query}", sample_release().addr)
}

/// A fresh browser on [`sample_url`], the app ready.
pub fn open_sample() -> (Browser, &'static Served) {
    let url = sample_url();
    let b = Browser::start().unwrap();
    open(&b, &url);
    (b, sample_release())
}
