//! Product quantizer codebook, laid out exactly like FAISS's
//! `ProductQuantizer::centroids`: `[m][ksub][dsub]` row-major f32, with
//! `ksub = 2^nbits` and `dsub = dim / m`.
//!
//! Codes are byte-aligned: one byte per sub-quantizer (`code_size = m`) for
//! every `nbits` in `1..=8`. For `nbits = 8` this is FAISS's layout; for
//! smaller `nbits` an exporter unpacks FAISS's bit-packed codes to bytes.

use crate::error::BuildError;
use crate::flat::check_dim;
use crate::kernels::l2_sq;

/// Trained product-quantizer centroids.
#[derive(Debug, Clone, PartialEq)]
pub struct PqCodebook {
    pub(crate) dim: usize,
    pub(crate) m: usize,
    pub(crate) nbits: u32,
    pub(crate) centroids: Vec<f32>,
    /// The same centroids transposed to `[m][dsub][ksub]`, so the lookup
    /// table is built with contiguous, vectorizable loops over `ksub`
    /// (FAISS's layout would make every dot product only `dsub` long).
    centroids_t: Vec<f32>,
}

impl PqCodebook {
    /// Validates and wraps a codebook: `dim % m == 0`, `nbits` in `1..=8`,
    /// `centroids.len() == m * 2^nbits * (dim / m)`, all finite.
    pub fn new(dim: usize, m: usize, nbits: u32, centroids: Vec<f32>) -> Result<Self, BuildError> {
        check_dim(dim)?;
        if m == 0 || m > dim || !dim.is_multiple_of(m) {
            return Err(BuildError::Dimension(format!(
                "m = {m} must divide dim = {dim}"
            )));
        }
        if !(1..=8).contains(&nbits) {
            return Err(BuildError::Invalid(format!("nbits {nbits} not in 1..=8")));
        }
        let expected = (1usize << nbits) * dim;
        if centroids.len() != expected {
            return Err(BuildError::Length {
                what: "pq centroids (m * 2^nbits * dim/m)",
                expected,
                got: centroids.len(),
            });
        }
        if centroids.iter().any(|v| !v.is_finite()) {
            return Err(BuildError::Invalid(
                "pq centroids contain a non-finite value".into(),
            ));
        }
        let (ksub, dsub) = (1usize << nbits, dim / m);
        let mut centroids_t = vec![0.0f32; centroids.len()];
        for sub in 0..m {
            for j in 0..ksub {
                for t in 0..dsub {
                    centroids_t[(sub * dsub + t) * ksub + j] =
                        centroids[(sub * ksub + j) * dsub + t];
                }
            }
        }
        Ok(Self {
            dim,
            m,
            nbits,
            centroids,
            centroids_t,
        })
    }

    /// Full vector dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of sub-quantizers (= bytes per code).
    pub fn m(&self) -> usize {
        self.m
    }

    /// Bits per sub-quantizer index.
    pub fn nbits(&self) -> u32 {
        self.nbits
    }

    /// Centroids per sub-quantizer, `2^nbits`.
    pub fn ksub(&self) -> usize {
        1 << self.nbits
    }

    /// Sub-vector dimension, `dim / m`.
    pub fn dsub(&self) -> usize {
        self.dim / self.m
    }

    /// Bytes per encoded vector.
    pub fn code_size(&self) -> usize {
        self.m
    }

    /// The raw `[m][ksub][dsub]` centroid array.
    pub fn centroids(&self) -> &[f32] {
        &self.centroids
    }

    /// Centroid `j` of sub-quantizer `sub` (both in range).
    fn centroid(&self, sub: usize, j: usize) -> &[f32] {
        let dsub = self.dsub();
        let start = (sub * self.ksub() + j) * dsub;
        &self.centroids[start..start + dsub]
    }

    /// Encodes `x` (length `dim`) as the nearest sub-centroid (L2, ties to
    /// the lowest index) per sub-vector, as FAISS's `compute_code` does
    /// regardless of the index metric.
    pub fn encode(&self, x: &[f32]) -> Result<Vec<u8>, BuildError> {
        let mut code = vec![0u8; self.m];
        self.encode_into(x, &mut code)?;
        Ok(code)
    }

    /// [`Self::encode`] into a caller buffer of length `m`.
    pub fn encode_into(&self, x: &[f32], code: &mut [u8]) -> Result<(), BuildError> {
        self.check_len("vector", x.len(), self.dim)?;
        self.check_len("code", code.len(), self.m)?;
        for (sub, (xs, c)) in x.chunks_exact(self.dsub()).zip(code.iter_mut()).enumerate() {
            let mut best = (f32::INFINITY, 0usize);
            for j in 0..self.ksub() {
                let d = l2_sq(xs, self.centroid(sub, j));
                if d < best.0 {
                    best = (d, j);
                }
            }
            // ksub <= 256, so the index fits a byte.
            *c = best.1 as u8;
        }
        Ok(())
    }

    /// Reconstructs a vector from its code (FAISS `decode` / `sa_decode`
    /// without the coarse centroid). Errors on wrong length or a code `>= ksub`.
    pub fn decode(&self, code: &[u8]) -> Result<Vec<f32>, BuildError> {
        let mut out = vec![0.0f32; self.dim];
        self.decode_into(code, &mut out)?;
        Ok(out)
    }

    /// [`Self::decode`] into a caller buffer of length `dim`.
    pub fn decode_into(&self, code: &[u8], out: &mut [f32]) -> Result<(), BuildError> {
        self.check_len("code", code.len(), self.m)?;
        self.check_len("output", out.len(), self.dim)?;
        self.check_code(code)?;
        for (sub, (o, &c)) in out.chunks_exact_mut(self.dsub()).zip(code).enumerate() {
            o.copy_from_slice(self.centroid(sub, usize::from(c)));
        }
        Ok(())
    }

    /// Errors when any sub-code is `>= ksub`.
    pub(crate) fn check_code(&self, code: &[u8]) -> Result<(), BuildError> {
        match code.iter().find(|&&c| usize::from(c) >= self.ksub()) {
            Some(c) => Err(BuildError::Invalid(format!(
                "code {c} >= ksub {}",
                self.ksub()
            ))),
            None => Ok(()),
        }
    }

    fn check_len(&self, what: &'static str, got: usize, expected: usize) -> Result<(), BuildError> {
        if got == expected {
            Ok(())
        } else {
            Err(BuildError::Length {
                what,
                expected,
                got,
            })
        }
    }

    /// Inner-product lookup table for asymmetric distance computation:
    /// `lut[sub][j] = <q_sub, centroid(sub, j)>`. Rows are padded to 256 with
    /// zeros so any byte code indexes in bounds. For inner product this table
    /// does not depend on the inverted list (the `<q, c>` term is added per list).
    pub(crate) fn ip_lut(&self, query: &[f32], lut: &mut Vec<[f32; 256]>) {
        let (ksub, dsub) = (self.ksub(), self.dsub());
        lut.clear();
        lut.resize(self.m, [0.0; 256]);
        let cols = self.centroids_t.chunks_exact(ksub);
        // Row `sub * dsub + t` of the transposed array holds component t of
        // every centroid of sub-quantizer `sub`.
        for (i, (col, &qv)) in cols.zip(query).enumerate() {
            let row = &mut lut[i / dsub][..ksub];
            for (r, &c) in row.iter_mut().zip(col) {
                *r += qv * c;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy() -> PqCodebook {
        // dim 4, m 2, nbits 1: sub-quantizer 0 centroids (0,0),(1,1); sub 1: (2,0),(0,2).
        PqCodebook::new(4, 2, 1, vec![0., 0., 1., 1., 2., 0., 0., 2.]).unwrap()
    }

    #[test]
    fn encode_decode_nearest() {
        let pq = toy();
        let code = pq.encode(&[0.9, 0.8, 0.1, 1.9]).unwrap();
        assert_eq!(code, vec![1, 1]);
        assert_eq!(pq.decode(&code).unwrap(), vec![1., 1., 0., 2.]);
        assert!(pq.decode(&[2, 0]).is_err());
        assert!(pq.encode(&[0.0; 3]).is_err());
    }

    #[test]
    fn lut_matches_decoded_dot() {
        let pq = toy();
        let q = [0.5f32, -1.0, 2.0, 0.25];
        let mut lut = Vec::new();
        pq.ip_lut(&q, &mut lut);
        let code = [1u8, 0];
        let dec = pq.decode(&code).unwrap();
        let direct: f32 = q.iter().zip(&dec).map(|(a, b)| a * b).sum();
        assert!((lut[0][1] + lut[1][0] - direct).abs() < 1e-6);
    }

    #[test]
    fn rejects_bad_shapes() {
        assert!(PqCodebook::new(4, 3, 1, vec![0.; 8]).is_err());
        assert!(PqCodebook::new(4, 2, 9, vec![0.; 2048]).is_err());
        assert!(PqCodebook::new(4, 2, 1, vec![0.; 7]).is_err());
        assert!(PqCodebook::new(4, 2, 1, vec![f32::NAN; 8]).is_err());
    }
}
