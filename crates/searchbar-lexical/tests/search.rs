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
        let mut have = Loaded::new(index.fragments());
        let mut fetched = 0;
        let got = loop {
            match index.search(q, 10, &|n| have.get(n)).unwrap() {
                Outcome::Done(m) => break m,
                Outcome::Need(list) => {
                    assert!(!list.is_empty());
                    for n in list {
                        assert!(!have.contains(n), "{q:?} asked twice for {n}");
                        have.insert(n, index.fragment(n, &b.fragments[n], "f").unwrap());
                        fetched += 1;
                    }
                }
            }
        };
        assert_eq!(got, want, "{q:?}");
        assert!(fetched < b.fragments.len(), "{q:?} fetched every fragment");
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
