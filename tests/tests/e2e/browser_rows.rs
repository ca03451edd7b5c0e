//! A release whose IVF-PQ index keeps its re-ranking vectors in a separate rows file: the page
//! downloads only the compact index, fetches each query's candidates' records with HTTP range
//! requests from `searchbar serve`, verifies each against the index and ranks exactly like the
//! CLI (which reads the same records from disk). The encoder's word embeddings come the same
//! way: the rows of each query's tokens, each checked against its digest. Served without the
//! cross-origin isolation headers, as a static host that cannot set them, so the page runs on
//! one core (no matmul helper worker): the browser test covers the worker. A test binary of its
//! own, so it never shares the machine with the timing-sensitive browser test.

use searchbar_tests::page::{native, open, search};
use searchbar_tests::webdriver::Browser;
use searchbar_tests::{require_web_bundle, sample_queries, Project};
use serde_json::json;

#[test]
fn external_rows_are_fetched_by_range_and_rank_like_the_cli() {
    require_web_bundle();
    let p = Project::sample(
        "[index]\nkind = \"ivfpq\"\nnlist = 4\nnbits = 4\nrerank_store = \"external\"\n",
    );
    p.ok(&["run", "--env", "stage"]);
    let release = p.live("stage").unwrap();
    let rows = p.manifest("stage", &release)["files"]["rows"]["path"]
        .as_str()
        .unwrap()
        .to_string();
    let (mut server, addr) = p.serve_with("stage", &["--no-isolation"]);
    let b = Browser::start().unwrap();
    open(&b, &format!("http://{addr}/"));

    let queries: Vec<String> = sample_queries().into_iter().take(6).map(|q| q.1).collect();
    for q in &queries {
        let got = search(&b, q);
        assert_eq!(got.len(), 10, "{q:?}");
        assert_eq!(got, native(&p, q), "browser and CLI differ for {q:?}");
    }

    let helper = b
        .eval(
            "return [self.crossOriginIsolated, window.__searchbar.helper, \
             window.__searchbar.helperPanels]",
            json!([]),
        )
        .unwrap();
    assert_eq!(
        helper,
        json!([false, "off: the page is not cross-origin isolated", 0]),
        "one core without the isolation headers"
    );

    // The rows file was only ever read a record at a time.
    let name = rows.rsplit('/').next().unwrap();
    let sizes = b
        .eval(
            "return performance.getEntriesByType('resource') \
               .filter(e => e.name.includes(arguments[0])).map(e => e.encodedBodySize);",
            json!([name]),
        )
        .unwrap();
    let sizes: Vec<u64> = sizes
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_u64().unwrap())
        .collect();
    assert!(
        sizes.len() >= 100,
        "{} range requests for {} queries",
        sizes.len(),
        queries.len()
    );
    assert!(
        sizes.iter().all(|&s| s == 4 + 384 || s == 0),
        "records of 388 bytes (0 when served from the HTTP cache): {sizes:?}"
    );

    // The encoder's word embeddings too: only the rows of the queries' tokens, by range, while
    // the browser ranked exactly as the CLI, which holds the whole table.
    let tokens = &p.manifest("stage", &release)["files"]["tokens"];
    let token_file = tokens["rows"]["path"].as_str().unwrap().rsplit('/').next();
    let token_bytes = tokens["rows"]["bytes"].as_u64().unwrap();
    let spans = b
        .eval(
            "return performance.getEntriesByType('resource') \
               .filter(e => e.name.includes(arguments[0])).map(e => e.encodedBodySize);",
            json!([token_file.unwrap()]),
        )
        .unwrap();
    let spans: Vec<u64> = serde_json::from_value(spans).unwrap();
    let fetched: u64 = spans.iter().sum();
    assert!(!spans.is_empty(), "no token rows fetched");
    assert!(
        spans.iter().all(|s| s % 388 == 0) && fetched * 100 < token_bytes,
        "spans of whole rows, under 1 % of the {token_bytes}-byte table: {spans:?}"
    );

    // A row damaged on the host is refused by its digest: the query fails with the file named,
    // nothing is searched with it.
    let path = p.target("stage").join("files").join(token_file.unwrap());
    let mut damaged = std::fs::read(&path).unwrap();
    damaged.iter_mut().for_each(|b| *b ^= 0x5a);
    std::fs::write(&path, &damaged).unwrap();
    let input = b.find("#q").unwrap();
    b.clear(&input).unwrap();
    b.type_into(&input, "zygomorphic quetzal").unwrap();
    let failed = b
        .wait_for(
            "const s = document.querySelector('#status'); \
             return s && s.textContent.includes('does not match its digest') ? s.textContent : null",
            json!([]),
            std::time::Duration::from_secs(30),
        )
        .unwrap_or_else(|e| panic!("{e}; status: {:?}", searchbar_tests::page::status(&b)));
    assert!(
        failed.as_str().unwrap().contains(token_file.unwrap()),
        "{failed}"
    );
    server.kill().unwrap();
}

/// A static host that ignores range requests (Python's `http.server` answers every GET with the
/// whole file): the page takes the token rows file whole, once, checked against the manifest,
/// and ranks exactly like the CLI instead of failing every query.
#[test]
fn a_host_without_range_requests_sends_the_token_rows_whole_once() {
    require_web_bundle();
    let p = Project::sample("");
    p.ok(&["run", "--env", "stage"]);
    let release = p.live("stage").unwrap();
    let tokens = &p.manifest("stage", &release)["files"]["tokens"]["rows"];
    let name = tokens["path"].as_str().unwrap().rsplit('/').next().unwrap();
    let bytes = tokens["bytes"].as_u64().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // Stopped however the test ends: a panic must not leave the server running.
    struct Stop(std::process::Child);
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _server = Stop(
        std::process::Command::new("python3")
            .args([
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                &port.to_string(),
            ])
            .current_dir(p.target("stage"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let started = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed().as_secs() < 30,
            "http.server did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let b = Browser::start().unwrap();
    open(&b, &format!("http://127.0.0.1:{port}/"));
    for (_, q) in sample_queries().into_iter().take(3) {
        assert_eq!(
            search(&b, &q),
            native(&p, &q),
            "browser and CLI differ for {q:?}"
        );
    }
    let sizes = b
        .eval(
            "return performance.getEntriesByType('resource') \
               .filter(e => e.name.includes(arguments[0])).map(e => e.decodedBodySize);",
            json!([name]),
        )
        .unwrap();
    assert_eq!(sizes, json!([bytes]), "one whole download of {name}");
}
