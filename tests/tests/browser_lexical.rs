//! Words in headless Chromium. A lexical-only release (`search.mode = "lexical"`, fragments
//! small enough that common words' lists continue in postings blocks): the page ranks by words
//! alone exactly as `searchbar query` does, fetches only the lexical fragments its queries
//! need (postings blocks among them), not the whole index, and never the encoder. A hybrid release: the page
//! answers by words while its encoder downloads (as `searchbar query --words-only` does), then
//! ranks the same text again in place. A test binary of its own, so it never shares the
//! machine with the timing-sensitive browser test.

use searchbar_tests::page::{native, native_with, open, search, search_at, status, RESULTS_FOR};
use searchbar_tests::webdriver::Browser;
use searchbar_tests::{require_web_bundle, sample_queries, Project};
use serde_json::json;
use std::time::Duration;

#[test]
fn a_lexical_release_ranks_like_the_cli_and_fetches_only_the_fragments_it_needs() {
    require_web_bundle();
    let p = Project::sample("[search]\nmode = \"lexical\"\n[lexical]\nfragment_bytes = 256\n");
    let out = p.ok(&["run", "--env", "stage"]);
    assert!(out.contains("ships lexical ranking"), "{out}");
    let release = p.live("stage").unwrap();
    let manifest = p.manifest("stage", &release);
    assert_eq!(manifest["search"]["mode"], "lexical");
    let lexical = &manifest["files"]["lexical"];
    let names: Vec<String> = lexical["fragments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            f["path"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    let fragments = names.len();
    let root = std::fs::read(
        p.release_dir("stage", &release)
            .join(lexical["root"]["path"].as_str().unwrap()),
    )
    .unwrap();
    let index = searchbar_lexical::LexicalIndex::from_root(&root, "root").unwrap();
    let first_block = index.root().first_block();
    assert!(
        first_block < fragments,
        "no postings blocks: {first_block} of {fragments}"
    );
    // The word whose list has the most blocks (one a user would type: it analyses to itself).
    let analyzer = searchbar_lexical::Analyzer::new(&index.root().meta.analysis).unwrap();
    let paths = lexical["fragments"].as_array().unwrap();
    let common = (0..index.root().dict.len())
        .flat_map(|n| {
            let path = p
                .release_dir("stage", &release)
                .join(paths[n]["path"].as_str().unwrap());
            match index.fragment(n, &std::fs::read(path).unwrap(), "fragment") {
                Ok(searchbar_lexical::Fragment::Dict(entries)) => entries,
                other => panic!("fragment {n}: {other:?}"),
            }
        })
        .filter(|e| analyzer.terms(&e.term).collect::<Vec<_>>() == [e.term.clone()])
        .max_by_key(|e| e.blocks.len())
        .unwrap();
    assert!(!common.blocks.is_empty(), "{common:?}");
    let (mut server, addr) = p.serve("stage");
    let b = Browser::start().unwrap();
    open(&b, &format!("http://{addr}/"));

    let mut queries: Vec<String> = sample_queries().into_iter().take(4).map(|q| q.1).collect();
    queries.extend(["qua", "quadcoptre", "xyzzy"].map(String::from));
    queries.push(format!("{} ", common.term));
    for q in &queries {
        let got = search(&b, q);
        assert_eq!(got, native(&p, q), "browser and CLI differ for {q:?}");
    }
    assert!(search(&b, "xyzzy").is_empty());

    let fetched: Vec<usize> = b
        .eval(
            "return [...new Set(performance.getEntriesByType('resource') \
               .map(e => e.name.split('/').pop()).filter(n => /lexical-\\d+-/.test(n)))]",
            json!([]),
        )
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|n| names.iter().position(|m| m == n.as_str().unwrap()).unwrap())
        .collect();
    assert!(
        !fetched.is_empty() && fetched.len() < fragments,
        "{} of {fragments} lexical fragments fetched",
        fetched.len()
    );
    let blocks = fetched.iter().filter(|&&n| n >= first_block).count();
    assert!(
        blocks > 0 && blocks < fragments - first_block,
        "{blocks} of {} postings blocks fetched",
        fragments - first_block
    );
    let heavy = b
        .eval(
            "return performance.getEntriesByType('resource').map(e => e.name) \
               .filter(n => /encoder-|tokenizer-|index-/.test(n))",
            json!([]),
        )
        .unwrap();
    assert_eq!(heavy, json!([]), "a lexical release fetched its dense half");
    // Over the wire compressed (serve answers by Accept-Encoding from export's variants), and
    // still verified: the page checks each file's hash after the browser decoded it. Export
    // writes no variant that saves under 5 %, as for most 256-byte fragments here.
    let plain = b
        .eval(
            "return performance.getEntriesByType('resource') \
               .filter(e => /\\.wasm$|docs-|lexical-/.test(e.name) && e.decodedBodySize >= 1024) \
               .filter(e => !(e.encodedBodySize > 0 && e.encodedBodySize < e.decodedBodySize)) \
               .map(e => [e.name, e.encodedBodySize, e.decodedBodySize])",
            json!([]),
        )
        .unwrap();
    assert_eq!(plain, json!([]), "sent uncompressed");
    server.kill().unwrap();
}

#[test]
fn a_hybrid_page_answers_by_words_while_its_encoder_loads_then_ranks_again_in_place() {
    require_web_bundle();
    let p = Project::sample("");
    p.ok(&["run", "--env", "stage"]);
    let release = p.live("stage").unwrap();
    let manifest = p.manifest("stage", &release);
    assert_eq!(manifest["search"]["mode"], "hybrid");
    let encoder = manifest["files"]["encoder"]["path"].as_str().unwrap();
    let encoder = encoder.rsplit('/').next().unwrap().to_string();
    let (mut server, addr) = p.serve("stage");
    let b = Browser::start().unwrap();
    // 2 MB/s: the records and the lexical root arrive in a moment, the encoder (about 23 MB)
    // takes over ten seconds, time enough to search by words first.
    b.cdp("Network.enable", json!({})).unwrap();
    b.cdp(
        "Network.emulateNetworkConditions",
        json!({"offline": false, "latency": 20, "downloadThroughput": 2_000_000,
               "uploadThroughput": 2_000_000}),
    )
    .unwrap();
    open(&b, &format!("http://{addr}/"));
    b.wait_for(
        "const s = document.querySelector('#status'); return s && s.dataset.state === 'words'",
        json!([]),
        Duration::from_secs(60),
    )
    .unwrap_or_else(|e| panic!("{e}; status: {:?}", status(&b)));
    let text = b
        .eval(
            "return document.querySelector('#status').textContent",
            json!([]),
        )
        .unwrap();
    assert!(
        text.as_str().unwrap().contains("Keyword search ready"),
        "{text}"
    );

    // By words, exactly as the CLI ranks them before the encoder.
    let q = sample_queries()[0].1.clone();
    let words = search_at(&b, &q, "words");
    assert!(!words.is_empty(), "no results by words for {q:?}");
    assert_eq!(words, native_with(&p, &q, &["--words-only"]), "{q:?}");
    // The first row made active; from here on the list must never be empty.
    let input = b.find("#q").unwrap();
    b.type_into(&input, "\u{E015}").unwrap();
    b.wait_for(
        "return document.querySelector('#q').getAttribute('aria-activedescendant') \
           === 'result-0'",
        json!([]),
        Duration::from_secs(10),
    )
    .unwrap();
    b.eval(
        "window.__emptied = false; const r = document.querySelector('#results'); \
         new MutationObserver(() => { if (!r.querySelector('li.result')) window.__emptied = true; }) \
           .observe(r, {childList: true, subtree: true});",
        json!([]),
    )
    .unwrap();
    assert_eq!(
        b.eval(
            "return document.querySelector('#status').dataset.state",
            json!([])
        )
        .unwrap(),
        "words",
        "the encoder arrived before the words stage could be checked"
    );

    // The encoder arrives: the same text, ranked as the release says, in place.
    let complete = b
        .wait_for(RESULTS_FOR, json!([q]), Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{e}; status: {:?}", status(&b)));
    let complete: Vec<String> = serde_json::from_value(complete).unwrap();
    assert_eq!(complete, native(&p, &q), "{q:?}");
    let v = b
        .eval(
            "const a = document.querySelector('#q').getAttribute('aria-activedescendant'); \
             const li = a && document.getElementById(a); \
             return [li ? li.dataset.id : null, window.__emptied];",
            json!([]),
        )
        .unwrap();
    let kept = complete.contains(&words[0]).then(|| words[0].clone());
    assert_eq!(
        v,
        json!([kept, false]),
        "active row after re-ranking, list emptied"
    );

    // An encoder that never arrives leaves search by words working, and says why.
    b.cdp(
        "Network.setBlockedURLs",
        json!({"urls": [format!("*{encoder}*")]}),
    )
    .unwrap();
    b.cdp(
        "Network.emulateNetworkConditions",
        json!({"offline": false, "latency": 0, "downloadThroughput": -1,
               "uploadThroughput": -1}),
    )
    .unwrap();
    b.cdp("Network.setCacheDisabled", json!({"cacheDisabled": true}))
        .unwrap();
    open(&b, &format!("http://{addr}/"));
    let st = b
        .wait_for(
            "const s = document.querySelector('#status'); \
             return s && s.dataset.state === 'error' ? s.textContent : null",
            json!([]),
            Duration::from_secs(60),
        )
        .unwrap_or_else(|e| panic!("{e}; status: {:?}", status(&b)));
    assert!(st.as_str().unwrap().contains(&encoder), "{st}");
    assert_eq!(
        search_at(&b, "qua", "words"),
        native_with(&p, "qua", &["--words-only"])
    );
    server.kill().unwrap();
}
