//! The int8 matmul for the browser: integer dot products in wasm simd128.
//!
//! simd128 has no fused multiply-add, so widening each int8 weight to f32 costs as much as
//! the multiply it feeds, which made an int8 kernel slower than float32 in the page. Integer
//! arithmetic avoids it: `i32x4.dot_i16x8_s` does 8 multiply-adds in one instruction, against
//! 4 for a float multiply and add. Each row of activations is quantized to i16 with its own
//! scale (a relative step of 1/10922 or finer, far below the weights' own int8 step), weights
//! are sign-extended from int8 by the load itself (`i16x8.load8x8_s`), and sums stay exact in
//! i32: the activation range is chosen per matrix so that `k` products cannot overflow.
//!
//! Weights are stored as pairs of consecutive rows interleaved per column, so one 8-byte load
//! feeds four columns' dot products for two values of `k`.

use crate::kernels::lanes::ROUND;
use crate::kernels::linear::row_scale;
pub(crate) use crate::kernels::linear::PairWeights as Weights;
use core::arch::wasm32::{
    f32x4_abs, f32x4_add, f32x4_convert_i32x4, f32x4_extract_lane, f32x4_mul, f32x4_ne, f32x4_pmax,
    f32x4_splat, i16x8_narrow_i32x4, i32x4_add, i32x4_dot_i16x8, i32x4_splat, i32x4_sub, v128,
    v128_any_true, v128_or,
};
use searchbar_simd::{load_f32x4, load_i8x8_widened, store_f32x4, store_i32x4};

/// Columns per panel (two groups of four i32 lanes).
pub(crate) const COLS: usize = 8;
/// Rows per register tile: 4 x 2 accumulators, 2 weight vectors and the broadcast row fit
/// V8's 16 xmm registers.
const ROWS: usize = 4;
/// Bytes per k-pair of a panel: 2 rows x 8 columns.
const PAIR: usize = 2 * COLS;

/// Packs row-major `[k, n]` weights into panels of `COLS` columns, `k` padded to even, each
/// k-pair as `[w(k,c), w(k+1,c)]` for columns 0-3, then for columns 4-7.
pub(crate) fn pack(weights: &[i8], k: usize, n: usize) -> Vec<i8> {
    let pairs = k.div_ceil(2);
    let n_panels = n.div_ceil(COLS);
    let mut out = vec![0i8; n_panels * pairs * PAIR];
    for (p, panel) in out.chunks_exact_mut(pairs * PAIR).enumerate() {
        for (pair, dst) in panel.chunks_exact_mut(PAIR).enumerate() {
            for j in 0..COLS.min(n - p * COLS) {
                let c = p * COLS + j;
                for half in 0..2 {
                    let row = 2 * pair + half;
                    if row < k {
                        dst[2 * j + half] = weights[row * n + c];
                    }
                }
            }
        }
    }
    out
}

/// Quantizes each of the `m` rows of `x` (`[m, k]`) to i16 pairs packed in an i32 (`k`
/// padded to even with zeros), returning them and each row's dequantization step.
///
/// Vectorized: every matmul input of a query passes through here (about 145,000 values for
/// 7 tokens), and a scalar `f32::round` is a call in wasm, not an instruction.
pub(crate) fn quantize_rows(x: &[f32], m: usize, k: usize) -> (Vec<i32>, Vec<f32>) {
    let pairs = k.div_ceil(2);
    let mut packed = vec![0i32; m * pairs];
    let mut steps = vec![0f32; m];
    for ((row, dst), step) in x
        .chunks_exact(k)
        .zip(packed.chunks_exact_mut(pairs))
        .zip(&mut steps)
    {
        match row_scale(max_abs(row), k) {
            Ok((row_step, inv)) => {
                *step = row_step;
                quantize_row(row, inv, dst);
            }
            Err(row_step) => *step = row_step,
        }
    }
    (packed, steps)
}

/// The largest magnitude in `row`; NaN if it holds one.
fn max_abs(row: &[f32]) -> f32 {
    let chunks = row.chunks_exact(4);
    let mut tail = [0f32; 4];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    // `f32x4.pmax` is one `maxps`; `f32x4.max`, which propagates NaN, is about eight
    // instructions in V8. NaNs are caught apart: a lane that differs from itself.
    let first = load_f32x4(&tail);
    let (mut acc, mut nan) = (f32x4_abs(first), f32x4_ne(first, first));
    for c in chunks {
        let v = load_f32x4(c);
        acc = f32x4_pmax(acc, f32x4_abs(v));
        nan = v128_or(nan, f32x4_ne(v, v));
    }
    if v128_any_true(nan) {
        return f32::NAN;
    }
    [
        f32x4_extract_lane::<0>(acc),
        f32x4_extract_lane::<1>(acc),
        f32x4_extract_lane::<2>(acc),
        f32x4_extract_lane::<3>(acc),
    ]
    .into_iter()
    .fold(0f32, f32::max)
}

/// `row * inv`, rounded to the nearest integer (ties to even), as i16s in `dst`'s memory
/// order (the i32 pairs are little-endian i16 pairs).
fn quantize_row(row: &[f32], inv: f32, dst: &mut [i32]) {
    let scale = f32x4_splat(inv);
    // Adding `ROUND` (1.5 * 2^23) rounds to an integer (ties to even, as `f32x4.nearest`) in
    // the low bits of the sum: a subtraction of the bits then gives it as an i32. V8 spends
    // about ten instructions on `i32x4.trunc_sat_f32x4_s` without AVX-512; these values (at
    // most `activation_range`, 32,767) never need its saturation.
    let (round, round_bits) = (f32x4_splat(ROUND), i32x4_splat(ROUND.to_bits() as i32));
    let q = |v: v128| i32x4_sub(f32x4_add(f32x4_mul(v, scale), round), round_bits);
    let mut eights = row.chunks_exact(8);
    let mut out = dst.chunks_exact_mut(4);
    for (c, d) in (&mut eights).zip(&mut out) {
        let v = i16x8_narrow_i32x4(q(load_f32x4(&c[..4])), q(load_f32x4(&c[4..])));
        store_i32x4(d, v);
    }
    let done = row.len() - eights.remainder().len();
    let tail = &mut dst[done / 2..];
    let q = |v: f32| i32::from((v * inv).round_ties_even() as i16) & 0xffff;
    for (d, two) in tail.iter_mut().zip(eights.remainder().chunks(2)) {
        let hi = two.get(1).map_or(0, |&v| q(v));
        *d = q(two[0]) | (hi << 16);
    }
}

/// `y = x · W` for the columns of `panels`: `x` is `[m, k]`, `y` is `[m, columns]`.
pub(crate) fn matmul(
    w: &Weights,
    x: &[f32],
    m: usize,
    panels: std::ops::Range<usize>,
    y: &mut [f32],
) {
    let (xq, steps) = quantize_rows(x, m, w.k);
    matmul_quantized(w, &xq, &steps, panels, y);
}

/// [`matmul`] for rows already quantized by [`quantize_rows`] (`steps.len()` rows): the form
/// a share of the panels travels in to another wasm instance (`helper.rs`).
pub(crate) fn matmul_quantized(
    w: &Weights,
    xq: &[i32],
    steps: &[f32],
    panels: std::ops::Range<usize>,
    y: &mut [f32],
) {
    let first_col = panels.start * COLS;
    let ldy = (panels.end * COLS).min(w.n) - first_col;
    matmul_quantized_into(w, xq, steps, panels, y, ldy, first_col);
}

/// [`matmul_quantized`] into a wider output: row `r` of column `c` goes to
/// `y[r * ldy + c - first_col]`. The page computes its own panels straight into the whole
/// `[m, n]` result this way, with no copy of them afterwards.
pub(crate) fn matmul_quantized_into(
    w: &Weights,
    xq: &[i32],
    steps: &[f32],
    panels: std::ops::Range<usize>,
    y: &mut [f32],
    ldy: usize,
    first_col: usize,
) {
    let Weights {
        pairs: pairs_w,
        k,
        n,
        scales,
        biases,
    } = *w;
    let pairs = k.div_ceil(2);
    let m = steps.len();
    assert_eq!(xq.len(), m * pairs, "xq is m x k/2 pairs");
    assert!(
        panels.start * COLS >= first_col && (panels.end * COLS).min(n) - first_col <= ldy,
        "the panels' columns lie in y's rows"
    );
    for p in panels {
        let panel = &pairs_w[p * pairs * PAIR..][..pairs * PAIR];
        let first = p * COLS;
        let width = COLS.min(n - first);
        let mut row = 0;
        while row < m {
            let rows = ROWS.min(m - row);
            let xr = &xq[row * pairs..(row + rows) * pairs];
            let mut store = |sums: &[[v128; 2]]| {
                for (r, sums) in sums.iter().enumerate() {
                    let step = f32x4_splat(steps[row + r]);
                    // `sum * step * scale + bias`, four columns at a time.
                    let dst = &mut y[(row + r) * ldy + first - first_col..][..width];
                    let mut vals = [0f32; COLS];
                    for (half, sum) in sums.iter().enumerate() {
                        let c = first + 4 * half;
                        let v = f32x4_add(
                            f32x4_mul(
                                f32x4_mul(f32x4_convert_i32x4(*sum), step),
                                load_f32x4(&scales[c..]),
                            ),
                            load_f32x4(&biases[c..]),
                        );
                        // A whole panel (every panel of these models) is stored in place; a
                        // narrower last one goes through `vals`.
                        if width == COLS {
                            store_f32x4(&mut dst[4 * half..], v);
                        } else {
                            store_f32x4(&mut vals[4 * half..], v);
                        }
                    }
                    if width < COLS {
                        dst.copy_from_slice(&vals[..width]);
                    }
                }
            };
            match rows {
                1 => store(&tile::<1>(xr, pairs, panel)),
                2 => store(&tile::<2>(xr, pairs, panel)),
                3 => store(&tile::<3>(xr, pairs, panel)),
                _ => store(&tile::<4>(xr, pairs, panel)),
            }
            row += rows;
        }
    }
}

/// Exact i32 sums of `R` quantized rows times one panel: columns 0-3 and 4-7 of each row.
#[inline(always)]
fn tile<const R: usize>(xq: &[i32], pairs: usize, panel: &[i8]) -> [[v128; 2]; R] {
    let panel = &panel[..pairs * PAIR];
    let x_rows: [&[i32]; R] = std::array::from_fn(|r| &xq[r * pairs..][..pairs]);
    let mut acc = [[i32x4_splat(0); 2]; R];
    for (pair, w) in panel.chunks_exact(PAIR).enumerate() {
        let (w0, w1) = (load_i8x8_widened(&w[..8]), load_i8x8_widened(&w[8..]));
        for r in 0..R {
            let a = i32x4_splat(x_rows[r][pair]);
            acc[r][0] = i32x4_add(acc[r][0], i32x4_dot_i16x8(a, w0));
            acc[r][1] = i32x4_add(acc[r][1], i32x4_dot_i16x8(a, w1));
        }
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::quantize_rows;
    use crate::kernels::linear::activation_range;

    #[wasm_bindgen_test::wasm_bindgen_test]
    fn rounds_halves_to_even_in_the_vector_body() {
        // k = 16 (range 32,767) and a row whose largest magnitude is 32,767: scaled by exactly
        // 1, so every tie below reaches the rounding as a tie.
        let row = [
            -2.5,
            -1.5,
            -0.5,
            0.5,
            1.5,
            2.5,
            32_766.5,
            -32_767.0,
            32_767.0,
            1e-3,
            -0.499_999_97,
            4_094.5,
            -4_095.5,
            0.0,
            -0.0,
            7.25,
        ];
        let (packed, steps) = quantize_rows(&row, 1, row.len());
        assert_eq!(steps[0], 1.0);
        let lanes: Vec<f32> = packed
            .iter()
            .flat_map(|p| [f32::from(*p as i16), f32::from((*p >> 16) as i16)])
            .collect();
        let want: Vec<f32> = row.iter().map(|v: &f32| v.round_ties_even()).collect();
        assert_eq!(lanes, want);
    }

    #[wasm_bindgen_test::wasm_bindgen_test]
    fn quantizes_each_row_to_its_own_range_and_keeps_nan() {
        // k = 11: one 8-lane block, then a pair and a single value (padded with zero).
        let k = 11;
        let row: Vec<f32> = (0..k).map(|i| i as f32 - 4.0).collect();
        let mut x = row.clone();
        x.extend(row.iter().map(|v| v * 0.5));
        for nan_at in [3, 9, 10] {
            let mut bad = row.clone();
            bad[nan_at] = f32::NAN;
            x.extend(bad);
        }
        let (packed, steps) = quantize_rows(&x, 5, k);
        let range = activation_range(k) as f32;
        let pairs = k.div_ceil(2);
        for r in 0..2 {
            let step = 6.0 * 0.5f32.powi(r as i32) / range;
            assert_eq!(steps[r], step, "row {r}");
            let lanes: Vec<i16> = packed[r * pairs..(r + 1) * pairs]
                .iter()
                .flat_map(|p| [*p as i16, (*p >> 16) as i16])
                .collect();
            for (i, &q) in lanes.iter().enumerate() {
                let want = x.get(r * k + i).filter(|_| i < k).map_or(0.0, |v| v / step);
                assert_eq!(f32::from(q), want.round_ties_even(), "row {r} value {i}");
            }
        }
        // A NaN anywhere in a row (the vector body or the tail) makes its step NaN.
        assert!(steps[2..].iter().all(|s| s.is_nan()), "{steps:?}");
    }
}
