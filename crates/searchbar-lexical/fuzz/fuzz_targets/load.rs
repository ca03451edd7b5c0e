//! Any bytes must load as a root plus one fragment or fail with an error, never panic; what
//! loads must be searchable. The input is split at its first byte's value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use searchbar_lexical::{LexicalIndex, Loaded};

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let (root, fragment) = rest.split_at((split as usize * 4).min(rest.len()));
    if let Ok(index) = LexicalIndex::from_root(root, "root") {
        let mut loaded = Loaded::new(index.fragments());
        for n in 0..index.fragments().min(4) {
            if let Ok(f) = index.fragment(n, fragment, "fragment") {
                loaded.insert(n, f);
            }
        }
        for q in ["qua", "quality ozone", "qualitty "] {
            let _ = loaded.search(&index, q, 10);
        }
    }
});
