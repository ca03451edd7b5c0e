//! **Test and fuzz fixtures only — not the production trainer.**
//!
//! Production coarse centroids and PQ codebooks come from FAISS on the
//! pipeline side. These helpers exist so this crate's tests (and fuzz seeds)
//! can build small, deterministic IVF-PQ indexes without FAISS: a seeded
//! RNG, synthetic unit vectors, a naive Lloyd k-means, and a PQ trainer on
//! top of it. They are slow (O(n·k·d) per iteration) and untuned.

use crate::error::BuildError;
use crate::kernels::{dot_f32, l2_sq};
use crate::pq::PqCodebook;
use crate::topk::{sort_truncate, Hit};

/// The seeded generator fixtures draw from.
pub use crate::rng::SplitMix64 as Rng;

/// Scales `v` to unit L2 norm (left as is when zero).
pub fn normalize(v: &mut [f32]) {
    let norm = dot_f32(v, v).sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// `n` unit vectors of dimension `dim` drawn around `clusters` random
/// centres (noise level `spread`), row-major. Clustered data behaves more
/// like sentence embeddings than uniform noise does.
pub fn clustered_unit_vectors(
    n: usize,
    dim: usize,
    clusters: usize,
    spread: f32,
    seed: u64,
) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let mut centres = vec![0.0f32; clusters.max(1) * dim];
    for c in centres.chunks_exact_mut(dim) {
        c.iter_mut().for_each(|x| *x = rng.gaussian());
        normalize(c);
    }
    let mut out = vec![0.0f32; n * dim];
    for v in out.chunks_exact_mut(dim) {
        let c = rng.below(clusters.max(1));
        let centre = &centres[c * dim..(c + 1) * dim];
        for (x, &m) in v.iter_mut().zip(centre) {
            *x = m + spread * rng.gaussian() / (dim as f32).sqrt();
        }
        normalize(v);
    }
    out
}

/// Naive Lloyd k-means (L2) on row-major `data`: `k` distinct data points as
/// seeds, `iters` rounds, empty clusters keep their previous centroid.
/// Returns `k * dim` centroids. Deterministic for a given `seed`.
pub fn kmeans(data: &[f32], dim: usize, k: usize, iters: usize, seed: u64) -> Vec<f32> {
    let n = data.len() / dim;
    assert!(k > 0 && n >= k, "kmeans needs at least k points");
    let mut rng = Rng::new(seed);
    // Partial Fisher-Yates picks k distinct seeds.
    let mut order: Vec<usize> = (0..n).collect();
    for i in 0..k {
        let j = i + rng.below(n - i);
        order.swap(i, j);
    }
    let mut centroids: Vec<f32> = order[..k]
        .iter()
        .flat_map(|&i| data[i * dim..(i + 1) * dim].iter().copied())
        .collect();
    let mut sums = vec![0.0f64; k * dim];
    let mut counts = vec![0usize; k];
    for _ in 0..iters {
        sums.fill(0.0);
        counts.fill(0);
        for x in data.chunks_exact(dim) {
            let mut best = (f32::INFINITY, 0usize);
            for (c, cent) in centroids.chunks_exact(dim).enumerate() {
                let d = l2_sq(x, cent);
                if d < best.0 {
                    best = (d, c);
                }
            }
            counts[best.1] += 1;
            for (s, &v) in sums[best.1 * dim..(best.1 + 1) * dim].iter_mut().zip(x) {
                *s += f64::from(v);
            }
        }
        for c in 0..k {
            if counts[c] > 0 {
                for j in 0..dim {
                    centroids[c * dim + j] = (sums[c * dim + j] / counts[c] as f64) as f32;
                }
            }
        }
    }
    centroids
}

/// Trains a PQ codebook with [`kmeans`] per sub-space (needs at least
/// `2^nbits` training vectors).
pub fn train_pq(
    data: &[f32],
    dim: usize,
    m: usize,
    nbits: u32,
    iters: usize,
    seed: u64,
) -> Result<PqCodebook, BuildError> {
    if m == 0 || !dim.is_multiple_of(m) {
        return Err(BuildError::Dimension(format!(
            "m = {m} must divide dim = {dim}"
        )));
    }
    let dsub = dim / m;
    let ksub = 1usize << nbits.min(8);
    let mut centroids = Vec::with_capacity(m * ksub * dsub);
    for sub in 0..m {
        let slice: Vec<f32> = data
            .chunks_exact(dim)
            .flat_map(|x| x[sub * dsub..(sub + 1) * dsub].iter().copied())
            .collect();
        centroids.extend(kmeans(
            &slice,
            dsub,
            ksub,
            iters,
            seed.wrapping_add(sub as u64),
        ));
    }
    PqCodebook::new(dim, m, nbits, centroids)
}

/// Exact f32 inner-product top-`k` (brute force), same tie order as the index.
pub fn exact_search(data: &[f32], dim: usize, query: &[f32], k: usize) -> Vec<Hit> {
    let mut hits: Vec<Hit> = (0u32..)
        .zip(data.chunks_exact(dim))
        .map(|(doc, x)| Hit {
            doc,
            score: dot_f32(query, x),
        })
        .collect();
    sort_truncate(&mut hits, k);
    hits
}

/// Recomputes all checksums of a (mutated) index file so the mutation gets
/// past integrity checks and exercises structural validation. Leaves bytes
/// whose header/metadata cannot be parsed unchanged.
pub fn reseal(bytes: &mut [u8]) {
    crate::format::reseal(bytes);
}

/// The root and lists file that format version 4 wrote for `index` (external rows, lists in
/// memory): each entry carries its row's digest, and the rows file is
/// [`crate::IvfPq::into_external`]'s as it is. Kept so that the reader of what earlier releases
/// deployed stays tested. `None` for an index without per-doc row digests.
pub fn split_version_4(index: &crate::IvfPq) -> Option<(Vec<u8>, Vec<u8>)> {
    use crate::ivfpq::ListsFile;
    use crate::lists::{encode, ListRows};
    let digests = index.digests.as_ref().filter(|d| !d.is_empty())?;
    let encoded = encode(
        &index.offsets,
        &index.ids,
        &index.codes,
        index.pq.m,
        ListRows::Digests,
        digests,
    );
    let mut split = index.clone();
    split.lists_file = Some(ListsFile {
        digests: encoded.digests,
        attached: true,
        rows: ListRows::Digests,
        row_roots: Vec::new(),
    });
    let mut root = crate::Index::from(split).to_bytes();
    root[8..12].copy_from_slice(&4u32.to_le_bytes());
    reseal(&mut root);
    Some((root, encoded.file))
}
