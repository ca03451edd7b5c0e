//! Words in headless Chromium. A lexical-only release (`search.mode = "lexical"`, fragments small
//! enough that common words' lists continue in postings blocks): the page ranks by words alone
//! exactly as `searchbar query` does, fetches only the lexical fragments its queries need (postings
//! blocks among them), not the whole index, and never the encoder. A hybrid release: the page
//! answers by words while its encoder downloads (as `searchbar query --words-only` does), then
//! ranks the same text again in place. The box is there before the app: what is typed into it
//! before the wasm arrives is kept, with its caret and focus, and searched. A test binary of its
//! own, so it never shares the machine with the timing-sensitive browser test.

use searchbar_release::{FileRef, Manifest, PartList, ReleaseError};
use searchbar_tests::page::{native, native_with, open, search, search_at, status, RESULTS_FOR};
use searchbar_tests::webdriver::Browser;
use searchbar_tests::{require_web_bundle, sample_queries, Project};
use serde_json::json;
use std::time::Duration;

/// The Cache API cache the page keeps its files in (web/src/cache.rs).
const PAGE_CACHE: &str = "searchbar-files-v1";

#[test]
fn a_lexical_release_ranks_like_the_cli_and_fetches_only_the_fragments_it_needs() {
    require_web_bundle();
    let p = Project::sample("[search]\nmode = \"lexical\"\n[lexical]\nfragment_bytes = 256\n");
    // Document shards of 8 (the default): 22 for the 171 documents. Part table pages of 4: the
    // shards and the fragments are named in tables, not in the manifest, and the page reads
    // the pages of what its queries need.
    p.set_web("parts_per_page = 4");
    let out = p.ok(&["run", "--env", "stage"]);
    assert!(out.contains("ships lexical ranking"), "{out}");
    let release = p.live("stage").unwrap();
    let dir = p.release_dir("stage", &release);
    let manifest = Manifest::from_json(
        &std::fs::read(dir.join("manifest.json")).unwrap(),
        "manifest.json",
    )
    .unwrap();
    assert_eq!(manifest.search.mode.name(), "lexical");
    let read = &mut |f: &FileRef| -> Result<Vec<u8>, ReleaseError> {
        Ok(std::fs::read(dir.join(&f.path)).unwrap())
    };
    let name = |f: &FileRef| f.path.rsplit('/').next().unwrap().to_string();
    let lexical = manifest.files.lexical.as_ref().unwrap();
    assert!(matches!(lexical.fragments, PartList::Paged(_)));
    assert!(matches!(manifest.files.docs, PartList::Paged(_)));
    let fragment_files = lexical.fragments.contents(read).unwrap();
    let names: Vec<String> = fragment_files.iter().map(|(f, _)| name(f)).collect();
    let fragments = names.len();
    let index =
        searchbar_lexical::LexicalIndex::from_root(&read(&lexical.root).unwrap(), "root").unwrap();
    let first_block = index.root().first_block();
    assert!(
        first_block < fragments,
        "no postings blocks: {first_block} of {fragments}"
    );
    // The word whose list has the most blocks (one a user would type: it analyses to itself).
    let analyzer = searchbar_lexical::Analyzer::new(&index.root().meta.analysis).unwrap();
    let common = (0..index.root().dict.len())
        .flat_map(
            |n| match index.fragment(n, &fragment_files[n].1, "fragment") {
                Ok(searchbar_lexical::Fragment::Dict(entries)) => entries,
                other => panic!("fragment {n}: {other:?}"),
            },
        )
        .filter(|e| analyzer.terms(&e.term).collect::<Vec<_>>() == [e.term.clone()])
        .max_by_key(|e| e.blocks.len())
        .unwrap();
    assert!(!common.blocks.is_empty(), "{common:?}");
    let (mut server, addr) = p.serve("stage");
    let b = Browser::start().unwrap();
    open(&b, &format!("http://{addr}/"));

    // One query, put in the box at once (a paste: no half-typed text searched before it),
    // fetches the document shards of the results it shows, and only those.
    let shards: Vec<(String, Vec<String>)> = manifest
        .files
        .docs
        .contents(read)
        .unwrap()
        .iter()
        .map(|(f, bytes)| {
            let records: Vec<serde_json::Value> = serde_json::from_slice(bytes).unwrap();
            let ids = records
                .iter()
                .map(|r| r["id"].as_str().unwrap().to_string());
            (name(f), ids.collect())
        })
        .collect();
    assert_eq!(shards.len(), 22);
    let q = sample_queries()[0].1.clone();
    b.eval(
        "const q = document.querySelector('#q'); q.value = arguments[0]; \
         q.dispatchEvent(new Event('input', { bubbles: true }));",
        json!([q]),
    )
    .unwrap();
    let shown = b
        .wait_for(RESULTS_FOR, json!([q, "complete"]), Duration::from_secs(60))
        .unwrap();
    let shown: Vec<String> = serde_json::from_value(shown).unwrap();
    assert_eq!(shown, native(&p, &q));
    let wanted: Vec<usize> = (0..shards.len())
        .filter(|&n| shards[n].1.iter().any(|id| shown.contains(id)))
        .collect();
    let mut wanted_names: Vec<&str> = wanted.iter().map(|&n| shards[n].0.as_str()).collect();
    wanted_names.sort_unstable();
    let fetched_of = |pattern: &str| {
        b.eval(
            "return [...new Set(performance.getEntriesByType('resource') \
               .map(e => e.name.split('/').pop()) \
               .filter(n => new RegExp(arguments[0]).test(n)))].sort()",
            json!([pattern]),
        )
        .unwrap()
    };
    assert_eq!(
        fetched_of("^docs-\\d+-"),
        json!(wanted_names),
        "shards of {shown:?}"
    );
    assert!(wanted.len() < shards.len(), "{wanted:?}");
    // None of their table pages: each shard carries its path to its page's root.
    assert_eq!(fetched_of("-page-"), json!([]));

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
    // The manifest and the lexical roots were asked for by the release page as it opened (its
    // preloads), beside its module, and each crossed the network once: the app's fetches took
    // the preloaded responses. The shards' table root, needed only once a query is ranked,
    // was asked for by the app as it started, once.
    let early = b
        .eval(
            "return performance.getEntriesByType('resource') \
               .filter(e => /manifest\\.json$|lexical-root-|-table-/.test(e.name)) \
               .map(e => [e.name.split('/').pop().split('-')[0], e.initiatorType]).sort()",
            json!([]),
        )
        .unwrap();
    assert_eq!(
        early,
        json!([
            ["docs", "fetch"],
            ["lexical", "link"],
            ["lexical", "link"],
            ["manifest.json", "link"]
        ]),
        "fetched once each, by the page's preloads and the app"
    );
    // Over the wire compressed (serve answers by Accept-Encoding from export's variants), and
    // still verified: the page checks each file's hash after the browser decoded it. Export
    // writes no variant that saves under 5 %, as for most 256-byte fragments here and for
    // the part tables (sha256s).
    let plain = b
        .eval(
            "return performance.getEntriesByType('resource') \
               .filter(e => /\\.wasm$|docs-|lexical-/.test(e.name) && e.decodedBodySize >= 1024) \
               .filter(e => !/-(table|page)-/.test(e.name)) \
               .filter(e => !(e.encodedBodySize > 0 && e.encodedBodySize < e.decodedBodySize)) \
               .map(e => [e.name, e.encodedBodySize, e.decodedBodySize])",
            json!([]),
        )
        .unwrap();
    assert_eq!(plain, json!([]), "sent uncompressed");

    // Parts of paged kinds stay in the page's cache across releases, up to 2,000, the most
    // recently stored: 2,100 stand-ins stored (this visit's parts, checked by their paths, are
    // left to the HTTP cache), then a new visit prunes the oldest.
    let stored = b
        .eval(
            "return caches.open(arguments[0]).then(async c => { \
               for (let i = 0; i < 2100; i++) await c.put( \
                 new URL('../../files/docs-standin-' + i + '.json', location.href).href, \
                 new Response('x')); \
               return (await c.keys()).length; })",
            json!([PAGE_CACHE]),
        )
        .unwrap();
    assert!(stored.as_u64().unwrap() >= 2100, "{stored}");
    open(&b, &format!("http://{addr}/"));
    let standins = b
        .wait_for(
            "return caches.open(arguments[0]).then(c => c.keys()).then(ks => { \
               const s = ks.map(r => r.url.split('/').pop()) \
                 .filter(n => n.startsWith('docs-standin-')); \
               return s.length <= 2000 ? s : null; })",
            json!([PAGE_CACHE]),
            Duration::from_secs(30),
        )
        .unwrap();
    let standins: Vec<String> = serde_json::from_value(standins).unwrap();
    assert!(standins.contains(&"docs-standin-2099.json".to_string()));
    assert!(!standins.contains(&"docs-standin-0.json".to_string()));
    assert!(standins.len() > 1900, "{} kept", standins.len());
    server.kill().unwrap();
}

/// A hybrid page waits for its first words-only results before it downloads its encoder, so the
/// megabytes never share the link with them, but not for ever: when no words-only result has
/// come 1.5 s after the words became searchable (here, every lexical fragment is blocked, so
/// none ever comes), it starts the encoder anyway.
#[test]
fn a_hybrid_page_whose_words_never_answer_starts_its_encoder_after_1_5_s() {
    require_web_bundle();
    let p = Project::sample("");
    p.ok(&["run", "--env", "stage"]);
    let release = p.live("stage").unwrap();
    let manifest = p.manifest("stage", &release);
    let name = |role: &str| {
        let path = manifest["files"][role]["path"].as_str().unwrap();
        path.rsplit('/').next().unwrap().to_string()
    };
    let (encoder, root) = (
        name("encoder"),
        manifest["files"]["lexical"]["root"]["path"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_string(),
    );
    let (mut server, addr) = p.serve("stage");
    let b = Browser::start().unwrap();
    b.cdp("Network.enable", json!({})).unwrap();
    // The fragments (`lexical-<n>-…`), not the root (`lexical-root-…`).
    let blocked: Vec<String> = (0..10).map(|d| format!("*lexical-{d}*")).collect();
    b.cdp("Network.setBlockedURLs", json!({ "urls": blocked }))
        .unwrap();
    // The box holds a query when the page opens, so the page searches by words first instead
    // of starting the encoder at once.
    open_release_with_query(&b, &addr, &release, "air quality");
    let times = b
        .wait_for(
            "const at = n => performance.getEntriesByType('resource') \
               .find(e => e.name.endsWith('/' + n)); \
             const [e, r] = [at(arguments[0]), at(arguments[1])]; \
             return e && r ? [r.responseEnd, e.startTime] : null",
            json!([encoder, root]),
            Duration::from_secs(60),
        )
        .unwrap_or_else(|e| panic!("{e}; status: {:?}", status(&b)));
    let (words_at, encoder_at) = (times[0].as_f64().unwrap(), times[1].as_f64().unwrap());
    assert!(
        encoder_at - words_at >= 1_400.0,
        "encoder requested {:.0} ms after the lexical root came",
        encoder_at - words_at
    );
    assert!(
        encoder_at - words_at < 10_000.0,
        "encoder requested {:.0} ms after the lexical root came",
        encoder_at - words_at
    );
    server.kill().unwrap();
}

/// Opens release `release`'s own page with `text` in its box, focused, caret at the end: put
/// there as soon as the box exists, before the page's scripts run (as a user who pastes it at
/// once), so the app finds it when it takes the box over.
fn open_release_with_query(b: &Browser, addr: &str, release: &str, text: &str) {
    let script = "(() => { const text = __TEXT__; const o = new MutationObserver(() => { \
        const q = document.getElementById('q'); if (!q) return; o.disconnect(); \
        q.value = text; q.setSelectionRange(text.length, text.length); q.focus(); }); \
        o.observe(document, { subtree: true, childList: true }); })();"
        .replace("__TEXT__", &json!(text).to_string());
    let added = b
        .cdp(
            "Page.addScriptToEvaluateOnNewDocument",
            json!({ "source": script }),
        )
        .unwrap();
    b.goto(&format!("http://{addr}/releases/{release}/index.html"))
        .unwrap();
    b.cdp(
        "Page.removeScriptToEvaluateOnNewDocument",
        json!({ "identifier": added["identifier"] }),
    )
    .unwrap();
}

/// The root of the shards' part table is not preloaded: the app asks for it as it starts, and
/// a query ranked before it comes is shown once it does (held back here by a `fetch` that
/// waits for the test), as the CLI ranks it. A root that does not match the manifest is
/// refused, and the search says so instead of waiting for ever.
#[test]
fn a_query_ranked_before_the_shards_table_root_comes_is_shown_when_it_comes() {
    require_web_bundle();
    let p = Project::sample("[search]\nmode = \"lexical\"\n");
    p.set_web("parts_per_page = 4");
    p.ok(&["run", "--env", "stage"]);
    let release = p.live("stage").unwrap();
    let (mut server, addr) = p.serve("stage");
    let q = sample_queries()[0].1.clone();
    // `__MODE__`: "hold" keeps the root's response until `__releaseTable()`; "corrupt" answers
    // it with other bytes.
    let gate = "(() => { const real = window.fetch; let release; \
        const gate = new Promise((r) => { release = r; }); \
        window.__releaseTable = () => release(); window.__tableAsked = null; \
        window.fetch = function (input, init) { \
          const url = typeof input === 'string' ? input : input.url; \
          if (!/docs-table-/.test(url)) return real.call(this, input, init); \
          window.__tableAsked = performance.now(); \
          if (__MODE__ === 'corrupt') return Promise.resolve(new Response(new Uint8Array(16))); \
          return gate.then(() => real.call(this, input, init)); }; })();";
    let shown_words = "const r = document.querySelector('#results'); \
        return r ? r.querySelectorAll('li.result').length : 0";
    for mode in ["hold", "corrupt"] {
        let b = Browser::start().unwrap();
        b.cdp(
            "Page.addScriptToEvaluateOnNewDocument",
            json!({ "source": gate.replace("__MODE__", &json!(mode).to_string()) }),
        )
        .unwrap();
        open_release_with_query(&b, &addr, &release, &q);
        // Ranked: the table root asked for, the query's fragments in, the app's box.
        b.wait_for(
            "return window.__tableAsked !== null && !!document.querySelector('#q[data-app]') \
               && performance.getEntriesByType('resource') \
                    .some(e => /lexical-\\d+-/.test(e.name) && e.responseEnd > 0) || null",
            json!([]),
            Duration::from_secs(60),
        )
        .unwrap_or_else(|e| panic!("{mode}: {e}; status: {:?}", status(&b)));
        if mode == "corrupt" {
            let said = b
                .wait_for(
                    "const s = document.querySelector('#status'); \
                     return s && s.textContent.includes('Search failed') ? s.textContent : null",
                    json!([]),
                    Duration::from_secs(30),
                )
                .unwrap_or_else(|e| panic!("{e}; status: {:?}", status(&b)));
            assert!(said.as_str().unwrap().contains("docs-table-"), "{said}");
            assert_eq!(b.eval(shown_words, json!([])).unwrap(), json!(0));
            continue;
        }
        std::thread::sleep(Duration::from_millis(1_000));
        assert_eq!(
            b.eval(shown_words, json!([])).unwrap(),
            json!(0),
            "shown before the shards' table root came; status: {:?}",
            status(&b)
        );
        b.eval("window.__releaseTable()", json!([])).unwrap();
        let shown = b
            .wait_for(RESULTS_FOR, json!([q, "complete"]), Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("{e}; status: {:?}", status(&b)));
        let shown: Vec<String> = serde_json::from_value(shown).unwrap();
        assert_eq!(shown, native(&p, &q));
        // Later queries need it no more.
        assert_eq!(search(&b, "air quality"), native(&p, "air quality"));
    }
    server.kill().unwrap();
}

/// A page of a release that is no longer live says a newer one is (its footer links to the root),
/// and asks `current.json` only once its first results have come: asked with its manifest, it
/// would hold one of HTTP/1.1's six connections while the first query's files wait.
#[test]
fn an_older_release_page_says_a_newer_one_is_live_once_its_first_results_are_shown() {
    require_web_bundle();
    let p = Project::sample("");
    p.ok(&["run", "--env", "stage"]);
    let older = p.live("stage").unwrap();
    p.sqlite()
        .execute(
            "UPDATE projects SET title = title || ' (2nd edition)' WHERE rowid = 10",
            [],
        )
        .unwrap();
    p.ok(&["run", "--env", "stage"]);
    let newer = p.live("stage").unwrap();
    assert_ne!(older, newer);
    let (mut server, addr) = p.serve("stage");
    let b = Browser::start().unwrap();
    open_release_with_query(&b, &addr, &older, "air quality");
    let said = b
        .wait_for(
            "const a = document.querySelector('#newer'); return a ? a.dataset.release : null",
            json!([]),
            Duration::from_secs(60),
        )
        .unwrap_or_else(|e| panic!("{e}; status: {:?}", status(&b)));
    assert_eq!(said, json!(newer));
    // When it was asked for, against when the first result's document shards had come.
    let times = b
        .eval(
            "const r = performance.getEntriesByType('resource'); \
             const live = r.filter(e => e.name.endsWith('/current.json')); \
             const shards = r.filter(e => /\\/docs-[0-9]+-/.test(e.name)); \
             return [live.map(e => e.startTime), \
                     Math.min(...shards.map(e => e.responseEnd))]",
            json!([]),
        )
        .unwrap();
    let asked: Vec<f64> = serde_json::from_value(times[0].clone()).unwrap();
    let first_shard = times[1].as_f64().unwrap();
    assert_eq!(asked.len(), 1, "current.json asked {} times", asked.len());
    assert!(
        asked[0] >= first_shard,
        "current.json asked at {:.0} ms, before the first shard came at {first_shard:.0} ms",
        asked[0]
    );
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

    // An encoder that never arrives leaves search by words working, and says why. (A new
    // visitor: the page's own cache, which now holds the encoder, is emptied first.)
    b.eval(&format!("return caches.delete('{PAGE_CACHE}')"), json!([]))
        .unwrap();
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
    let st = error_status(&b);
    assert!(st.as_str().unwrap().contains(&encoder), "{st}");
    assert_eq!(
        search_at(&b, "qua", "words"),
        native_with(&p, "qua", &["--words-only"])
    );

    // An encoder module whose bytes are not the ones the manifest names is refused before it
    // runs (served raw here: its variants go, and one byte changes, in a file of its own, as
    // the export area shares the old one); keyword search goes on, and the status line says
    // which file.
    let wasm = listed(&manifest["files"]["app"])
        .into_iter()
        .find(|p| p.contains("searchbar-encoder-") && p.ends_with("_bg.wasm"))
        .expect("the encoder's module is among the page's files");
    change_one_byte(&p.target("stage").join(&wasm), 1000);
    b.cdp("Network.setBlockedURLs", json!({"urls": []}))
        .unwrap();
    b.eval(&format!("return caches.delete('{PAGE_CACHE}')"), json!([]))
        .unwrap();
    open(&b, &format!("http://{addr}/"));
    assert_refused(&b, &wasm);
    assert_eq!(
        search_at(&b, "qua", "words"),
        native_with(&p, "qua", &["--words-only"])
    );
    server.kill().unwrap();
}

/// The page links no stemmer: a release carries its index language's module (web/stem), the
/// page loads it beside its first module, and analyses words with it exactly as the pipeline
/// did. A module whose bytes are not the manifest's is refused, naming it.
#[test]
fn a_release_in_another_language_carries_its_stemmer_and_ranks_like_the_cli() {
    require_web_bundle();
    let p = Project::sample("[search]\nmode = \"lexical\"\n[lexical]\nlanguage = \"french\"\n");
    p.ok(&["run", "--env", "stage"]);
    let manifest = p.manifest("stage", &p.live("stage").unwrap());
    let app = listed(&manifest["files"]["app"]);
    let stemmers: Vec<&str> = app
        .iter()
        .filter_map(|f| searchbar_release::stemmer_language(f.rsplit('/').next().unwrap()))
        .collect();
    assert_eq!(stemmers, ["french"], "{app:?}");
    let module = app
        .iter()
        .find(|f| f.contains("searchbar-stem-french-"))
        .unwrap()
        .clone();
    let page = std::fs::read_to_string(p.target("stage").join("index.html")).unwrap();
    assert!(
        page.contains(&format!("<link rel=\"preload\" href=\"../../{module}\"")),
        "{page}"
    );

    // Queries whose words French stemming changes (so that a page analysing them any other
    // way would rank them otherwise).
    let french = searchbar_lexical::Analyzer::new(&searchbar_lexical::Analysis {
        language: "french".into(),
        stop_words: vec![],
    })
    .unwrap();
    let queries: Vec<String> = sample_queries()
        .into_iter()
        .map(|(_, q)| q)
        .filter(|q| french.words(q).iter().any(|w| w.term != w.folded))
        .take(3)
        .collect();
    assert_eq!(queries.len(), 3);
    let (mut server, addr) = p.serve("stage");
    let b = Browser::start().unwrap();
    open(&b, &format!("http://{addr}/"));
    for q in &queries {
        let got = search(&b, q);
        assert!(!got.is_empty(), "{q:?}");
        assert_eq!(got, native(&p, q), "{q:?}");
    }
    let fetched = b
        .eval(
            "return performance.getEntriesByType('resource').map(e => e.name) \
               .filter(n => n.includes('/searchbar-stem-')).length",
            json!([]),
        )
        .unwrap();
    assert_eq!(
        fetched,
        json!(1),
        "the preload and the app's fetch are one download"
    );

    // One byte changed (served raw: its variants go): refused before it runs, by name.
    change_one_byte(&p.target("stage").join(&module), 100);
    let b = Browser::start().unwrap();
    open(&b, &format!("http://{addr}/"));
    assert_refused(&b, &module);
    server.kill().unwrap();
}

/// Changes byte `at` of a served file, which is then served raw: its compressed variants go
/// (in a file of its own: the export area shares the old one).
fn change_one_byte(on_disk: &std::path::Path, at: usize) {
    let mut bytes = std::fs::read(on_disk).unwrap();
    bytes[at] ^= 1;
    for ext in ["", ".br", ".gz"] {
        let _ = std::fs::remove_file(format!("{}{ext}", on_disk.display()));
    }
    std::fs::write(on_disk, &bytes).unwrap();
}

/// The status line says that the file at `path` did not match its sha256, by its name.
fn assert_refused(b: &Browser, path: &str) {
    let st = error_status(b);
    let name = path.rsplit('/').next().unwrap();
    assert!(
        st.as_str().unwrap().contains(name) && st.as_str().unwrap().contains("sha256"),
        "{st}"
    );
}

/// The paths of a manifest's list of files, relative to the target (`files/...`).
fn listed(files: &serde_json::Value) -> Vec<String> {
    let list = files.as_array().expect("a list of files");
    list.iter()
        .map(|f| {
            f["path"]
                .as_str()
                .unwrap()
                .trim_start_matches("../../")
                .to_string()
        })
        .collect()
}

/// The status line's text once it shows an error.
fn error_status(b: &Browser) -> serde_json::Value {
    b.wait_for(
        "const s = document.querySelector('#status'); \
         return s && s.dataset.state === 'error' ? s.textContent : null",
        json!([]),
        Duration::from_secs(60),
    )
    .unwrap_or_else(|e| panic!("{e}; status: {:?}", status(b)))
}

/// A release ranked by its encoder alone has no words-only stage: the page loads the encoder's
/// module with its records (first module, then the second), ranks as the CLI does and fetches
/// no lexical file.
#[test]
fn a_dense_release_loads_its_encoder_at_once_and_ranks_like_the_cli() {
    require_web_bundle();
    let p = Project::sample("[search]\nmode = \"dense\"\n");
    p.ok(&["run", "--env", "stage"]);
    let manifest = p.manifest("stage", &p.live("stage").unwrap());
    assert_eq!(manifest["search"]["mode"], "dense");
    let (mut server, addr) = p.serve("stage");
    let b = Browser::start().unwrap();
    open(&b, &format!("http://{addr}/"));
    for (_, q) in sample_queries().into_iter().take(3) {
        let got = search(&b, &q);
        assert!(!got.is_empty(), "{q:?}");
        assert_eq!(got, native(&p, &q), "{q:?}");
    }
    let fetched = b
        .eval(
            "return performance.getEntriesByType('resource').map(e => e.name) \
               .filter(n => /[/](lexical-|searchbar-encoder-)/.test(n)) \
               .map(n => n.includes('/lexical-') ? 'lexical' : 'encoder module')",
            json!([]),
        )
        .unwrap();
    assert!(
        fetched
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n == "encoder module")
            && fetched != json!([]),
        "{fetched}"
    );
    server.kill().unwrap();
}

/// The page shown now (its path), and its box's value, caret, whether it has focus and whether
/// the app has taken it over.
fn box_state(b: &Browser) -> (String, serde_json::Value) {
    let v = b
        .eval(
            "const q = document.querySelector('#q'); \
             return [location.pathname, [q.value, q.selectionStart, \
                     document.activeElement === q, q.hasAttribute('data-app')]];",
            json!([]),
        )
        .unwrap();
    (v[0].as_str().unwrap().to_string(), v[1].clone())
}

#[test]
fn text_typed_before_the_app_arrives_keeps_its_caret_and_focus_and_is_searched() {
    require_web_bundle();
    let p = Project::sample("");
    p.ok(&["run", "--env", "stage"]);
    let (mut server, addr) = p.serve("stage");
    let b = Browser::start().unwrap();
    // Slow enough that the root page (the live release's) shows its box seconds before the
    // app's wasm is here.
    b.cdp("Network.enable", json!({})).unwrap();
    b.cdp("Network.setCacheDisabled", json!({"cacheDisabled": true}))
        .unwrap();
    b.cdp(
        "Network.emulateNetworkConditions",
        json!({"offline": false, "latency": 300, "downloadThroughput": 1_000_000,
               "uploadThroughput": 1_000_000}),
    )
    .unwrap();
    b.goto(&format!("http://{addr}/")).unwrap();
    // On the root page, before its app: a click in the box, a word, the caret put back before it.
    // Typed through DevTools' text input, which goes to whatever has focus, as keys do.
    b.eval("document.querySelector('#q').focus()", json!([]))
        .unwrap();
    b.cdp("Input.insertText", json!({"text": "quality"}))
        .unwrap();
    b.eval(
        "document.querySelector('#q').setSelectionRange(0, 0)",
        json!([]),
    )
    .unwrap();
    assert_eq!(
        box_state(&b),
        ("/".to_string(), json!(["quality", 0, true, false])),
        "the root page, with the word typed (did the app take the box over too soon to test?)"
    );
    b.cdp("Input.insertText", json!({"text": "air "})).unwrap();
    assert_eq!(
        box_state(&b),
        ("/".to_string(), json!(["air quality", 4, true, false])),
        "typed at the caret before the app took the box over"
    );
    // The app takes the box over as it is, and searches what it holds.
    b.wait_for(
        "return document.querySelector('#q[data-app]')",
        json!([]),
        Duration::from_secs(120),
    )
    .unwrap_or_else(|e| panic!("{e}; status: {:?}", status(&b)));
    assert_eq!(box_state(&b).1, json!(["air quality", 4, true, true]));
    b.cdp(
        "Network.emulateNetworkConditions",
        json!({"offline": false, "latency": 0, "downloadThroughput": -1,
               "uploadThroughput": -1}),
    )
    .unwrap();
    let shown = b
        .wait_for(
            RESULTS_FOR,
            json!(["air quality"]),
            Duration::from_secs(120),
        )
        .unwrap_or_else(|e| panic!("{e}; status: {:?}", status(&b)));
    let shown: Vec<String> = serde_json::from_value(shown).unwrap();
    assert!(!shown.is_empty());
    assert_eq!(shown, native(&p, "air quality"));
    // The encoder's module waited for the words-only results: no lexical fragment or document
    // shard of theirs was still on its way when its first byte was asked for.
    let order = b
        .wait_for(
            "const e = performance.getEntriesByType('resource'); \
             const enc = e.filter(x => x.name.includes('/searchbar-encoder-')); \
             if (!enc.length) return null; \
             const at = Math.min(...enc.map(x => x.startTime)); \
             const parts = e.filter(x => /[/](docs|lexical)-/.test(x.name) && x.startTime < at); \
             return [parts.length > 0, parts.filter(x => x.responseEnd > at).map(x => x.name)];",
            json!([]),
            Duration::from_secs(60),
        )
        .unwrap();
    assert_eq!(
        order,
        json!([true, []]),
        "encoder module fetched alongside the first results"
    );
    // Typing goes on in the same box, at its caret.
    b.cdp("Input.insertText", json!({"text": "and "})).unwrap();
    let shown = b
        .wait_for(
            RESULTS_FOR,
            json!(["air and quality"]),
            Duration::from_secs(60),
        )
        .unwrap_or_else(|e| panic!("{e}; status: {:?}", status(&b)));
    let shown: Vec<String> = serde_json::from_value(shown).unwrap();
    assert_eq!(shown, native(&p, "air and quality"));
    server.kill().unwrap();
}

/// The names of the files in the page's cache (`PAGE_CACHE`), with their sizes.
const CACHED: &str = "return caches.open(arguments[0]).then(c => c.keys().then(ks => Promise.all( \
    ks.map(r => c.match(r).then(res => res.arrayBuffer()) \
      .then(b => [r.url.split('/').pop(), b.byteLength])))));";

#[test]
fn a_second_visit_reads_verified_files_from_the_page_cache_and_fetches_a_corrupted_one_again() {
    require_web_bundle();
    let p = Project::sample("");
    p.ok(&["run", "--env", "stage"]);
    let release = p.live("stage").unwrap();
    let manifest = p.manifest("stage", &release);
    let file = |k: &str| {
        let f = &manifest["files"][k];
        let name = f["path"].as_str().unwrap().rsplit('/').next().unwrap();
        (name.to_string(), f["bytes"].as_u64().unwrap())
    };
    let (encoder, tokenizer) = (file("encoder"), file("tokenizer"));
    let (mut server, addr) = p.serve("stage");
    let b = Browser::start().unwrap();
    let q = sample_queries()[0].1.clone();
    open(&b, &format!("http://{addr}/"));
    let first = search(&b, &q);
    assert_eq!(first, native(&p, &q));
    // Kept as they arrived (in the background), each under its own name and size.
    let has = |cached: &serde_json::Value, (name, bytes): &(String, u64)| {
        cached
            .as_array()
            .is_some_and(|c| c.contains(&json!([name, bytes])))
    };
    let wait_cached = |what: &[&(String, u64)]| {
        let started = std::time::Instant::now();
        loop {
            let cached = b.eval(CACHED, json!([PAGE_CACHE])).unwrap();
            if what.iter().all(|f| has(&cached, f)) {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "not all of {what:?} cached: {cached}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    wait_cached(&[&encoder, &tokenizer]);
    // The token rows the query fetched are kept too, as records of 4 + 388 bytes.
    let tokens = manifest["files"]["tokens"]["rows"]["path"]
        .as_str()
        .unwrap();
    let tokens = tokens.rsplit('/').next().unwrap().to_string();
    let saved = format!("{tokens}?saved");
    // Each encoded prefix of the typed query saves the rows fetched so far, in the background:
    // the copy is the query's own once its size has stayed the same for a second after the
    // results (a reload before the last save lands would fetch the query's last rows again).
    let started = std::time::Instant::now();
    let mut last: Option<(u64, std::time::Instant)> = None;
    loop {
        let cached = b.eval(CACHED, json!([PAGE_CACHE])).unwrap();
        let kept = cached
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e[0] == json!(saved))
            .and_then(|e| e[1].as_u64())
            .filter(|n| *n > 0 && n % 392 == 0);
        match (kept, last) {
            (Some(n), Some((m, since))) if n == m => {
                if since.elapsed() >= Duration::from_secs(1) {
                    break;
                }
            }
            (Some(n), _) => last = Some((n, std::time::Instant::now())),
            (None, _) => last = None,
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "token rows not kept: {cached}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // A copy damaged on disk (or by anything else on the origin).
    b.eval(
        "return caches.open(arguments[0]).then(c => c.keys().then(ks => \
           c.put(ks.find(r => r.url.endsWith('/' + arguments[1])), new Response('damaged'))))",
        json!([PAGE_CACHE, tokenizer.0]),
    )
    .unwrap();
    assert!(!has(
        &b.eval(CACHED, json!([PAGE_CACHE])).unwrap(),
        &tokenizer
    ));

    // The second visit: the encoder and the token rows come from the page's cache, not over the
    // network; the damaged tokenizer is refused, fetched again and kept again; results as before.
    open(&b, &format!("http://{addr}/"));
    assert_eq!(search(&b, &q), first);
    let fetched = b
        .eval(
            "return performance.getEntriesByType('resource').map(e => e.name.split('/').pop())",
            json!([]),
        )
        .unwrap();
    let fetched: Vec<String> = serde_json::from_value(fetched).unwrap();
    assert!(
        !fetched.contains(&encoder.0),
        "encoder fetched again: {fetched:?}"
    );
    assert!(
        fetched.contains(&tokenizer.0),
        "damaged tokenizer not fetched again: {fetched:?}"
    );
    assert!(
        !fetched.contains(&tokens),
        "token rows fetched again: {fetched:?}"
    );
    wait_cached(&[&encoder, &tokenizer]);
    server.kill().unwrap();
}

/// `searchbar serve --tls-cert/--tls-key`: HTTPS, and HTTP/2 to a browser, as a CDN serves, so
/// that a query's many small files travel over one connection at once. A missing key file, or
/// one that is not the certificate's, is refused by name before anything listens. Served so,
/// the page ranks as the CLI does, every file it fetches comes over HTTP/2, and a second visit
/// takes the first module from the HTTP cache (a certificate error let through would keep it
/// from being cached at all: the browser trusts this one by its key instead).
#[test]
fn a_release_served_over_https_reaches_the_page_over_http2() {
    require_web_bundle();
    let p = Project::sample("[search]\nmode = \"lexical\"\n");
    p.set_web("parts_per_page = 4");
    p.ok(&["run", "--env", "stage"]);
    let certs = tempfile::tempdir().unwrap();
    let (cert, key, spki) = searchbar_tests::self_signed_cert(certs.path());
    let other = tempfile::tempdir().unwrap();
    let (_, other_key, _) = searchbar_tests::self_signed_cert(other.path());
    let path = |p: &std::path::Path| p.to_str().unwrap().to_string();
    let missing = certs.path().join("missing.pem");
    for (cert_arg, key_arg, named) in [
        (path(&cert), path(&missing), path(&missing)),
        (path(&missing), path(&key), path(&missing)),
        (path(&cert), path(&other_key), path(&cert)),
    ] {
        let out = p.run(&[
            "serve",
            "--env",
            "stage",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            &cert_arg,
            "--tls-key",
            &key_arg,
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{cert_arg} {key_arg}: {err}");
        assert!(err.contains(&named), "{cert_arg} {key_arg}: {err}");
    }
    let out = p.run(&["serve", "--env", "stage", "--tls-cert", &path(&cert)]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("--tls-key"), "{err}");

    let (mut server, addr) = p.serve_with(
        "stage",
        &["--tls-cert", &path(&cert), "--tls-key", &path(&key)],
    );
    let trust = format!("--ignore-certificate-errors-spki-list={spki}");
    let b = Browser::start_with(&[&trust]).unwrap();
    let url = format!("https://{addr}/");
    open(&b, &url);
    let q = sample_queries()[0].1.clone();
    assert_eq!(search(&b, &q), native(&p, &q));
    const PROTOCOLS: &str = "return performance.getEntriesByType('navigation') \
        .concat(performance.getEntriesByType('resource')) \
        .map(e => [e.name.split('/').pop(), e.nextHopProtocol, e.transferSize])";
    let fetched = b.eval(PROTOCOLS, json!([])).unwrap();
    let fetched = fetched.as_array().unwrap();
    assert!(fetched.len() > 5, "{fetched:?}");
    for f in fetched {
        assert_eq!(f[1], "h2", "{fetched:?}");
    }
    // The second visit: the first module (content-addressed, immutable) from the HTTP cache.
    open(&b, &url);
    assert_eq!(search(&b, &q), native(&p, &q));
    let fetched = b.eval(PROTOCOLS, json!([])).unwrap();
    let wasm: Vec<&serde_json::Value> = fetched
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f[0].as_str().is_some_and(|n| n.ends_with(".wasm")))
        .collect();
    assert!(!wasm.is_empty(), "{fetched}");
    for f in wasm {
        assert_eq!(f[2], 0, "not from the cache: {f}");
    }
    server.kill().unwrap();
}

/// Records a visit's milestones in `sessionStorage["searchbar:bench"]`, run in every document
/// before its own scripts (`Page.addScriptToEvaluateOnNewDocument`): the visit's start (its
/// navigation), the box's first paint, the query typed into the box as soon as the box exists
/// (as a user who pastes it), when the app took the box over, when the query's first results
/// showed (`first`) and when they were ranked as the release says (`complete`), each with the
/// bytes over the wire so far (Resource Timing's `transferSize`: headers and body as received,
/// compressed).
const FIRST_VISIT_PROBE: &str = r##"(() => {
  const QUERY = __QUERY__, KEY = "searchbar:bench";
  const now = () => performance.timeOrigin + performance.now();
  const bytes = () => performance.getEntriesByType("navigation")
    .concat(performance.getEntriesByType("resource"))
    .reduce((n, e) => n + e.transferSize, 0);
  const rec = { start: performance.timeOrigin };
  const save = () => sessionStorage.setItem(KEY, JSON.stringify(rec));
  save();
  const mark = (k, at) => {
    if (rec[k] != null) return;
    rec[k] = at || now();
    rec[k + "Bytes"] = bytes();
    // What the page had received by then: file name, bytes, when the page asked for it, when
    // its request went out (later where it waited for a connection) and when it ended (ms
    // from the navigation): the gaps between one file's end and the next's start are the
    // page's own work.
    rec[k + "Files"] = performance.getEntriesByType("navigation")
      .concat(performance.getEntriesByType("resource"))
      .map((e) => [e.name.split("/").pop(), e.transferSize, Math.round(e.startTime),
                   Math.round(e.requestStart), Math.round(e.responseEnd)]);
    save();
  };
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      if (e.name === "first-contentful-paint") mark("box", performance.timeOrigin + e.startTime);
    }
  }).observe({ type: "paint", buffered: true });
  let typed = false;
  new MutationObserver(() => {
    const q = document.getElementById("q");
    if (q && !typed) {
      typed = true;
      q.value = QUERY;
      q.setSelectionRange(QUERY.length, QUERY.length);
    }
    if (document.querySelector("#q[data-app]")) mark("app");
    const r = document.getElementById("results");
    if (!r || r.dataset.query !== QUERY || !r.querySelector("li.result")) return;
    mark("first");
    if (r.dataset.stage === "complete") mark("complete");
  }).observe(document, { subtree: true, childList: true, attributes: true });
})();"##;

/// The bytes over the wire of the page shown now (its document and every resource).
const PAGE_BYTES: &str = "return performance.getEntriesByType('navigation') \
    .concat(performance.getEntriesByType('resource')) \
    .reduce((n, e) => n + e.transferSize, 0);";

/// The first-visit benchmark (BENCHMARKS.md, "First visit"; `scripts/bench/first-visit.sh`):
/// the demo release served by `searchbar serve`, opened at its root in headless Chromium under
/// DevTools network throttling, cold (a new browser profile) then warm (the same browser, a
/// second visit); then, where `SEARCHBAR_FIRST_VISIT_SCIFACT` (or `_MILLION`) names a project
/// whose `stage` target serves a SciFact release (or scripts/bench/million.sh's), the same for
/// it with its first judged queries. A measurement, not a check: ignored by the test suite.
#[test]
#[ignore = "benchmark: scripts/bench/first-visit.sh"]
fn first_visit() {
    require_web_bundle();
    let p = Project::sample("");
    p.ok(&["run", "--env", "stage"]);
    let queries: Vec<String> = sample_queries().into_iter().map(|(_, q)| q).collect();
    let certs = tempfile::tempdir().unwrap();
    let tls = searchbar_tests::self_signed_cert(certs.path());
    let transports =
        std::env::var("SEARCHBAR_FIRST_VISIT_TRANSPORTS").unwrap_or_else(|_| "http1,h2".into());
    let transports: Vec<&str> = transports.split(',').collect();
    let mut rows = measure_catalog(
        "demo (sample catalog, hybrid)",
        p.path(),
        &queries,
        &transports,
        &tls,
    );
    // Projects the script made, each with its judged queries in BEIR's layout.
    let extra = [
        (
            "SEARCHBAR_FIRST_VISIT_SCIFACT",
            "SciFact (5,183 documents, hybrid)",
            std::env::var("SEARCHBAR_SCIFACT").ok(),
        ),
        (
            "SEARCHBAR_FIRST_VISIT_MILLION",
            "synthetic (1,000,000 documents, hybrid)",
            None,
        ),
    ];
    for (var, catalog, data) in extra {
        let Some(dir) = std::env::var_os(var) else {
            continue;
        };
        let data = data.unwrap_or_else(|| dir.to_string_lossy().to_string());
        let judged: std::collections::HashSet<String> =
            std::fs::read_to_string(format!("{data}/qrels/test.tsv"))
                .unwrap()
                .lines()
                .skip(1)
                .filter_map(|l| l.split('\t').next().map(str::to_string))
                .collect();
        let queries: Vec<String> = std::fs::read_to_string(format!("{data}/queries.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|q| judged.contains(q["_id"].as_str().unwrap()))
            .map(|q| q["text"].as_str().unwrap().to_string())
            .take(4)
            .collect();
        let dir = std::path::PathBuf::from(dir);
        rows.extend(measure_catalog(catalog, &dir, &queries, &transports, &tls));
    }
    let out_dir = searchbar_tests::repo_root().join("target/e2e");
    std::fs::create_dir_all(&out_dir).unwrap();
    std::fs::write(out_dir.join("first-visit.json"), json!(rows).to_string()).unwrap();
}

/// How many resources the page shown now has fetched.
const RESOURCE_COUNT: &str = "return performance.getEntriesByType('resource').length;";

/// The resources fetched since the first `arguments[0]`: name and bytes over the wire.
const RESOURCES_SINCE: &str = "return performance.getEntriesByType('resource') \
    .slice(arguments[0]).map(e => [e.name.split('/').pop(), e.transferSize]);";

/// [`first_visit`] for the project in `dir`, its `stage` target served by `searchbar serve`
/// over each of `transports`: `http1` (plain HTTP: HTTP/1.1, six connections at a time, as a
/// host without TLS) and `h2` (HTTPS with `tls`'s self-signed certificate, which the browser
/// trusts by its key: HTTP/2, as a CDN serves).
fn measure_catalog(
    catalog: &str,
    dir: &std::path::Path,
    queries: &[String],
    transports: &[&str],
    tls: &(std::path::PathBuf, std::path::PathBuf, String),
) -> Vec<serde_json::Value> {
    let mut rows = Vec::new();
    for &transport in transports {
        let (cert, key, spki) = tls;
        let mut args = vec![
            "serve".to_string(),
            "--env".into(),
            "stage".into(),
            "--listen".into(),
            "127.0.0.1:0".into(),
        ];
        let (scheme, trust) = match transport {
            "http1" => ("http", None),
            "h2" => {
                args.extend([
                    "--tls-cert".to_string(),
                    cert.display().to_string(),
                    "--tls-key".into(),
                    key.display().to_string(),
                ]);
                (
                    "https",
                    Some(format!("--ignore-certificate-errors-spki-list={spki}")),
                )
            }
            other => panic!("SEARCHBAR_FIRST_VISIT_TRANSPORTS: {other:?} is not http1 or h2"),
        };
        let mut server = std::process::Command::new(searchbar_tests::searchbar_bin())
            .current_dir(dir)
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("searchbar serve starts");
        let addr = searchbar_tests::served_address(&mut server);
        let url = format!("{scheme}://{addr}/");
        let mut measured = measure_first_visit(catalog, &url, trust.as_deref(), queries);
        for row in &mut measured {
            row["transport"] = json!(transport);
        }
        rows.extend(measured);
        server.kill().unwrap();
    }
    rows
}

/// [`first_visit`] for the release served at `url` (its root; `trust`: the browser switch
/// that trusts its certificate, where HTTPS): `queries[0]` put in the box at once, the next
/// three searched after it (bytes per later query).
fn measure_first_visit(
    catalog: &str,
    url: &str,
    trust: Option<&str>,
    queries: &[String],
) -> Vec<serde_json::Value> {
    let first = &queries[0];
    let later = &queries[1..4];
    // (name, download and upload in bytes per second, latency in ms): DevTools' figures for
    // 9 Mbit/s and Lighthouse's mobile profile (1.6 Mbit/s down, 750 kbit/s up, 150 ms).
    let profiles = [
        ("9 Mbit/s, 40 ms", 1_125_000, 1_125_000, 40),
        ("1.6 Mbit/s, 150 ms", 200_000, 93_750, 150),
    ];
    let probe = FIRST_VISIT_PROBE.replace("__QUERY__", &json!(first).to_string());
    let mut rows = Vec::new();
    for (profile, down, up, latency) in profiles {
        let b = Browser::start_with(trust.as_slice()).unwrap();
        b.cdp("Network.enable", json!({})).unwrap();
        b.cdp(
            "Network.emulateNetworkConditions",
            json!({"offline": false, "latency": latency, "downloadThroughput": down,
                   "uploadThroughput": up}),
        )
        .unwrap();
        b.cdp(
            "Page.addScriptToEvaluateOnNewDocument",
            json!({ "source": probe }),
        )
        .unwrap();
        for visit in ["cold", "warm"] {
            b.goto(url).unwrap();
            let rec = b
                .wait_for(
                    "const r = JSON.parse(sessionStorage.getItem('searchbar:bench') || 'null'); \
                     return r && r.complete ? r : null",
                    json!([]),
                    Duration::from_secs(600),
                )
                .unwrap_or_else(|e| panic!("{profile} {visit}: {e}; status: {:?}", status(&b)));
            b.eval("performance.setResourceTimingBufferSize(100000)", json!([]))
                .unwrap();
            let secs = |k: &str| {
                rec[k]
                    .as_f64()
                    .map(|t| (t - rec["start"].as_f64().unwrap()) / 1000.0)
            };
            // Each later query's bytes, and the files of the one that took most (name, bytes).
            let (mut per_query, mut largest) = (Vec::new(), json!([]));
            for q in later {
                let before = b.eval(PAGE_BYTES, json!([])).unwrap().as_f64().unwrap();
                let seen = b.eval(RESOURCE_COUNT, json!([])).unwrap();
                search(&b, q);
                let after = b.eval(PAGE_BYTES, json!([])).unwrap().as_f64().unwrap();
                if per_query.iter().all(|&n| after - before > n) {
                    largest = b.eval(RESOURCES_SINCE, json!([seen])).unwrap();
                }
                per_query.push(after - before);
            }
            let total = b.eval(PAGE_BYTES, json!([])).unwrap().as_f64().unwrap();
            let row = json!({
                "catalog": catalog,
                "profile": profile,
                "visit": visit,
                "box_s": secs("box"),
                "app_s": secs("app"),
                "first_result_s": secs("first"),
                "complete_s": secs("complete"),
                "bytes_before_first_result": rec["firstBytes"],
                "files_before_first_result": rec["firstFiles"],
                "bytes_before_complete": rec["completeBytes"],
                "bytes_per_later_query_max": per_query.iter().copied().fold(0.0, f64::max),
                "files_of_largest_later_query": largest,
                "total_bytes": total,
            });
            println!("{row}");
            rows.push(row);
        }
    }
    rows
}
