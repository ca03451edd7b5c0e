//! The search bar in a real browser: the bundle built by trunk, a release made by the real
//! pipeline, served by `searchbar serve`, driven in Debian's headless Chromium. One release
//! ([`sample_release`]) is shared by these tests, each with its own browser. How fast the page
//! answers and how responsive it stays are `tests/browser.rs`'s, which runs alone.

use searchbar_tests::page::{native, open_sample, search, status};
use searchbar_tests::repo_root;
use searchbar_tests::sample_queries;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

#[test]
fn judged_queries_find_their_best_document_and_rank_as_the_cli_does() {
    let (b, served) = open_sample();
    let qrels = std::fs::read_to_string(repo_root().join("data/catalog/qrels.tsv")).unwrap();
    let mut best: BTreeMap<String, (i64, String)> = BTreeMap::new();
    for row in qrels.lines().skip(1) {
        let f: Vec<&str> = row.split('\t').collect();
        let grade: i64 = f[2].parse().unwrap();
        let e = best
            .entry(f[0].to_string())
            .or_insert((grade, f[1].to_string()));
        if grade > e.0 {
            *e = (grade, f[1].to_string());
        }
    }
    let mut found = 0;
    for (id, text) in sample_queries().iter().take(12) {
        let got = search(&b, text);
        assert_eq!(
            got,
            native(&served.project, text),
            "browser and CLI differ for {text:?}"
        );
        if got.contains(&best[id].1) {
            found += 1;
        }
    }
    assert!(
        found >= 11,
        "the best judged document was in the top results for only {found} of 12 queries"
    );
    // Screenshot for the CI artifacts and the README.
    search(&b, "monitor air quality at home");
    let out_dir = repo_root().join("target/e2e");
    std::fs::create_dir_all(&out_dir).unwrap();
    std::fs::write(out_dir.join("searchbar.png"), b.screenshot().unwrap()).unwrap();
}

#[test]
fn markup_in_a_document_is_shown_as_text_and_never_runs() {
    let (b, _) = open_sample();
    let got = search(&b, "tide tables for harbour pilots");
    assert_eq!(got.first().map(String::as_str), Some("p901-markup"));
    assert!(
        !got.iter().any(|id| id == "p902-script-link"),
        "a row with a script link shipped: {got:?}"
    );
    let v = b
        .eval(
            "const li = document.querySelector('#results li.result'); \
             return [window.__xss || 0, li.textContent, li.querySelectorAll('img,b').length];",
            json!([]),
        )
        .unwrap();
    assert_eq!(v[0], 0, "markup from a document ran");
    assert!(v[1].as_str().unwrap().contains("<img"), "{v}");
    assert_eq!(v[2], 0, "{v}");
}

#[test]
fn odd_input_never_puts_the_page_in_an_error_state() {
    let (b, _) = open_sample();
    for q in [
        "",
        "a",
        "!!! ???",
        "🙂🚀🙂",
        "東京の天気と大気汚染",
        &"sensor network ".repeat(340),
    ] {
        let input = b.find("#q").unwrap();
        b.clear(&input).unwrap();
        b.type_into(&input, q).unwrap();
        std::thread::sleep(Duration::from_millis(400));
        let st = status(&b);
        assert_ne!(
            st[0],
            "error",
            "query {:?} put the page in an error state: {st}",
            &q[..q.len().min(40)]
        );
    }
    assert!(
        !search(&b, "kids coding games").is_empty(),
        "the page still works"
    );
}

/// Hybrid search as a person types: a half-typed word is ranked by its completions, the page
/// fetching the lexical fragments it needs, exactly as `searchbar query` ranks it, and every
/// form of a completed word is marked; nonsense gets no results.
#[test]
fn a_half_typed_word_is_ranked_by_its_completions_and_nonsense_finds_nothing() {
    let (b, served) = open_sample();
    let got = search(&b, "qua");
    assert!(!got.is_empty());
    assert_eq!(got, native(&served.project, "qua"));
    let marks = b
        .eval(
            "return Array.from(document.querySelectorAll('#results li.result mark')) \
               .map(m => m.textContent.toLowerCase());",
            json!([]),
        )
        .unwrap();
    assert!(
        marks
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m.as_str().unwrap().starts_with("qua")),
        "no completion of qua marked: {marks}"
    );
    assert!(search(&b, "xyzzy").is_empty());
    assert_eq!(native(&served.project, "xyzzy"), Vec::<String>::new());
}

/// The combobox: arrow keys move the active option, hovering a row picks it, Escape clears the
/// box, the list and the box's ARIA state.
#[test]
fn arrow_keys_hover_and_escape_drive_the_list_and_its_aria_state() {
    let (b, _) = open_sample();
    search(&b, "monitor air quality at home");
    // The input's active descendant, the ids of rows marked active and selected, how many
    // query words are marked and whether the box says the list is expanded, once the active
    // descendant is `arguments[0]`.
    let active = "const q = document.querySelector('#q'); \
        const ids = css => Array.from(document.querySelectorAll(css)).map(li => li.id); \
        return q.getAttribute('aria-activedescendant') === arguments[0] \
          ? [ids('#results li.active'), ids('#results li[aria-selected=true]'), \
             document.querySelectorAll('#results li.result mark').length, \
             q.getAttribute('aria-expanded')] : null;";
    let input = b.find("#q").unwrap();
    for (keys, want) in [("\u{E015}\u{E015}", "result-1"), ("\u{E013}", "result-0")] {
        b.type_into(&input, keys).unwrap();
        let v = b
            .wait_for(active, json!([want]), Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("keys to {want}: {e}"));
        assert_eq!(v[0], json!([want]), "{v}");
        assert_eq!(v[1], json!([want]), "{v}");
        assert!(v[2].as_u64().unwrap() > 0, "no query word marked: {v}");
        assert_eq!(v[3], json!("true"), "aria-expanded with results: {v}");
    }
    b.eval(
        // What a pointer moving onto the row's snippet fires.
        "const s = document.querySelector('#result-2 .snippet'); \
         s.dispatchEvent(new MouseEvent('mouseover', { bubbles: true })); \
         s.closest('li').dispatchEvent(new MouseEvent('mouseenter'));",
        json!([]),
    )
    .unwrap();
    let v = b
        .wait_for(active, json!(["result-2"]), Duration::from_secs(10))
        .unwrap();
    assert_eq!(v[0], json!(["result-2"]), "hover: {v}");
    b.type_into(&input, "\u{E00C}").unwrap();
    let cleared = b
        .wait_for(
            "const r = document.querySelector('#results'), q = document.querySelector('#q'); \
             return q.value === '' ? [r.hidden, r.querySelectorAll('li').length, \
               q.getAttribute('aria-expanded'), q.hasAttribute('aria-activedescendant')] : null;",
            json!([]),
            Duration::from_secs(10),
        )
        .unwrap();
    assert_eq!(
        cleared,
        json!([true, 0, "false", false]),
        "Escape clears box, list and the box's ARIA state"
    );
}

/// `searchbar serve` makes the page cross-origin isolated, so a worker takes a share of each
/// query's matmuls (web/encoder/src/worker.rs), and the results stay the CLI's.
#[test]
fn an_isolated_page_shares_its_queries_matmuls_with_a_worker() {
    let (b, served) = open_sample();
    // The worker starts once the encoder has loaded, which the first query waits for.
    assert!(!search(&b, "monitor air quality at home").is_empty());
    let helper = b
        .wait_for(
            "const h = window.__searchbar.helper; \
             return h === 'starting' ? null : [self.crossOriginIsolated, h];",
            json!([]),
            Duration::from_secs(60),
        )
        .unwrap();
    assert_eq!(
        helper,
        json!([true, "ready"]),
        "isolated page, helper state"
    );
    for (_, text) in sample_queries().iter().skip(12).take(8) {
        assert_eq!(
            search(&b, text),
            native(&served.project, text),
            "browser and CLI differ for {text:?} with the worker"
        );
    }
    let panels = b
        .eval("return window.__searchbar.helperPanels", json!([]))
        .unwrap();
    assert!(
        panels.as_f64().unwrap_or(0.0) > 0.0,
        "the worker computed no part of 8 queries' matmuls: {panels}"
    );
}
