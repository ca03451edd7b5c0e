//! Inner loops. Written over fixed-width chunks with independent
//! accumulators so LLVM auto-vectorizes them natively (SSE/AVX) without
//! `unsafe` or target-specific intrinsics. rustc leaves them scalar for
//! wasm32, so the browser's forms spell simd128 out (module `wasm`).
//!
//! Float sums use a fixed lane count and a fixed reduction order, so results
//! are bit-identical across targets (Rust never contracts to FMA implicitly).

/// Lanes for float accumulation: wide enough for AVX (8 x f32) and
/// unrolled twice to hide add latency.
const F32_LANES: usize = 16;

/// Integer dot product of two int8 vectors (exact; see the portable loop).
#[inline]
pub(crate) fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return wasm::dot_i8(a, b);
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    dot_i8_portable(a, b)
}

/// `sum(q[i] * x[i])` with `x` int8, accumulated in f32 lanes.
#[inline]
pub(crate) fn dot_f32_i8(q: &[f32], x: &[i8]) -> f32 {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return wasm::dot_f32_i8(q, x);
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    dot_f32_i8_portable(q, x)
}

/// Integer dot product of two int8 vectors. Exact: each product fits i16
/// (|x*y| <= 128*128) and i32 sums cannot overflow for `len <= MAX_DIM`
/// (16384 * 65536 < 2^31). Multiplying in i16 and widening only for the
/// add lets baseline SSE2 (and wasm simd128) use 8/16-lane multiplies,
/// where an i32 multiply has half the lanes.
#[inline]
#[cfg_attr(
    all(target_arch = "wasm32", target_feature = "simd128"),
    allow(dead_code)
)]
fn dot_i8_portable(a: &[i8], b: &[i8]) -> i32 {
    debug_assert_eq!(a.len(), b.len());
    const LANES: usize = 16;
    let mut acc = [0i32; LANES];
    let ac = a.chunks_exact(LANES);
    let bc = b.chunks_exact(LANES);
    let (ar, br) = (ac.remainder(), bc.remainder());
    for (x, y) in ac.zip(bc) {
        for i in 0..LANES {
            acc[i] += i32::from(i16::from(x[i]) * i16::from(y[i]));
        }
    }
    let tail: i32 = ar
        .iter()
        .zip(br)
        .map(|(&x, &y)| i32::from(x) * i32::from(y))
        .sum();
    acc.iter().sum::<i32>() + tail
}

/// `sum(q[i] * x[i])` with `x` int8, accumulated in f32 lanes.
#[inline]
#[cfg_attr(
    all(target_arch = "wasm32", target_feature = "simd128"),
    allow(dead_code)
)]
fn dot_f32_i8_portable(q: &[f32], x: &[i8]) -> f32 {
    debug_assert_eq!(q.len(), x.len());
    let mut acc = [0.0f32; F32_LANES];
    let qc = q.chunks_exact(F32_LANES);
    let xc = x.chunks_exact(F32_LANES);
    let (qr, xr) = (qc.remainder(), xc.remainder());
    for (qa, xa) in qc.zip(xc) {
        for i in 0..F32_LANES {
            acc[i] += qa[i] * f32::from(xa[i]);
        }
    }
    let mut tail = 0.0f32;
    for (&a, &b) in qr.iter().zip(xr) {
        tail += a * f32::from(b);
    }
    reduce(&acc) + tail
}

/// `sum(a[i] * b[i])` in f32 lanes.
#[inline]
pub(crate) fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [0.0f32; F32_LANES];
    let ac = a.chunks_exact(F32_LANES);
    let bc = b.chunks_exact(F32_LANES);
    let (ar, br) = (ac.remainder(), bc.remainder());
    for (aa, ba) in ac.zip(bc) {
        for i in 0..F32_LANES {
            acc[i] += aa[i] * ba[i];
        }
    }
    let mut tail = 0.0f32;
    for (&x, &y) in ar.iter().zip(br) {
        tail += x * y;
    }
    reduce(&acc) + tail
}

/// Squared L2 distance in f32 lanes.
#[inline]
pub(crate) fn l2_sq(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [0.0f32; F32_LANES];
    let ac = a.chunks_exact(F32_LANES);
    let bc = b.chunks_exact(F32_LANES);
    let (ar, br) = (ac.remainder(), bc.remainder());
    for (aa, ba) in ac.zip(bc) {
        for i in 0..F32_LANES {
            let d = aa[i] - ba[i];
            acc[i] += d * d;
        }
    }
    let mut tail = 0.0f32;
    for (&x, &y) in ar.iter().zip(br) {
        let d = x - y;
        tail += d * d;
    }
    reduce(&acc) + tail
}

/// Pairwise tree reduction in a fixed order (deterministic).
#[inline]
fn reduce(acc: &[f32; F32_LANES]) -> f32 {
    let mut v = *acc;
    let mut width = F32_LANES / 2;
    while width > 0 {
        for i in 0..width {
            v[i] += v[i + width];
        }
        width /= 2;
    }
    v[0]
}

/// Sum of per-subquantizer LUT entries for one PQ code. Each LUT row is
/// padded to 256 entries so any `u8` code indexes in bounds (no per-lookup
/// bounds check after the array conversion).
#[inline]
pub(crate) fn lut_sum(lut: &[[f32; 256]], code: &[u8]) -> f32 {
    debug_assert_eq!(lut.len(), code.len());
    // Four independent partial sums break the add dependency chain.
    let mut acc = [0.0f32; 4];
    let lc = lut.chunks_exact(4);
    let cc = code.chunks_exact(4);
    let (lr, cr) = (lc.remainder(), cc.remainder());
    for (l, c) in lc.zip(cc) {
        for i in 0..4 {
            acc[i] += l[i][usize::from(c[i])];
        }
    }
    let mut tail = 0.0f32;
    for (l, &c) in lr.iter().zip(cr) {
        tail += l[usize::from(c)];
    }
    (acc[0] + acc[2]) + (acc[1] + acc[3]) + tail
}

/// Symmetric int8 quantization with one scale: `x ≈ scale * q`,
/// `scale = max|x| / 127`, `q = round(x / scale)` in `[-127, 127]`.
/// Returns the scale (0 for an all-zero vector, whose codes are all 0).
pub(crate) fn quantize_i8(x: &[f32], out: &mut [i8]) -> f32 {
    debug_assert_eq!(x.len(), out.len());
    let max = x.iter().fold(0.0f32, |m, &v| m.max(v.abs()));
    if max == 0.0 || !max.is_finite() {
        out.fill(0);
        return 0.0;
    }
    let scale = max / 127.0;
    let inv = 127.0 / max;
    for (o, &v) in out.iter_mut().zip(x) {
        // `as` saturates, and the clamp keeps -128 out so the range is symmetric.
        *o = (v * inv).round().clamp(-127.0, 127.0) as i8;
    }
    scale
}

/// The browser's forms of the int8 kernels. rustc leaves the portable loops scalar for
/// wasm32 (no simd128 instruction in them), so these spell the vector instructions out: the
/// same integer sum, and the same float lanes in the same order (same bits; the tests below
/// run in wasm too).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod wasm {
    use super::{reduce, F32_LANES};
    use core::arch::wasm32::*;
    use searchbar_simd::{load_f32x4 as load4, load_i8x8_widened as widen8, store_f32x4};

    pub(super) fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
        let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
        let tail: i32 = ac
            .remainder()
            .iter()
            .zip(bc.remainder())
            .map(|(&x, &y)| i32::from(x) * i32::from(y))
            .sum();
        let mut acc = i32x4_splat(0);
        for (x, y) in ac.zip(bc) {
            acc = i32x4_add(acc, i32x4_dot_i16x8(widen8(x), widen8(y)));
        }
        let lanes = [
            i32x4_extract_lane::<0>(acc),
            i32x4_extract_lane::<1>(acc),
            i32x4_extract_lane::<2>(acc),
            i32x4_extract_lane::<3>(acc),
        ];
        lanes.iter().sum::<i32>() + tail
    }

    pub(super) fn dot_f32_i8(q: &[f32], x: &[i8]) -> f32 {
        let mut acc = [f32x4_splat(0.0); F32_LANES / 4];
        let (qc, xc) = (q.chunks_exact(F32_LANES), x.chunks_exact(F32_LANES));
        let (qr, xr) = (qc.remainder(), xc.remainder());
        for (qa, xa) in qc.zip(xc) {
            for (half, xs) in xa.chunks_exact(8).enumerate() {
                let w = widen8(xs);
                let ints = [i32x4_extend_low_i16x8(w), i32x4_extend_high_i16x8(w)];
                for (j, int) in ints.into_iter().enumerate() {
                    let l = 2 * half + j;
                    let p = f32x4_mul(load4(&qa[4 * l..]), f32x4_convert_i32x4(int));
                    acc[l] = f32x4_add(acc[l], p);
                }
            }
        }
        let mut lanes = [0f32; F32_LANES];
        for (l, v) in acc.iter().enumerate() {
            store_f32x4(&mut lanes[4 * l..], *v);
        }
        let mut tail = 0.0f32;
        for (&a, &b) in qr.iter().zip(xr) {
            tail += a * f32::from(b);
        }
        reduce(&lanes) + tail
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn dots_match_naive() {
        for len in [0usize, 1, 7, 16, 17, 33, 384] {
            let a: Vec<f32> = (0..len).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..len).map(|i| (i as f32 * 0.11).cos()).collect();
            let ai: Vec<i8> = (0..len)
                .map(|i| ((i * 37) % 255) as i32 - 127)
                .map(|v| v as i8)
                .collect();
            let bi: Vec<i8> = (0..len)
                .map(|i| ((i * 91) % 255) as i32 - 127)
                .map(|v| v as i8)
                .collect();
            let naive: f64 = a
                .iter()
                .zip(&b)
                .map(|(x, y)| f64::from(*x) * f64::from(*y))
                .sum();
            assert!((f64::from(dot_f32(&a, &b)) - naive).abs() < 1e-4);
            let naive_l2: f64 = a
                .iter()
                .zip(&b)
                .map(|(x, y)| f64::from(x - y).powi(2))
                .sum();
            assert!((f64::from(l2_sq(&a, &b)) - naive_l2).abs() < 1e-3);
            let naive_i: i64 = ai
                .iter()
                .zip(&bi)
                .map(|(x, y)| i64::from(*x) * i64::from(*y))
                .sum();
            assert_eq!(i64::from(dot_i8(&ai, &bi)), naive_i);
            let naive_fi: f64 = a
                .iter()
                .zip(&bi)
                .map(|(x, y)| f64::from(*x) * f64::from(*y))
                .sum();
            assert!((f64::from(dot_f32_i8(&a, &bi)) - naive_fi).abs() < 1e-2);
            // The browser's vector forms: the same integer and the same float bits.
            assert_eq!(dot_i8(&ai, &bi), dot_i8_portable(&ai, &bi));
            assert_eq!(
                dot_f32_i8(&a, &bi).to_bits(),
                dot_f32_i8_portable(&a, &bi).to_bits(),
                "len {len}"
            );
        }
    }

    #[test]
    fn quantize_roundtrip_error_is_bounded() {
        let x = [0.5f32, -1.0, 0.25, 0.0, 0.999];
        let mut q = [0i8; 5];
        let s = quantize_i8(&x, &mut q);
        assert_eq!(q[1], -127);
        for (&v, &c) in x.iter().zip(&q) {
            assert!((v - s * f32::from(c)).abs() <= s / 2.0 + 1e-6);
        }
        let mut z = [1i8; 3];
        assert_eq!(quantize_i8(&[0.0; 3], &mut z), 0.0);
        assert_eq!(z, [0; 3]);
    }

    #[test]
    fn lut_sum_matches_naive() {
        let mut lut = vec![[0.0f32; 256]; 6];
        for (m, row) in lut.iter_mut().enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = (m * 256 + j) as f32 * 0.001;
            }
        }
        let code = [0u8, 255, 3, 7, 9, 200];
        let naive: f32 = code
            .iter()
            .enumerate()
            .map(|(m, &c)| lut[m][c as usize])
            .sum();
        assert!((lut_sum(&lut, &code) - naive).abs() < 1e-4);
    }
}
