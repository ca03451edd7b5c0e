//! CI-run fuzzing of `Index::from_bytes` (the cargo-fuzz target in `fuzz/`
//! does the same without bounds): arbitrary bytes, and mutated or truncated
//! valid files, must never panic; any file that does load must be searchable.
#![cfg(not(target_arch = "wasm32"))] // proptest is a native-only dev-dependency

mod common;

use common::Fixture;
use proptest::prelude::*;
use searchbar_index::testing::reseal;
use searchbar_index::{Index, SearchError, SearchParams};
use std::sync::OnceLock;

/// Small valid files of each kind (IVF-PQ with 4-bit codes so that
/// out-of-range code bytes are possible).
fn seeds() -> &'static [Vec<u8>] {
    static SEEDS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let fx = Fixture::new(300, 8, 42);
        vec![
            fx.flat().to_bytes(),
            fx.ivfpq(4, 2, 4, true).to_bytes(),
            fx.ivfpq(3, 4, 8, false).to_bytes(),
            external(fx.ivfpq(4, 4, 8, true)).to_bytes(),
            split(fx.ivfpq(4, 2, 4, true)).to_bytes(),
        ]
    })
}

/// The same index with its int8 vectors in a separate rows file (the file
/// itself is not needed to load the index).
fn external(index: Index) -> Index {
    match index {
        Index::IvfPq(i) => i.into_external().unwrap().0.into(),
        flat => flat,
    }
}

/// The same index with external rows and its lists in a lists file (a root:
/// the lists file itself is not needed to load it).
fn split(index: Index) -> Index {
    match index {
        Index::IvfPq(i) => {
            let (external, rows) = i.into_external().unwrap();
            external.into_split(Some(rows)).unwrap().0.into()
        }
        flat => flat,
    }
}

/// Loading must not panic; a loaded index must search without panicking
/// (one with a separate rows file: its first stage, and every candidate
/// must have a row range; one with a lists file: every list it would fetch
/// has a range, and an empty list where one is empty is accepted or refused
/// without a panic).
fn load_and_search(bytes: &[u8]) {
    if let Ok(index) = Index::from_bytes(bytes) {
        let query = vec![0.25f32; index.dim()];
        let params = SearchParams {
            nprobe: usize::MAX,
            rerank: 16,
        };
        if !index.lists_in_memory() {
            let mut have = searchbar_index::FetchedLists::new();
            let missing = index
                .missing_lists(&query, &params, &have)
                .expect("valid query");
            for (l, range) in missing {
                assert!(range.start <= range.end);
                let _ = index.insert_list(&mut have, l, &[]);
            }
            let _ = index.candidates_in(&query, 10, &params, None, &have);
            return;
        }
        let (hits, cap) = match index.search(&query, 10, &params, None) {
            Err(SearchError::RowsNotAttached) => {
                let c = index
                    .candidates(&query, 10, &params, None)
                    .expect("valid query");
                assert!(c.docs().iter().all(|&d| index.row_range(d).is_some()));
                (c.hits().to_vec(), 16)
            }
            other => (other.expect("valid query"), 10),
        };
        assert!(hits.len() <= index.len().min(cap));
        assert!(hits.iter().all(|h| (h.doc as usize) < index.len()));
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    /// Overwrite one byte (position taken modulo the length).
    Set(usize, u8),
    /// Overwrite a little-endian u32 / u64 (interesting for counts and offsets).
    SetU32(usize, u32),
    SetU64(usize, u64),
    /// Cut the file (length modulo the current length + 1).
    Truncate(usize),
    /// Append junk.
    Extend(Vec<u8>),
}

fn position() -> impl Strategy<Value = usize> {
    // Bias towards the header and metadata, where structure lives.
    prop_oneof![0usize..80, 0usize..400, any::<usize>()]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (position(), any::<u8>()).prop_map(|(p, v)| Mutation::Set(p, v)),
        (
            position(),
            prop_oneof![Just(0u32), Just(1), Just(u32::MAX), any::<u32>()]
        )
            .prop_map(|(p, v)| Mutation::SetU32(p, v)),
        (
            position(),
            prop_oneof![Just(0u64), Just(1 << 33), Just(u64::MAX), any::<u64>()]
        )
            .prop_map(|(p, v)| Mutation::SetU64(p, v)),
        any::<usize>().prop_map(Mutation::Truncate),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(Mutation::Extend),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let put = |bytes: &mut Vec<u8>, p: usize, v: &[u8]| {
        if bytes.len() >= v.len() {
            let p = p % (bytes.len() - v.len() + 1);
            bytes[p..p + v.len()].copy_from_slice(v);
        }
    };
    match m {
        Mutation::Set(p, v) => put(bytes, *p, &[*v]),
        Mutation::SetU32(p, v) => put(bytes, *p, &v.to_le_bytes()),
        Mutation::SetU64(p, v) => put(bytes, *p, &v.to_le_bytes()),
        Mutation::Truncate(n) => {
            let n = n % (bytes.len() + 1);
            bytes.truncate(n);
        }
        Mutation::Extend(junk) => bytes.extend_from_slice(junk),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        load_and_search(&bytes);
    }

    #[test]
    fn arbitrary_bytes_with_valid_prefix_never_panic(
        cut in 0usize..80,
        tail in proptest::collection::vec(any::<u8>(), 0..1024),
    ) {
        // A genuine header start gets past the magic/version checks.
        let mut bytes = seeds()[1][..cut.min(seeds()[1].len())].to_vec();
        bytes.extend_from_slice(&tail);
        load_and_search(&bytes);
    }

    #[test]
    fn mutated_files_never_panic(
        seed in 0usize..4,
        mutations in proptest::collection::vec(mutation(), 1..5),
        resealed in any::<bool>(),
    ) {
        let mut bytes = seeds()[seed].clone();
        for m in &mutations {
            apply(&mut bytes, m);
        }
        // Resealing recomputes checksums so mutations reach the structural checks.
        if resealed {
            reseal(&mut bytes);
        }
        load_and_search(&bytes);
    }
}

#[test]
fn seeds_load() {
    for bytes in seeds() {
        let index = Index::from_bytes(bytes).unwrap();
        assert_eq!(index.len(), 300);
        load_and_search(bytes);
    }
}
