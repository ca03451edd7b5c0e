//! A release whose IVF-PQ index keeps its re-ranking vectors in a separate rows file and its
//! inverted lists in a lists file: the page downloads only the index's root (centroids,
//! codebook, a digest per list), fetches the lists each query probes and then its candidates'
//! records with HTTP range requests from `searchbar serve`, verifies each against the index
//! (a list against the root, a row along its path to its list's root) and ranks exactly like
//! the CLI (which reads the same files from disk). The encoder's word
//! embeddings come the same way: the rows of each query's tokens, each checked against its
//! digest. Served without the cross-origin isolation headers, as a static host that cannot set
//! them, so the page runs on one core (no matmul helper worker): the browser test covers the
//! worker. A test binary of its own, so it never shares the machine with the timing-sensitive
//! browser test.

use searchbar_tests::page::{native, open, search};
use searchbar_tests::webdriver::Browser;
use searchbar_tests::{require_web_bundle, sample_queries, Project};
use serde_json::json;

#[test]
fn external_rows_and_lists_are_fetched_by_range_and_rank_like_the_cli() {
    require_web_bundle();
    let p = Project::sample(
        "[index]\nkind = \"ivfpq\"\nnlist = 4\nnbits = 4\nrerank_store = \"external\"\n\
         lists_file = true\n[search]\nrerank = 30\n",
    );
    p.ok(&["run", "--env", "stage"]);
    let release = p.live("stage").unwrap();
    let files = &p.manifest("stage", &release)["files"];
    let rows = files["rows"]["path"].as_str().unwrap().to_string();
    let lists = files["lists"]["path"].as_str().unwrap().to_string();
    let lists_bytes = files["lists"]["bytes"].as_u64().unwrap();
    // 171 documents: ids and codes (48 bytes) in the lists file, each of the 4 lists ending
    // with its rows' root; nothing per document in the index. Each row carries its path to
    // that root: 8 bytes a level, one record length for all.
    assert_eq!(lists_bytes, 171 * (4 + 48) + 4 * 8);
    let record = files["rows"]["bytes"].as_u64().unwrap() / 171;
    assert!(
        record > 4 + 384 && (record - 4 - 384).is_multiple_of(8),
        "{record}"
    );
    assert!(
        files["index"]["bytes"].as_u64().unwrap() < 40_000,
        "{}",
        files["index"]
    );
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

    // The rows file was only ever read a record at a time, and only the records of the 30
    // candidates each query re-scores: a hybrid query ranks 100 dense candidates (all 171
    // documents here), the others by their PQ scores, and still ranks like the CLI.
    let sizes = encoded_sizes(&b, rows.rsplit('/').next().unwrap());
    assert!(
        sizes.len() >= 30 && sizes.len() <= 30 * queries.len(),
        "{} range requests for {} queries",
        sizes.len(),
        queries.len()
    );
    assert!(
        sizes.iter().all(|&s| s == record || s == 0),
        "records of {record} bytes (0 when served from the HTTP cache): {sizes:?}"
    );

    // Each list was read once, by range, and kept for the queries after it.
    let sizes = encoded_sizes(&b, lists.rsplit('/').next().unwrap());
    assert!(
        !sizes.is_empty() && sizes.len() <= 4,
        "at most one request per list: {sizes:?}"
    );
    assert!(
        sizes
            .iter()
            .all(|s| s.checked_sub(8).is_some_and(|e| e.is_multiple_of(52)))
            && sizes.iter().sum::<u64>() <= lists_bytes,
        "whole entries of 52 bytes and a root: {sizes:?}"
    );

    // The encoder's word embeddings too: only the rows of the queries' tokens, by range, while
    // the browser ranked exactly as the CLI, which holds the whole table.
    let tokens = &p.manifest("stage", &release)["files"]["tokens"];
    let token_file = tokens["rows"]["path"].as_str().unwrap().rsplit('/').next();
    let token_bytes = tokens["rows"]["bytes"].as_u64().unwrap();
    let spans = encoded_sizes(&b, token_file.unwrap());
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

/// The bytes received for each request of a file whose name contains `name`, in order.
fn encoded_sizes(b: &Browser, name: &str) -> Vec<u64> {
    let sizes = b
        .eval(
            "return performance.getEntriesByType('resource') \
               .filter(e => e.name.includes(arguments[0])).map(e => e.encodedBodySize);",
            json!([name]),
        )
        .unwrap();
    serde_json::from_value(sizes).unwrap()
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
