//! How fast the search bar answers and how responsive it stays, in headless Chromium, on the
//! release the browser tests share (`page::sample_release`). A test binary of its own, so that
//! no other test shares the machine with its bounds: the test checks that typing and a pasted
//! text never hold the page's main thread for long; the benchmark (ignored; run by
//! scripts/bench/web.sh) measures keystroke-to-results into target/e2e/browser-bench.json for
//! BENCHMARKS.md and, when `SEARCHBAR_WEB_PEERS` names a folder staged by
//! scripts/bench/web-peers.sh, the same queries embedded by transformers.js and onnxruntime-web in
//! the same browser session.

use searchbar_tests::page::{open, open_sample, sample_url, search, RESULTS_FOR};
use searchbar_tests::webdriver::Browser;
use searchbar_tests::{repo_root, sample_queries};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Serves the staged peer page from its own isolated static server, embeds
/// `texts` with both peers, and returns their `window.__peers` report.
fn run_peers(b: &Browser, staged: &std::path::Path, texts: &[&str], threads: usize) -> Value {
    assert!(
        staged.join("index.html").is_file(),
        "SEARCHBAR_WEB_PEERS={}: not a folder staged by scripts/bench/web-peers.sh",
        staged.display()
    );
    let dest = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("cp")
        .arg("-rL")
        .arg(format!("{}/.", staged.display()))
        .arg(dest.path())
        .status()
        .unwrap();
    assert!(status.success(), "copying the peer page");
    let unique: std::collections::BTreeSet<&str> = texts.iter().copied().collect();
    std::fs::write(dest.path().join("queries.json"), json!(unique).to_string()).unwrap();
    // Its own static server, cross-origin isolated as `searchbar serve` makes our page (which
    // serves nothing but releases).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let mut server = std::process::Command::new("python3")
        .arg(searchbar_tests::repo_root().join("bench/web-peers/serve.py"))
        .arg(port.to_string())
        .arg(dest.path())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("python3 for bench/web-peers/serve.py");
    let url = format!("http://127.0.0.1:{port}/");
    let started = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "peer server did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    b.goto(&format!("{url}index.html?threads={threads}"))
        .unwrap();
    let state = b.wait_for(
        "const s = document.body && document.body.dataset.state; \
         return s === 'done' || s === 'error' ? s : null;",
        json!([]),
        Duration::from_secs(900),
    );
    let peers = b.eval("return window.__peers", json!([]));
    let _ = server.kill();
    let _ = server.wait();
    let (state, peers) = (state.unwrap(), peers.unwrap());
    assert_eq!(state, "done", "peer page failed: {peers}");
    eprintln!("browser: peers {peers}");
    peers
}

/// (process, thread) to (name, nanoseconds run, nanoseconds waited to run).
type Threads = BTreeMap<(String, String), (String, u64, u64)>;

/// Every thread of the browser's and the driver's processes, from `/proc/*/task/*/schedstat`.
fn thread_times() -> Threads {
    let mut out = BTreeMap::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return out;
    };
    for p in procs.flatten() {
        let comm = std::fs::read_to_string(p.path().join("comm")).unwrap_or_default();
        if !comm.starts_with("chrom") {
            continue;
        }
        let Ok(tasks) = std::fs::read_dir(p.path().join("task")) else {
            continue;
        };
        for t in tasks.flatten() {
            let name = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
            let stat = std::fs::read_to_string(t.path().join("schedstat")).unwrap_or_default();
            let mut f = stat
                .split_whitespace()
                .map(|v| v.parse::<u64>().unwrap_or(0));
            let (run, wait) = (f.next().unwrap_or(0), f.next().unwrap_or(0));
            let key = (
                p.file_name().to_string_lossy().into_owned(),
                t.file_name().to_string_lossy().into_owned(),
            );
            out.insert(key, (format!("{}/{}", comm.trim(), name.trim()), run, wait));
        }
    }
    out
}

/// Each thread's run and wait time between two [`thread_times`], in nanoseconds.
fn thread_deltas(before: &Threads, after: &Threads) -> Threads {
    after
        .iter()
        .map(|(key, (name, run, wait))| {
            let (r0, w0) = before.get(key).map_or((0, 0), |b| (b.1, b.2));
            let delta = (
                name.clone(),
                run.saturating_sub(r0),
                wait.saturating_sub(w0),
            );
            (key.clone(), delta)
        })
        .collect()
}

/// Adds one window's [`thread_deltas`] to `total`.
fn add_deltas(total: &mut Threads, window: Threads) {
    for (key, (name, run, wait)) in window {
        let t = total.entry(key).or_insert((name, 0, 0));
        t.1 += run;
        t.2 += wait;
    }
}

/// The threads that ran longest in `deltas` ([`thread_deltas`]), with their run and wait
/// times in milliseconds: where the two cores went while the page searched.
fn busiest_threads(deltas: &Threads) -> Value {
    let ms = |ns: u64| ns as f64 / 1e6;
    let mut rows: Vec<(String, f64, f64)> = deltas
        .iter()
        .map(|(key, (name, run, wait))| (format!("{name} {}", key.0), ms(*run), ms(*wait)))
        .filter(|r| r.1 >= 1.0)
        .collect();
    rows.sort_by(|a, b| b.1.total_cmp(&a.1));
    json!(rows
        .into_iter()
        .take(14)
        .map(|(n, r, w)| json!([n, r.round(), w.round()]))
        .collect::<Vec<_>>())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Waits until the page's matmul helper worker has started (or failed to), so what is
/// measured is the page as users get it. The page starts it once the encoder has loaded.
fn wait_for_helper(b: &Browser) -> Value {
    b.wait_for(
        "const h = window.__searchbar.helper; \
         return h === 'starting' ? null : [self.crossOriginIsolated, h];",
        json!([]),
        Duration::from_secs(60),
    )
    .unwrap()
}

/// How long the main thread was held while a sentence is typed key by key and searched as it
/// grows, and while a pasted 5,000-character text is embedded: `(typing, paste)`, each
/// `[longest key wait, longest task, longest script, the worst frame's make-up]` in ms.
fn responsiveness(b: &Browser) -> (Value, Value) {
    // How long each key waited for the main thread (Event Timing:
    // processingStart - startTime) while a sentence is typed key by key and searched as it
    // grows, and the longest tasks (Long Tasks API) then and for a pasted 5,000-character text.
    let observe = "window.__events = []; window.__long = []; \
        window.__eo = new PerformanceObserver(l => window.__events.push(...l.getEntries() \
          .map(e => e.processingStart - e.startTime))); \
        window.__eo.observe({type: 'event', durationThreshold: 16}); \
        window.__lo = new PerformanceObserver(l => window.__long.push(...l.getEntries() \
          .map(e => e.duration))); \
        window.__lo.observe({type: 'longtask'}); \
        window.__frames = []; \
        window.__fo = new PerformanceObserver(l => window.__frames.push(...l.getEntries())); \
        window.__fo.observe({type: 'long-animation-frame'}); return true;";
    // [longest key wait, longest task, longest script (Long Animation Frames: our code's own
    // share of a task), and the worst frame's make-up for the log].
    let collect = "const f = a => a.reduce((m, x) => Math.max(m, x), 0); \
        window.__eo.takeRecords().forEach(e => window.__events.push(e.processingStart - e.startTime)); \
        window.__lo.takeRecords().forEach(e => window.__long.push(e.duration)); \
        window.__fo.takeRecords().forEach(e => window.__frames.push(e)); \
        const scripts = window.__frames.flatMap(e => e.scripts.map(s => s.duration)); \
        const worst = window.__frames.sort((a, b) => b.duration - a.duration)[0]; \
        const r = [f(window.__events), f(window.__long), f(scripts), worst ? \
          `frame ${Math.round(worst.duration)} ms, scripts: ` + worst.scripts.map(s => \
            `${s.invoker} ${Math.round(s.duration)} ms`).join(', ') : 'no long frame']; \
        window.__eo.disconnect(); window.__lo.disconnect(); window.__fo.disconnect(); return r;";
    let sentence = "how can I measure the air quality in my classroom with a cheap sensor";
    let input = b.find("#q").unwrap();
    b.clear(&input).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    b.eval(observe, json!([])).unwrap();
    b.type_into(&input, sentence).unwrap();
    b.wait_for(RESULTS_FOR, json!([sentence]), Duration::from_secs(60))
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let typing = b.eval(collect, json!([])).unwrap();
    let long_text = "sensor network ".repeat(334);
    b.clear(&input).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    b.eval(observe, json!([])).unwrap();
    // One input event with the whole text, as a paste gives.
    b.eval(
        "const q = document.querySelector('#q'); q.value = arguments[0]; \
         q.dispatchEvent(new InputEvent('input', {bubbles: true})); return true;",
        json!([long_text]),
    )
    .unwrap();
    b.wait_for(RESULTS_FOR, json!([long_text]), Duration::from_secs(60))
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let paste = b.eval(collect, json!([])).unwrap();
    (typing, paste)
}

#[test]
fn typing_and_a_pasted_text_keep_the_main_thread_responsive() {
    let (b, _) = open_sample();
    // A few searches first, as a visitor's page has had by the time they type a sentence (the
    // first also waits for the encoder, after which the helper worker starts).
    for (_, text) in sample_queries().iter().take(4) {
        search(&b, text);
    }
    assert_eq!(wait_for_helper(&b), json!([true, "ready"]));
    let (typing, paste) = responsiveness(&b);
    let max_key_wait = typing[0].as_f64().unwrap();
    let typing_script = typing[2].as_f64().unwrap();
    eprintln!("browser: typing {typing}, paste {paste}");
    // A key's wait counts everything that held the renderer's main thread, the test's own
    // harness included: on a 2-core machine chromedriver and the browser process (which runs
    // at a higher priority) take about 70 % of a core while WebDriver types, and the main
    // thread then sat runnable but descheduled for up to 150 ms at a time (its schedstat). So
    // waits of 120-250 ms were measured on such a machine with no script over 40 ms. The
    // bounds still fail on a freeze such as a long text's embedding on every key (about
    // 400 ms on a fast machine, 660 ms on a slow one), and the script bound on our own code.
    assert!(
        max_key_wait < 300.0,
        "a key waited {max_key_wait:.0} ms for the main thread while typing"
    );
    assert!(
        typing_script < 100.0,
        "one of the page's scripts ran {typing_script:.0} ms while a sentence was typed"
    );
    // The page embeds in slices budgeted to 30 ms, a node that is predicted not to fit
    // starting a slice of its own: a long text must not make one long task. A node is not cut,
    // and a 256-token feed-forward matmul alone took 57-106 ms on a slow 2-core machine (the
    // page waits for the helper worker's share, which the harness's threads preempt); the
    // bound fails on the whole embedding in one task (393 ms on a fast machine).
    let paste_longest = paste[1].as_f64().unwrap();
    assert!(
        paste_longest < 150.0,
        "embedding a pasted 5,000-character text held the main thread for {paste_longest:.0} ms"
    );
}

#[test]
#[ignore = "benchmark: scripts/bench/web.sh runs it"]
fn keystroke_to_results() {
    let url = sample_url();
    let b = Browser::start().unwrap();
    let opened = Instant::now();
    open(&b, &url);
    let first = search(&b, "monitor air quality at home");
    let first_result_s = opened.elapsed().as_secs_f64();
    assert!(!first.is_empty());
    let wasm_memory_mb = |b: &Browser| {
        b.eval("return window.__searchbar.wasmMemoryBytes", json!([]))
            .unwrap()
            .as_f64()
            .map(|bytes| bytes / 1e6)
    };
    let memory_after_first_query = wasm_memory_mb(&b);
    assert_eq!(wait_for_helper(&b), json!([true, "ready"]));
    let queries = sample_queries();
    // Keystroke to rendered results, and embedding + search alone, as the page measures them
    // (after the first query).
    let (mut ms, mut search_ms, mut render_ms, mut embed_ms) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut started_by = std::collections::BTreeMap::<String, usize>::new();
    let texts: Vec<&str> = queries
        .iter()
        .cycle()
        .skip(12)
        .take(40)
        .map(|(_, t)| t.as_str())
        .collect();
    // The helper's counters (`window.__searchbar`'s, named here as the bench JSON names
    // them) and the threads' times, summed over the measured keys alone (from just before the
    // key to the results, the harness's polling included).
    const HELPER_FIELDS: [(&str, &str); 10] = [
        ("worker_panels", "helperPanels"),
        ("page_claimed_panels", "pagePanels"),
        ("page_wait_ms", "helperWaitMs"),
        ("page_waits", "helperWaits"),
        ("worker_busy_ms", "workerBusyMs"),
        ("split_matmuls", "splitMatmuls"),
        ("page_offer_ms", "splitOfferMs"),
        ("page_own_panels_ms", "splitOwnMs"),
        ("page_claimed_panels_ms", "splitClaimedMs"),
        ("page_worker_chunks_ms", "splitTheirsMs"),
    ];
    let helper_script = format!(
        "const s = window.__searchbar; return [{}];",
        HELPER_FIELDS
            .map(|(_, field)| format!("s.{field}"))
            .join(", ")
    );
    let mut helper_in_keys = [0.0f64; HELPER_FIELDS.len()];
    // Each row's document, id, index, selection and classes: after a keystroke the rows come
    // out numbered in order and unselected.
    const ROWS: &str = "return Array.from(document.querySelectorAll('#results li')).map(li => \
        [li.dataset.id, li.id, li.dataset.index, li.getAttribute('aria-selected'), li.className]);";
    let mut in_keys = BTreeMap::new();
    // Sampled CPU profiles of the page's main thread, one per measured key (from just before
    // the key to its results), for finding where a keystroke's time goes: a JSON array of
    // DevTools `.cpuprofile` objects.
    let profile = std::env::var_os("SEARCHBAR_BROWSER_PROFILE");
    let mut profiles = Vec::new();
    if profile.is_some() {
        b.cdp("Profiler.enable", json!({})).unwrap();
        b.cdp("Profiler.setSamplingInterval", json!({ "interval": 25 }))
            .unwrap();
    }
    let threads_before = thread_times();
    for text in &texts {
        // One keystroke after a pause, as a person types: all but the last character first.
        let cut = text.char_indices().last().map_or(0, |(i, _)| i);
        if cut > 0 {
            search(&b, &text[..cut]);
        }
        let input = b.find("#q").unwrap();
        let helper_before = b.eval(&helper_script, json!([])).unwrap();
        if profile.is_some() {
            b.cdp("Profiler.start", json!({})).unwrap();
        }
        let key_before = thread_times();
        b.type_into(&input, &text[cut..]).unwrap();
        b.wait_for(RESULTS_FOR, json!([text]), Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("query {text:?}: {e}"));
        if profile.is_some() {
            profiles.push(b.cdp("Profiler.stop", json!({})).unwrap()["profile"].take());
        }
        add_deltas(&mut in_keys, thread_deltas(&key_before, &thread_times()));
        let helper_after = b.eval(&helper_script, json!([])).unwrap();
        let rows = b.eval(ROWS, json!([])).unwrap();
        for (i, row) in rows.as_array().unwrap().iter().enumerate() {
            let want = json!([format!("result-{i}"), i.to_string(), "false", "result"]);
            let got = json!(row.as_array().unwrap()[1..5]);
            assert_eq!(got, want, "row {i} for {text:?}: {row}");
        }
        for (i, sum) in helper_in_keys.iter_mut().enumerate() {
            *sum +=
                helper_after[i].as_f64().unwrap_or(0.0) - helper_before[i].as_f64().unwrap_or(0.0);
        }
        let v = b
            .eval(
                "const r = document.querySelector('#results'); \
                 return [parseFloat(r.dataset.ms), parseFloat(r.dataset.searchMs), \
                   r.dataset.startedBy, parseFloat(r.dataset.renderMs), \
                   parseFloat(r.dataset.embedMs)]",
                json!([]),
            )
            .unwrap();
        ms.push(v[0].as_f64().unwrap());
        search_ms.push(v[1].as_f64().unwrap());
        render_ms.push(v[3].as_f64().unwrap());
        embed_ms.push(v[4].as_f64().unwrap());
        *started_by
            .entry(v[2].as_str().unwrap_or("?").to_string())
            .or_default() += 1;
    }
    let threads = busiest_threads(&thread_deltas(&threads_before, &thread_times()));
    // The same keys again: now every token row they need is at hand, so none waits for a range
    // request (the first pass fetched them, one round trip per key that brought a new token).
    let mut at_hand_ms = Vec::new();
    for text in &texts {
        let cut = text.char_indices().last().map_or(0, |(i, _)| i);
        if cut > 0 {
            search(&b, &text[..cut]);
        }
        let input = b.find("#q").unwrap();
        b.type_into(&input, &text[cut..]).unwrap();
        b.wait_for(RESULTS_FOR, json!([text]), Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("query {text:?}: {e}"));
        let v = b
            .eval(
                "return parseFloat(document.querySelector('#results').dataset.ms)",
                json!([]),
            )
            .unwrap();
        at_hand_ms.push(v.as_f64().unwrap());
    }
    if let Some(path) = &profile {
        std::fs::write(path, json!(profiles).to_string()).unwrap();
        eprintln!("browser: CPU profiles of the measured keys in {path:?}");
    }
    let in_keys = busiest_threads(&in_keys);
    eprintln!("browser: threads during the measured keys (run ms, waiting-to-run ms): {in_keys}");
    let helper_in_keys: Value = HELPER_FIELDS
        .iter()
        .map(|(name, _)| name)
        .zip(helper_in_keys)
        .map(|(name, sum)| (name.to_string(), json!((sum * 1000.0).round() / 1000.0)))
        .collect();
    eprintln!("browser: helper during the measured keys: {helper_in_keys}");
    eprintln!("browser: threads during the 40 queries (run ms, waiting-to-run ms): {threads}");
    let shares = b
        .eval(
            "const s = window.__searchbar; \
             return [s.helper, s.helperPanels, s.pagePanels, s.helperMemoryBytes / 1e6, \
               {pageWaitMs: s.helperWaitMs, pageWaits: s.helperWaits, \
                workerBusyMs: s.workerBusyMs, workerOffersSeen: s.workerSeen}]",
            json!([]),
        )
        .unwrap();
    eprintln!("browser: helper {shares}");
    assert!(
        shares[1].as_f64().unwrap_or(0.0) > 0.0,
        "the worker computed no part of 40 queries' matmuls: {shares}"
    );
    let (typing, paste) = responsiveness(&b);
    let max_key_wait = typing[0].as_f64().unwrap();
    let out_dir = repo_root().join("target/e2e");
    std::fs::create_dir_all(&out_dir).unwrap();
    let mut bench = json!({
        "typing_max_key_wait_ms": max_key_wait,
        "typing_longest_task_ms": typing[1],
        "typing_longest_script_ms": typing[2],
        "paste_5000_chars_longest_task_ms": paste[1],
        "queries": ms.len(),
        "keystroke_to_results_ms_median": median(ms.clone()),
        "keystroke_to_results_ms_max": ms.iter().cloned().fold(0.0, f64::max),
        // The same 40 keys again, with their token rows at hand (no range request).
        "keystroke_to_results_rows_at_hand_ms_median": median(at_hand_ms),
        "embed_and_search_ms_median": median(search_ms),
        // The embedding alone (tokenizing included), without the index search.
        "embed_ms_median": median(embed_ms),
        // From the search's end to the rendered list (ten highlighted rows and their ARIA state).
        "render_ms_median": median(render_ms),
        // How each measured search started: "input" (in the keystroke's own event), "task"
        // (posted behind queued input) or "timer" (the throttle).
        "searches_started_by": started_by,
        "page_open_to_first_result_s": first_result_s,
        "wasm_memory_mb_after_first_query": memory_after_first_query,
        "wasm_memory_mb_at_end": wasm_memory_mb(&b),
        // The matmul helper after the 40 measured queries: its state, the matmul panels (8
        // columns each) it computed and the page claimed back from it, its wasm memory (MB), and
        // where the time went since the page opened: the page's waits for the worker's chunks,
        // the worker's computing, and the offers it looked at.
        "helper": shares,
        // Where the two cores went during the 40 queries: the busiest threads of the browser's
        // and the driver's processes, [name pid, ms run, ms waited to run].
        "threads_during_queries": threads,
        // The same two accounts summed over the 40 measured keys alone (from just before each
        // key to its results): the helper's, where the page's split matmuls spent their time
        // (offering = quantizing and posting the rows; the worker's chunks = waiting for and
        // reading them), and the threads'.
        "helper_during_measured_keys": helper_in_keys,
        "threads_during_measured_keys": in_keys,
    });
    match std::env::var_os("SEARCHBAR_WEB_PEERS") {
        Some(dir) => {
            // One thread is ORT's default on this 2-core machine; two is what our page uses
            // (its matmul helper), measured as well for a like-for-like ratio.
            let ours = bench["keystroke_to_results_ms_median"].as_f64().unwrap();
            let at_hand = bench["keystroke_to_results_rows_at_hand_ms_median"]
                .as_f64()
                .unwrap();
            for (threads, suffix) in [(1, ""), (2, "_2_threads")] {
                let peers = run_peers(&b, dir.as_ref(), &texts, threads);
                for peer in ["transformers_js", "onnxruntime_web"] {
                    let theirs = peers[peer]["median_ms"].as_f64().unwrap();
                    bench[format!("{peer}{suffix}_embed_ms_median")] = json!(theirs);
                    bench[format!("keystroke_to_results_vs_{peer}{suffix}")] = json!(ours / theirs);
                    bench[format!("keystroke_to_results_rows_at_hand_vs_{peer}{suffix}")] =
                        json!(at_hand / theirs);
                }
                bench[format!("peers{suffix}")] = peers;
            }
        }
        None => eprintln!("browser: SEARCHBAR_WEB_PEERS not set: peers not measured"),
    }
    eprintln!("browser benchmark: {bench}");
    std::fs::write(out_dir.join("browser-bench.json"), bench.to_string()).unwrap();
}
