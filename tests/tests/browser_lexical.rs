//! A lexical-only release (`search.mode = "lexical"`) in headless Chromium: the page ranks by
//! words alone exactly as `searchbar query` does, and fetches only the lexical fragments its
//! queries need, not the whole index. A test binary of its own, so it never shares the machine
//! with the timing-sensitive browser test.

use searchbar_tests::page::{native, open, search};
use searchbar_tests::webdriver::Browser;
use searchbar_tests::{require_web_bundle, sample_queries, Project};
use serde_json::json;

#[test]
fn a_lexical_release_ranks_like_the_cli_and_fetches_only_the_fragments_it_needs() {
    require_web_bundle();
    let p = Project::sample("[search]\nmode = \"lexical\"\n");
    let out = p.ok(&["run", "--env", "stage"]);
    assert!(out.contains("ships lexical ranking"), "{out}");
    let release = p.live("stage").unwrap();
    let manifest = p.manifest("stage", &release);
    assert_eq!(manifest["search"]["mode"], "lexical");
    let fragments = manifest["files"]["lexical"]["fragments"]
        .as_array()
        .unwrap()
        .len();
    let (mut server, addr) = p.serve("stage");
    let b = Browser::start().unwrap();
    open(&b, &format!("http://{addr}/"));

    let mut queries: Vec<String> = sample_queries().into_iter().take(4).map(|q| q.1).collect();
    queries.extend(["qua", "quadcoptre", "xyzzy"].map(String::from));
    for q in &queries {
        let got = search(&b, q);
        assert_eq!(got, native(&p, q), "browser and CLI differ for {q:?}");
    }
    assert!(search(&b, "xyzzy").is_empty());

    let fetched = b
        .eval(
            "return new Set(performance.getEntriesByType('resource') \
               .map(e => e.name).filter(n => /lexical-\\d+-/.test(n))).size",
            json!([]),
        )
        .unwrap()
        .as_u64()
        .unwrap() as usize;
    assert!(
        fetched > 0 && fetched < fragments,
        "{fetched} of {fragments} lexical fragments fetched"
    );
    server.kill().unwrap();
}
