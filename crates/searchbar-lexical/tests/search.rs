//! The lexical index end to end: built from real-looking documents, loaded whole or fetched
//! fragment by fragment as a page does, searched as a user types.

use searchbar_lexical::{build, BuildConfig, Built, LexicalIndex, Loaded, Matches, Outcome};

const DOCS: &[(&str, &str)] = &[
    (
        "Air quality in cities",
        "Fine particulate matter and ozone levels over a decade.",
    ),
    (
        "Quantum dots",
        "Semiconductor nanocrystals with size-tunable emission.",
    ),
    (
        "Water quality monitoring",
        "Sensors for nitrate and phosphate in rivers.",
    ),
    (
        "Lunar lander",
        "A descent stage for the Moon, with throttled engines.",
    ),
    (
        "Crème brûlée",
        "A custard dessert with a caramelised sugar top.",
    ),
    (
        "Running injuries",
        "Runners and the knee: a cohort study of marathon training.",
    ),
    (
        "Qualitative methods",
        "Interviews, coding and grounded theory.",
    ),
    (
        "Ozone layer",
        "Stratospheric ozone and ultraviolet radiation.",
    ),
];

fn built(fragment_bytes: usize) -> Built {
    let cfg = BuildConfig {
        fragment_bytes,
        ..BuildConfig::default()
    };
    build(&cfg, DOCS.iter().copied()).unwrap()
}

fn load(b: &Built) -> (LexicalIndex, Loaded) {
    let index = LexicalIndex::from_root(&b.root, "root").unwrap();
    let mut loaded = Loaded::new(index.fragments());
    for (n, bytes) in b.fragments.iter().enumerate() {
        loaded.insert(n, index.fragment(n, bytes, "fragment").unwrap());
    }
    (index, loaded)
}

fn titles(m: &Matches) -> Vec<&'static str> {
    m.hits.iter().map(|h| DOCS[h.doc as usize].0).collect()
}

fn search(text: &str) -> Matches {
    let b = built(256);
    let (index, loaded) = load(&b);
    loaded.search(&index, text, 10).unwrap()
}

#[test]
fn exact_words_rank_by_bm25f() {
    let m = search("ozone ");
    assert_eq!(titles(&m), ["Ozone layer", "Air quality in cities"]);
    assert!(m.hits[0].score > m.hits[1].score && m.hits[1].score > 0.0);
    // Stemming and folding on both sides.
    assert_eq!(titles(&search("runner ")), ["Running injuries"]);
    assert_eq!(titles(&search("CREME brulee ")), ["Crème brûlée"]);
}

#[test]
fn the_word_being_typed_matches_as_a_prefix() {
    let m = search("qua");
    let t = titles(&m);
    for want in [
        "Air quality in cities",
        "Quantum dots",
        "Water quality monitoring",
    ] {
        assert!(t.contains(&want), "{t:?}");
    }
    assert!(!t.contains(&"Lunar lander"), "{t:?}");
    // Once the word is finished (a space follows), it matches only itself.
    assert!(search("qua ").hits.is_empty());
    // The prefix narrows with the words before it.
    assert_eq!(titles(&search("air qua"))[0], "Air quality in cities");
}

#[test]
fn one_typo_is_forgiven_in_words_of_five_letters_or_more() {
    assert_eq!(
        titles(&search("qaulity monitoring "))[0],
        "Water quality monitoring"
    );
    assert_eq!(titles(&search("semicondutor ")), ["Quantum dots"]);
    // Short words are matched exactly only.
    assert!(search("ozne ").hits.is_empty());
    // A correct word is not corrected.
    assert!(!search("lunar ").terms.iter().any(|t| t != "lunar"));
}

#[test]
fn nonsense_and_stop_words_return_nothing() {
    for q in [
        "xyzzy",
        "xyzzy ",
        "the of and ",
        "",
        "   ",
        "!!!",
        "qzxv wpfh ",
    ] {
        assert!(search(q).hits.is_empty(), "{q:?}");
    }
}

#[test]
fn fragments_fetched_as_asked_give_the_same_answer_as_all_of_them() {
    let b = built(256);
    assert!(b.fragments.len() > 4, "{} fragments", b.fragments.len());
    let (index, all) = load(&b);
    for q in [
        "air qua",
        "qaulity monitoring ",
        "ozone stratospheric",
        "xyzzy",
        "cr",
    ] {
        let want = all.search(&index, q, 10).unwrap();
        let (got, fetched) = fetch_as_asked(&b, &index, q, 10);
        assert_eq!(got, want, "{q:?}");
        assert!(
            fetched.len() < b.fragments.len(),
            "{q:?} fetched every fragment"
        );
    }
}

#[test]
fn one_fragment_or_many_rank_the_same() {
    let (i1, l1) = load(&built(1 << 20));
    let (i2, l2) = load(&built(256));
    for q in ["air qua", "qaulity ", "running knee", "dessert"] {
        assert_eq!(
            l1.search(&i1, q, 10).unwrap(),
            l2.search(&i2, q, 10).unwrap()
        );
    }
}

#[test]
fn a_fragment_in_the_wrong_place_is_refused_by_name() {
    let b = built(256);
    let index = LexicalIndex::from_root(&b.root, "root").unwrap();
    let e = index
        .fragment(1, &b.fragments[0], "lexical-x.bin")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("lexical-x.bin:") && e.contains("fragment 0"),
        "{e}"
    );
}

#[test]
fn bad_settings_name_their_key() {
    for (cfg, key) in [
        (
            BuildConfig {
                b: 1.5,
                ..BuildConfig::default()
            },
            "b = 1.5",
        ),
        (
            BuildConfig {
                k1: 0.0,
                ..BuildConfig::default()
            },
            "k1 = 0",
        ),
        (
            BuildConfig {
                title_weight: -1.0,
                ..BuildConfig::default()
            },
            "title_weight = -1",
        ),
    ] {
        let e = build(&cfg, DOCS.iter().copied()).unwrap_err().to_string();
        assert!(e.contains(key), "{e}");
    }
}

/// 3,000 documents where "cell" is in every one and "protein" in every third: long lists,
/// whose tails go to postings blocks at 256-byte fragments.
fn long_lists(fragment_bytes: usize, budget: u32) -> Built {
    let docs: Vec<(String, String)> = (0..3000)
        .map(|i| {
            let extra = if i % 3 == 0 { " protein folding" } else { "" };
            (
                format!("Report {i}"),
                format!(
                    "cell{} {}{extra} membrane{}",
                    " cell".repeat(i % 7),
                    "signal ".repeat(i % 5),
                    " filler".repeat(i % 11)
                ),
            )
        })
        .collect();
    let cfg = BuildConfig {
        fragment_bytes,
        budget,
        ..BuildConfig::default()
    };
    build(&cfg, docs.iter().map(|(a, b)| (a.as_str(), b.as_str()))).unwrap()
}

/// Searches as a page does, fetching what each round names; returns the answer and the
/// fragments fetched.
fn fetch_as_asked(b: &Built, index: &LexicalIndex, q: &str, k: usize) -> (Matches, Vec<usize>) {
    let mut have = Loaded::new(index.fragments());
    let mut fetched = Vec::new();
    loop {
        match index.search(q, k, &|n| have.get(n)).unwrap() {
            Outcome::Done(m) => return (m, fetched),
            Outcome::Need(list) => {
                assert!(!list.is_empty());
                for n in list {
                    assert!(!have.contains(n), "{q:?} asked twice for {n}");
                    have.insert(n, index.fragment(n, &b.fragments[n], "f").unwrap());
                    fetched.push(n);
                }
            }
        }
    }
}

#[test]
fn long_lists_read_in_blocks_rank_as_whole_lists_when_the_budget_allows() {
    let blocked = long_lists(256, u32::MAX);
    assert!(blocked.long_lists >= 3, "{} long lists", blocked.long_lists);
    let whole = long_lists(1 << 24, u32::MAX);
    assert_eq!(whole.long_lists, 0);
    let (i1, l1) = load(&blocked);
    let (i2, l2) = load(&whole);
    for q in [
        "cell ",
        "protein cell signal ",
        "membrane fil",
        "prot",
        "report 17 ",
    ] {
        let want = l2.search(&i2, q, 100).unwrap();
        assert_eq!(l1.search(&i1, q, 100).unwrap(), want, "{q:?}");
        assert_eq!(fetch_as_asked(&blocked, &i1, q, 100).0, want, "{q:?}");
    }
}

#[test]
fn the_budget_bounds_the_blocks_a_query_reads_and_every_reader_reads_the_same() {
    let budget = 600;
    let b = long_lists(256, budget);
    let (index, all) = load(&b);
    let first_block = index.root().first_block();
    let exhaustive = LexicalIndex::from_root(&b.root, "root")
        .unwrap()
        .with_budget(u32::MAX);
    for q in ["cell ", "protein cell signal ", "cell memb"] {
        let (got, fetched) = fetch_as_asked(&b, &index, q, 10);
        // A page, fetching block by block, gets what a reader holding every block gets.
        assert_eq!(got, all.search(&index, q, 10).unwrap(), "{q:?}");
        let blocks: Vec<usize> = fetched.into_iter().filter(|&n| n >= first_block).collect();
        assert!(!blocks.is_empty(), "{q:?} read no block");
        let postings: usize = blocks
            .iter()
            .map(|&n| match all.get(n) {
                Some(searchbar_lexical::Fragment::Postings(p)) => {
                    p.segments.iter().map(|s| s.1.len()).sum::<usize>()
                }
                other => panic!("fragment {n} is {other:?}"),
            })
            .sum();
        // Blocks are taken while fewer than `budget` postings are read: at most one over.
        let largest = 256; // a 256-byte block holds at most 256 one-byte gaps
        assert!(
            postings < budget as usize + largest,
            "{q:?}: {postings} postings"
        );
        // Every block of every term would be far more.
        let all_blocks = index.fragments() - first_block;
        assert!(
            blocks.len() * 4 < all_blocks,
            "{q:?}: {} of {all_blocks}",
            blocks.len()
        );
        // A score read within the budget is a lower bound of the document's full score; a
        // one-word query, read highest impact first, ranks exactly as with every block.
        let full = all.search(&exhaustive, q, 3000).unwrap();
        for h in &got.hits {
            let f = full.hits.iter().find(|f| f.doc == h.doc).unwrap();
            assert!(h.score <= f.score, "{q:?}: {h:?} above {f:?}");
        }
        if q == "cell " {
            assert_eq!(got.hits, full.hits[..10], "{q:?}");
        }
    }
}
