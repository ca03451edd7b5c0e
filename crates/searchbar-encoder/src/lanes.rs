//! Float reductions in a fixed order, for the fused ops (`attention.rs`, `layer_norm.rs`).
//!
//! Eight interleaved partial sums (two SIMD registers' worth) added up in one spelled-out
//! order: the compiler may vectorise the lanes, but it never reorders a float sum, so a
//! native build and the browser's wasm get the same bits.

/// `Σ f(a[i], b[i])` over the shorter of the two slices.
#[inline(always)]
pub(crate) fn sum_pairs(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f32 {
    let mut acc = [0f32; 8];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail = a8.remainder().iter().zip(b8.remainder());
    for (x, y) in a8.zip(b8) {
        // Fixed-size views: no bounds checks in the loop, so it vectorises.
        let (x, y): (&[f32; 8], &[f32; 8]) = (x.try_into().unwrap(), y.try_into().unwrap());
        for l in 0..8 {
            acc[l] += f(x[l], y[l]);
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (x, y) in tail {
        s += f(*x, *y);
    }
    s
}

/// `a · b` over the shorter of the two.
#[inline(always)]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    sum_pairs(a, b, |x, y| x * y)
}

/// `Σ f(x[i])`.
#[inline(always)]
pub(crate) fn sum_by(x: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    sum_pairs(x, x, |v, _| f(v))
}

/// The bits of `x` folded into one number (FNV-style), for tests that check that two
/// targets compute the same floats.
#[cfg(test)]
pub(crate) fn fingerprint(x: &[f32]) -> u64 {
    x.iter().fold(0u64, |h, v| {
        (h ^ v.to_bits() as u64).wrapping_mul(0x100000001b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_every_element_whatever_the_length() {
        for n in [0, 1, 7, 8, 9, 16, 33, 384] {
            // Small integers: every order of summing them is exact.
            let x: Vec<f32> = (0..n).map(|i| (i % 7) as f32).collect();
            let want: usize = (0..n).map(|i| i % 7).sum();
            assert_eq!(sum_by(&x, |v| v), want as f32, "n = {n}");
            let want: usize = (0..n).map(|i| (i % 7) * (i % 7)).sum();
            assert_eq!(dot(&x, &x), want as f32, "n = {n}");
        }
    }
}
