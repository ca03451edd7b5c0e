//! CI-run fuzzing of the lexical loader (fuzz/ holds the unbounded cargo-fuzz target): any
//! bytes, and mutated or truncated valid files, must load or be refused without a panic, and
//! whatever loads must search without one.
#![cfg(not(target_arch = "wasm32"))] // proptest is a native-only dev-dependency

use proptest::prelude::*;
use searchbar_lexical::{build, BuildConfig, Built, LexicalIndex, Loaded};
use std::sync::OnceLock;

fn seed() -> &'static Built {
    static SEED: OnceLock<Built> = OnceLock::new();
    SEED.get_or_init(|| {
        let docs: Vec<(String, String)> = (0..150)
            .map(|i| {
                (
                    format!("Document {i} about quality"),
                    format!("quantum tunnelling {} report number{i} ozone", i * 7 % 13),
                )
            })
            .collect();
        let cfg = BuildConfig {
            fragment_bytes: 256,
            ..BuildConfig::default()
        };
        build(&cfg, docs.iter().map(|(a, b)| (a.as_str(), b.as_str()))).unwrap()
    })
}

/// Loads a root and fragments, then searches with whatever loaded.
fn exercise(root: &[u8], fragments: &[Vec<u8>]) {
    let Ok(index) = LexicalIndex::from_root(root, "root") else {
        return;
    };
    let mut loaded = Loaded::new(index.fragments());
    for (n, bytes) in fragments.iter().enumerate().take(index.fragments()) {
        if let Ok(f) = index.fragment(n, bytes, "f") {
            loaded.insert(n, f);
        }
    }
    for q in ["qua", "quality ozone", "qualitty ", "document 1", "zz"] {
        if let Ok(m) = loaded.search(&index, q, 10) {
            assert!(m.hits.len() <= 10);
            assert!(m.hits.iter().all(|h| h.doc < index.documents()));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(root in proptest::collection::vec(any::<u8>(), 0..512),
                                   frag in proptest::collection::vec(any::<u8>(), 0..512)) {
        exercise(&root, &[frag]);
    }

    #[test]
    fn mutated_roots_never_panic(at in any::<prop::sample::Index>(), byte in any::<u8>(),
                                 cut in any::<prop::sample::Index>()) {
        let s = seed();
        let mut root = s.root.clone();
        let i = at.index(root.len());
        root[i] = byte;
        exercise(&root, &s.fragments);
        exercise(&s.root[..cut.index(s.root.len())], &s.fragments);
    }

    #[test]
    fn mutated_fragments_never_panic(which in any::<prop::sample::Index>(),
                                     at in any::<prop::sample::Index>(), byte in any::<u8>(),
                                     cut in any::<prop::sample::Index>()) {
        let s = seed();
        let mut frags = s.fragments.clone();
        let f = which.index(frags.len());
        let i = at.index(frags[f].len());
        frags[f][i] = byte;
        exercise(&s.root, &frags);
        let mut cut_frags = s.fragments.clone();
        let len = cut_frags[f].len();
        cut_frags[f].truncate(cut.index(len));
        exercise(&s.root, &cut_frags);
    }
}

#[test]
fn the_seed_itself_loads_and_finds() {
    let s = seed();
    // Common words' lists continue in postings blocks, so mutations reach that code too.
    assert!(s.long_lists > 0);
    let index = LexicalIndex::from_root(&s.root, "root").unwrap();
    let mut loaded = Loaded::new(index.fragments());
    for (n, b) in s.fragments.iter().enumerate() {
        loaded.insert(n, index.fragment(n, b, "f").unwrap());
    }
    assert_eq!(
        loaded.search(&index, "number17 ", 10).unwrap().hits.len(),
        1
    );
}
