//! The int8 matmul for the browser: integer dot products in wasm simd128.
//!
//! simd128 has no fused multiply-add, so widening each int8 weight to f32 costs as much as
//! the multiply it feeds (the page measured 1.6x tract's float32 kernel that way). Integer
//! arithmetic avoids it: `i32x4.dot_i16x8_s` does 8 multiply-adds in one instruction, against
//! 4 for a float multiply and add. Each row of activations is quantized to i16 with its own
//! scale (a relative step of 1/10922 or finer, far below the weights' own int8 step), weights
//! are sign-extended from int8 by the load itself (`i16x8.load8x8_s`), and sums stay exact in
//! i32: the activation range is chosen per matrix so that `k` products cannot overflow.
//!
//! Weights are stored as pairs of consecutive rows interleaved per column, so one 8-byte load
//! feeds four columns' dot products for two values of `k`.

use core::arch::wasm32::{
    i16x8_load_extend_i8x8, i32x4_add, i32x4_dot_i16x8, i32x4_extract_lane, i32x4_splat, v128,
};

/// Columns per panel (two groups of four i32 lanes).
pub(crate) const COLS: usize = 8;
/// Rows per register tile: 4 x 2 accumulators, 2 weight vectors and the broadcast row fit
/// V8's 16 xmm registers.
const ROWS: usize = 4;
/// Bytes per k-pair of a panel: 2 rows x 8 columns.
const PAIR: usize = 2 * COLS;

/// Largest activation magnitude after quantization for inner dimension `k`: `k` products of
/// at most `q * 128` must fit an i32 (`k = 1536`: 10,922; `k <= 512`: the full i16 range).
pub(crate) fn activation_range(k: usize) -> i32 {
    let k = k.next_multiple_of(2).max(2) as i64;
    ((i64::from(i32::MAX) / (k * 128)).min(i64::from(i16::MAX))) as i32
}

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
fn quantize_rows(x: &[f32], m: usize, k: usize) -> (Vec<i32>, Vec<f32>) {
    let range = activation_range(k) as f32;
    let pairs = k.div_ceil(2);
    let mut packed = vec![0i32; m * pairs];
    let mut steps = vec![0f32; m];
    for ((row, dst), step) in x
        .chunks_exact(k)
        .zip(packed.chunks_exact_mut(pairs))
        .zip(&mut steps)
    {
        let max = row.iter().fold(0f32, |a, v| a.max(v.abs()));
        if !max.is_finite() {
            // NaN or infinity in, NaN out, as a float matmul would give.
            *step = f32::NAN;
            continue;
        }
        if max == 0.0 {
            continue;
        }
        *step = max / range;
        let inv = range / max;
        let q = |v: f32| i32::from((v * inv).round() as i16) & 0xffff;
        for (d, two) in dst.iter_mut().zip(row.chunks(2)) {
            let hi = two.get(1).map_or(0, |&v| q(v));
            *d = q(two[0]) | (hi << 16);
        }
    }
    (packed, steps)
}

/// A `[k, n]` weight matrix as this kernel reads it.
pub(crate) struct Weights<'a> {
    /// From [`pack`].
    pub pairs: &'a [i8],
    pub k: usize,
    pub n: usize,
    /// Per-column scales and biases, padded to whole panels.
    pub scales: &'a [f32],
    pub biases: &'a [f32],
}

/// `y = x · W` for the columns of `panels`: `x` is `[m, k]`, `y` is `[m, columns]`.
pub(crate) fn matmul(
    w: &Weights,
    x: &[f32],
    m: usize,
    panels: std::ops::Range<usize>,
    y: &mut [f32],
) {
    let Weights {
        pairs: pairs_w,
        k,
        n,
        scales,
        biases,
    } = *w;
    let pairs = k.div_ceil(2);
    let (xq, steps) = quantize_rows(x, m, k);
    let first_col = panels.start * COLS;
    let ldy = (panels.end * COLS).min(n) - first_col;
    for p in panels {
        let panel = &pairs_w[p * pairs * PAIR..][..pairs * PAIR];
        let first = p * COLS;
        let width = COLS.min(n - first);
        let mut row = 0;
        while row < m {
            let rows = ROWS.min(m - row);
            let xr = &xq[row * pairs..(row + rows) * pairs];
            let mut store = |sums: &[[i32; COLS]]| {
                for (r, sums) in sums.iter().enumerate() {
                    let step = steps[row + r];
                    let dst = &mut y[(row + r) * ldy + first - first_col..][..width];
                    for (j, d) in dst.iter_mut().enumerate() {
                        *d = sums[j] as f32 * step * scales[first + j] + biases[first + j];
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

/// Exact i32 sums of `R` quantized rows times one panel.
#[inline(always)]
fn tile<const R: usize>(xq: &[i32], pairs: usize, panel: &[i8]) -> [[i32; COLS]; R] {
    let panel = &panel[..pairs * PAIR];
    let x_rows: [&[i32]; R] = std::array::from_fn(|r| &xq[r * pairs..][..pairs]);
    let mut acc = [[i32x4_splat(0); 2]; R];
    for (pair, w) in panel.chunks_exact(PAIR).enumerate() {
        let w: &[i8; PAIR] = w.try_into().expect("PAIR");
        // SAFETY: `w` is 16 readable bytes; each load reads 8 of them, and wasm loads need no
        // alignment.
        #[allow(unsafe_code)]
        let (w0, w1): (v128, v128) = unsafe {
            (
                i16x8_load_extend_i8x8(w.as_ptr()),
                i16x8_load_extend_i8x8(w.as_ptr().add(8)),
            )
        };
        for r in 0..R {
            let a = i32x4_splat(x_rows[r][pair]);
            acc[r][0] = i32x4_add(acc[r][0], i32x4_dot_i16x8(a, w0));
            acc[r][1] = i32x4_add(acc[r][1], i32x4_dot_i16x8(a, w1));
        }
    }
    acc.map(|[lo, hi]| {
        [
            i32x4_extract_lane::<0>(lo),
            i32x4_extract_lane::<1>(lo),
            i32x4_extract_lane::<2>(lo),
            i32x4_extract_lane::<3>(lo),
            i32x4_extract_lane::<0>(hi),
            i32x4_extract_lane::<1>(hi),
            i32x4_extract_lane::<2>(hi),
            i32x4_extract_lane::<3>(hi),
        ]
    })
}
