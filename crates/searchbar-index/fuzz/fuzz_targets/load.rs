//! Any byte string must load as an index or fail with an error, never
//! panic; an index that loads must be searchable.
#![no_main]

use libfuzzer_sys::fuzz_target;
use searchbar_index::{Index, SearchParams};

fuzz_target!(|data: &[u8]| {
    if let Ok(index) = Index::from_bytes(data) {
        let query = vec![0.5f32; index.dim()];
        let params = SearchParams {
            nprobe: usize::MAX,
            rerank: 32,
        };
        let _ = index.search(&query, 10, &params, None);
    }
});
