//! Shared fixtures: small deterministic corpora and indexes built with the
//! crate's test-only trainer.
#![allow(dead_code)]

use searchbar_index::testing::{clustered_unit_vectors, kmeans, train_pq};
use searchbar_index::{FlatInt8, Index, IvfPq};

/// A corpus with trained IVF-PQ parts.
pub struct Fixture {
    pub dim: usize,
    pub data: Vec<f32>,
    pub queries: Vec<f32>,
}

impl Fixture {
    pub fn new(n: usize, dim: usize, seed: u64) -> Self {
        Self {
            dim,
            data: clustered_unit_vectors(n, dim, 24, 0.6, seed),
            queries: clustered_unit_vectors(20, dim, 24, 0.6, seed),
        }
    }

    pub fn n(&self) -> usize {
        self.data.len() / self.dim
    }

    pub fn query(&self, i: usize) -> &[f32] {
        &self.queries[i * self.dim..(i + 1) * self.dim]
    }

    pub fn n_queries(&self) -> usize {
        self.queries.len() / self.dim
    }

    pub fn flat(&self) -> Index {
        FlatInt8::build(self.dim, &self.data).unwrap().into()
    }

    /// IVF-PQ with `nlist` lists and an `m x nbits` PQ trained on residuals
    /// (or raw vectors when `!by_residual`).
    pub fn ivfpq(&self, nlist: usize, m: usize, nbits: u32, by_residual: bool) -> Index {
        let d = self.dim;
        // Training on a prefix keeps debug-mode test time low.
        let sample = &self.data[..self.data.len().min(1024 * d)];
        let centroids = kmeans(sample, d, nlist, 5, 7);
        let train: Vec<f32> = if by_residual {
            sample
                .chunks_exact(d)
                .flat_map(|x| {
                    let c = centroids
                        .chunks_exact(d)
                        .max_by(|a, b| ip(x, a).total_cmp(&ip(x, b)))
                        .unwrap();
                    x.iter().zip(c).map(|(a, b)| a - b).collect::<Vec<_>>()
                })
                .collect()
        } else {
            sample.to_vec()
        };
        let pq = train_pq(&train, d, m, nbits, 4, 11).unwrap();
        IvfPq::build(&self.data, centroids, pq, by_residual)
            .unwrap()
            .into()
    }
}

pub fn ip(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
