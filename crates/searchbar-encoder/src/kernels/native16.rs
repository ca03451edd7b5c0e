//! The int8 matmul natively over i16-quantized activations: integer dot products, the scheme
//! the browser runs in simd128 (`dot16.rs`), with AVX-512 VNNI or AVX2.
//!
//! The float kernels (`linear.rs`) widen every int8 weight to f32 (two instructions per 16
//! weights) and do 16 multiply-adds per AVX-512 FMA. `vpdpwssd` (VNNI) does 32, i16 pairs
//! summed into i32 lanes, on weights sign-extended from int8 by one `vpmovsxbw` per 32 weights
//! that every row of a tile shares: a document batch's matmuls take about half the
//! instructions. Without VNNI, AVX2's `vpmaddwd` and `vpaddd` do the same sums in 256-bit
//! halves. Each row of activations is quantized to i16 with its own step exactly as the page
//! quantizes it (`activation_range`, ties to even) and the sums are exact, so a matmul here
//! gives the page's bits: the pipeline's document vectors and the page's query vectors come
//! from one arithmetic, whichever of these two the CPU runs.
//!
//! Weights are stored per panel of 16 columns as k-pairs: for pair `j`, 32 bytes
//! `[w(2j, c), w(2j+1, c)]` for `c` in 0..16, so one 32-byte load widens to the 16 i32 lanes'
//! pairs (two 16-byte loads for AVX2's two halves).

use crate::kernels::linear::row_scale;
pub(crate) use crate::kernels::linear::PairWeights as Weights;
use core::arch::x86_64::{
    __m128i, __m256, __m256i, __m512i, _mm256_add_epi32, _mm256_add_ps, _mm256_cvtepi32_ps,
    _mm256_cvtepi8_epi16, _mm256_cvtps_epi32, _mm256_loadu_ps, _mm256_loadu_si256,
    _mm256_madd_epi16, _mm256_mul_ps, _mm256_packs_epi32, _mm256_permute4x64_epi64,
    _mm256_set1_epi32, _mm256_set1_ps, _mm256_setzero_si256, _mm256_storeu_ps, _mm256_storeu_si256,
    _mm512_add_ps, _mm512_cvtepi32_epi16, _mm512_cvtepi32_ps, _mm512_cvtepi8_epi16,
    _mm512_cvtps_epi32, _mm512_dpwssd_epi32, _mm512_loadu_ps, _mm512_mask_storeu_ps, _mm512_mul_ps,
    _mm512_set1_epi32, _mm512_set1_ps, _mm512_setzero_si512, _mm512_storeu_ps, _mm_loadu_si128,
};

/// Output columns per panel: one zmm register of i32 sums, or two ymm.
pub(crate) const COLS: usize = 16;
/// Rows quantized and multiplied together: their i16 pairs (at most 64 x 768 x 4 bytes = 192
/// KB for `k` = 1536) stay in the L2 cache while every panel of the weights passes over them.
const BLOCK: usize = 64;
/// Bytes per k-pair of a panel: 2 rows x 16 columns.
const PAIR: usize = 2 * COLS;

/// The instruction sets this kernel is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Isa {
    /// AVX-512 with VNNI's `vpdpwssd`.
    Vnni,
    /// AVX2's `vpmaddwd`, then `vpaddd`.
    Avx2,
}

impl Isa {
    /// Whether this CPU runs `self`.
    pub(crate) fn available(self) -> bool {
        let has = |f: &str| match f {
            "avx2" => std::arch::is_x86_feature_detected!("avx2"),
            "avx512f" => std::arch::is_x86_feature_detected!("avx512f"),
            "avx512bw" => std::arch::is_x86_feature_detected!("avx512bw"),
            "avx512vnni" => std::arch::is_x86_feature_detected!("avx512vnni"),
            _ => false,
        };
        match self {
            Self::Vnni => ["avx512f", "avx512bw", "avx512vnni"].into_iter().all(has),
            Self::Avx2 => has("avx2"),
        }
    }

    /// Rows per register tile. VNNI: 12 accumulators, the widened weights and the broadcast
    /// row fit easily in the 32 zmm registers, and each widened weight vector feeds 12 dot
    /// products. AVX2: 6 rows of two halves, two weight halves and the row in 16 ymm.
    fn rows(self) -> usize {
        match self {
            Self::Vnni => 12,
            Self::Avx2 => 6,
        }
    }
}

/// Packs row-major `[k, n]` weights into panels of [`COLS`] columns of k-pairs (`k` padded to
/// even and `n` to whole panels with zeros).
pub(crate) fn pack(weights: &[i8], k: usize, n: usize) -> Vec<i8> {
    let pairs = k.div_ceil(2);
    let mut out = vec![0i8; n.div_ceil(COLS) * pairs * PAIR];
    for (p, panel) in out.chunks_exact_mut(pairs * PAIR).enumerate() {
        let width = COLS.min(n - p * COLS);
        for (pair, dst) in panel.chunks_exact_mut(PAIR).enumerate() {
            for half in 0..2 {
                let row = 2 * pair + half;
                if row < k {
                    let src = &weights[row * n + p * COLS..][..width];
                    for (c, &w) in src.iter().enumerate() {
                        dst[2 * c + half] = w;
                    }
                }
            }
        }
    }
    out
}

/// One panel's work for one block of rows.
struct Panel<'a> {
    /// The block's quantized rows, as [`interleave_tiles`] lays them out.
    tiled: &'a [i32],
    steps: &'a [f32],
    pairs: usize,
    /// The panel's weights (`pairs * PAIR` bytes).
    weights: &'a [i8],
    /// The panel's 16 scales and biases.
    scales: &'a [f32],
    biases: &'a [f32],
    /// Columns of the panel that exist (16 but for a narrower last panel).
    width: usize,
}

/// `y = x · W` for the columns of `panels`: `x` is `[m, k]`, `y` is `[m, columns]`.
///
/// # Safety
/// The CPU must run `isa` ([`Isa::available`]).
#[allow(unsafe_code)]
pub(crate) unsafe fn matmul(
    isa: Isa,
    w: &Weights,
    x: &[f32],
    m: usize,
    panels: std::ops::Range<usize>,
    y: &mut [f32],
) {
    let (k, pairs) = (w.k, w.k.div_ceil(2));
    assert_eq!(x.len(), m * k, "x is m x k");
    assert_eq!(
        w.pairs.len(),
        w.n.div_ceil(COLS) * pairs * PAIR,
        "packed by pack"
    );
    let first_col = panels.start * COLS;
    let ldy = (panels.end * COLS).min(w.n) - first_col;
    assert_eq!(y.len(), m * ldy, "y is m x columns");
    let mut xq = vec![0i32; BLOCK.min(m) * pairs];
    let mut tiled = vec![0i32; BLOCK.min(m) * pairs];
    let mut steps = vec![0f32; BLOCK.min(m)];
    for start in (0..m).step_by(BLOCK) {
        let rows = BLOCK.min(m - start);
        let (xq, steps) = (&mut xq[..rows * pairs], &mut steps[..rows]);
        let block = &x[start * k..(start + rows) * k];
        for ((row, dst), step) in block
            .chunks_exact(k)
            .zip(xq.chunks_exact_mut(pairs))
            .zip(steps.iter_mut())
        {
            // SAFETY: the caller checked `isa`.
            *step = unsafe { quantize_row(isa, row, dst) };
        }
        let tiled = &mut tiled[..rows * pairs];
        interleave_tiles(xq, pairs, isa.rows(), tiled);
        for p in panels.clone() {
            let first = p * COLS;
            let job = Panel {
                tiled,
                steps,
                pairs,
                weights: &w.pairs[p * pairs * PAIR..][..pairs * PAIR],
                scales: &w.scales[first..first + COLS],
                biases: &w.biases[first..first + COLS],
                width: COLS.min(w.n - first),
            };
            let y = &mut y[start * ldy + first - first_col..];
            // SAFETY: the caller checked `isa`.
            unsafe {
                match isa {
                    Isa::Vnni => panel_vnni(&job, y, ldy),
                    Isa::Avx2 => panel_avx2(&job, y, ldy),
                }
            }
        }
    }
}

/// Reorders quantized rows (`[rows, pairs]`) tile by tile, each tile of `tile` rows (fewer for
/// the last) pair-major: the tile's rows' pair 0, then their pair 1, and so on. A tile's inner
/// loop then reads one run of memory at fixed offsets, with one pointer.
fn interleave_tiles(xq: &[i32], pairs: usize, tile: usize, tiled: &mut [i32]) {
    for (src, dst) in xq.chunks(tile * pairs).zip(tiled.chunks_mut(tile * pairs)) {
        let r_count = src.len() / pairs;
        for (r, row) in src.chunks_exact(pairs).enumerate() {
            for (j, &v) in row.iter().enumerate() {
                dst[j * r_count + r] = v;
            }
        }
    }
}

/// Calls `$tile::<R>` for the `$rows` rows left in a tile (1 to `$max`) and `$store` with
/// its sums.
macro_rules! by_rows {
    ($rows:expr, $store:ident, $tile:ident, $xt:expr, $job:expr, [$($r:literal)*], $max:literal) => {
        match $rows {
            $($r => $store(&$tile::<$r>($xt, $job.pairs, $job.weights)),)*
            _ => $store(&$tile::<$max>($xt, $job.pairs, $job.weights)),
        }
    };
}

/// [`Panel`] with VNNI: `y[r * ldy + c]` for each of the block's rows `r` and the panel's
/// columns `c`.
#[allow(unsafe_code)]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
fn panel_vnni(job: &Panel, y: &mut [f32], ldy: usize) {
    let (rows, tile) = (job.steps.len(), Isa::Vnni.rows());
    // SAFETY: the panel's scales and biases are 16 floats.
    let (scale, bias) = unsafe {
        (
            _mm512_loadu_ps(job.scales.as_ptr()),
            _mm512_loadu_ps(job.biases.as_ptr()),
        )
    };
    let mut row = 0;
    while row < rows {
        let tile_rows = tile.min(rows - row);
        let xt = &job.tiled[row * job.pairs..(row + tile_rows) * job.pairs];
        let mut store = |sums: &[__m512i]| {
            for (r, &sum) in sums.iter().enumerate() {
                // `sum * step * scale + bias`, in the page's order, for its bits.
                let step = _mm512_set1_ps(job.steps[row + r]);
                let v = _mm512_add_ps(
                    _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(sum), step), scale),
                    bias,
                );
                let dst = &mut y[(row + r) * ldy..][..job.width];
                // SAFETY: `dst` holds `width` floats; a narrower last panel stores only its
                // `width` lanes.
                unsafe {
                    if job.width == COLS {
                        _mm512_storeu_ps(dst.as_mut_ptr(), v);
                    } else {
                        _mm512_mask_storeu_ps(dst.as_mut_ptr(), (1u16 << job.width) - 1, v);
                    }
                }
            }
        };
        by_rows!(tile_rows, store, tile_vnni, xt, job, [1 2 3 4 5 6 7 8 9 10 11], 12);
        row += tile_rows;
    }
}

/// Exact i32 sums of `R` quantized rows (one tile, as [`interleave_tiles`] lays it out) times
/// one panel.
#[allow(unsafe_code)]
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
fn tile_vnni<const R: usize>(xt: &[i32], pairs: usize, panel: &[i8]) -> [__m512i; R] {
    let (xt, panel) = (&xt[..pairs * R], &panel[..pairs * PAIR]);
    let mut acc = [_mm512_setzero_si512(); R];
    for (x, w) in xt.chunks_exact(R).zip(panel.chunks_exact(PAIR)) {
        let x: &[i32; R] = x.try_into().expect("R values");
        // SAFETY: `w` is 32 bytes, the width of the load.
        let w = _mm512_cvtepi8_epi16(unsafe { _mm256_loadu_si256(w.as_ptr().cast::<__m256i>()) });
        for r in 0..R {
            acc[r] = _mm512_dpwssd_epi32(acc[r], _mm512_set1_epi32(x[r]), w);
        }
    }
    acc
}

/// [`Panel`] with AVX2, as [`panel_vnni`].
#[allow(unsafe_code)]
#[target_feature(enable = "avx2")]
fn panel_avx2(job: &Panel, y: &mut [f32], ldy: usize) {
    let (rows, tile) = (job.steps.len(), Isa::Avx2.rows());
    // SAFETY: the panel's scales and biases are 16 floats.
    let halves = |v: &[f32]| unsafe {
        [
            _mm256_loadu_ps(v.as_ptr()),
            _mm256_loadu_ps(v.as_ptr().add(8)),
        ]
    };
    let (scale, bias): ([__m256; 2], [__m256; 2]) = (halves(job.scales), halves(job.biases));
    let mut row = 0;
    while row < rows {
        let tile_rows = tile.min(rows - row);
        let xt = &job.tiled[row * job.pairs..(row + tile_rows) * job.pairs];
        let mut store = |sums: &[[__m256i; 2]]| {
            for (r, sums) in sums.iter().enumerate() {
                let step = _mm256_set1_ps(job.steps[row + r]);
                let mut vals = [0f32; COLS];
                for h in 0..2 {
                    // `sum * step * scale + bias`, in the page's order, for its bits.
                    let v = _mm256_add_ps(
                        _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(sums[h]), step), scale[h]),
                        bias[h],
                    );
                    // SAFETY: `vals[8 * h..]` holds 8 floats.
                    unsafe { _mm256_storeu_ps(vals.as_mut_ptr().add(8 * h), v) };
                }
                y[(row + r) * ldy..][..job.width].copy_from_slice(&vals[..job.width]);
            }
        };
        by_rows!(tile_rows, store, tile_avx2, xt, job, [1 2 3 4 5], 6);
        row += tile_rows;
    }
}

/// [`tile_vnni`] with AVX2: columns 0-7 and 8-15 of each row.
#[allow(unsafe_code)]
#[inline]
#[target_feature(enable = "avx2")]
fn tile_avx2<const R: usize>(xt: &[i32], pairs: usize, panel: &[i8]) -> [[__m256i; 2]; R] {
    let (xt, panel) = (&xt[..pairs * R], &panel[..pairs * PAIR]);
    let mut acc = [[_mm256_setzero_si256(); 2]; R];
    for (x, w) in xt.chunks_exact(R).zip(panel.chunks_exact(PAIR)) {
        let x: &[i32; R] = x.try_into().expect("R values");
        // SAFETY: `w` is 32 bytes: two 16-byte loads.
        let (w0, w1) = unsafe {
            (
                _mm256_cvtepi8_epi16(_mm_loadu_si128(w.as_ptr().cast::<__m128i>())),
                _mm256_cvtepi8_epi16(_mm_loadu_si128(w.as_ptr().add(16).cast::<__m128i>())),
            )
        };
        for r in 0..R {
            let a = _mm256_set1_epi32(x[r]);
            acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(a, w0));
            acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(a, w1));
        }
    }
    acc
}

/// Quantizes one row of activations to i16 pairs packed in an i32 (`k` padded to even with
/// zero) into `dst`, returning its dequantization step: the page's quantization
/// (`dot16::quantize_rows`). A NaN or an infinity gives a NaN step (and so NaN results, as a
/// float matmul would give); all zeros, or a largest magnitude so small (below about 1e-34)
/// that the scale overflows, a zero step.
///
/// # Safety
/// The CPU must run `isa`.
#[allow(unsafe_code)]
unsafe fn quantize_row(isa: Isa, row: &[f32], dst: &mut [i32]) -> f32 {
    dst.fill(0);
    // `f32::max` skips NaN, so NaN is looked for apart.
    let max = if row.iter().any(|v| v.is_nan()) {
        f32::NAN
    } else {
        row.iter().fold(0f32, |a, &v| a.max(v.abs()))
    };
    let (step, inv) = match row_scale(max, row.len()) {
        Ok(scale) => scale,
        Err(step) => return step,
    };
    // SAFETY: the caller checked `isa`.
    let done = unsafe {
        match isa {
            Isa::Vnni => quantize_sixteens_avx512(row, inv, dst),
            Isa::Avx2 => quantize_sixteens_avx2(row, inv, dst),
        }
    };
    let q = |v: f32| i32::from((v * inv).round_ties_even() as i16) & 0xffff;
    for (d, two) in dst[done / 2..].iter_mut().zip(row[done..].chunks(2)) {
        *d = q(two[0]) | two.get(1).map_or(0, |&v| q(v) << 16);
    }
    step
}

/// The whole runs of 16 values of `row` times `inv`, rounded to the nearest integer (ties to
/// even: `vcvtps2dq` in the default rounding mode) as i16 pairs into `dst`; returns how many
/// values it did.
#[allow(unsafe_code)]
#[target_feature(enable = "avx512f,avx512bw")]
fn quantize_sixteens_avx512(row: &[f32], inv: f32, dst: &mut [i32]) -> usize {
    let sixteens = row.chunks_exact(16);
    let done = row.len() - sixteens.remainder().len();
    for (v, d) in sixteens.zip(dst.chunks_exact_mut(8)) {
        // SAFETY: `v` holds 16 floats and `d` 8 i32s, the widths of the load and store.
        unsafe {
            let q = _mm512_cvtps_epi32(_mm512_mul_ps(
                _mm512_loadu_ps(v.as_ptr()),
                _mm512_set1_ps(inv),
            ));
            // `vpmovdw` keeps each result's low 16 bits: 16 values become 8 pairs.
            _mm256_storeu_si256(d.as_mut_ptr().cast::<__m256i>(), _mm512_cvtepi32_epi16(q));
        }
    }
    done
}

/// [`quantize_sixteens_avx512`] with AVX2.
#[allow(unsafe_code)]
#[target_feature(enable = "avx2")]
fn quantize_sixteens_avx2(row: &[f32], inv: f32, dst: &mut [i32]) -> usize {
    let sixteens = row.chunks_exact(16);
    let done = row.len() - sixteens.remainder().len();
    let inv = _mm256_set1_ps(inv);
    for (v, d) in sixteens.zip(dst.chunks_exact_mut(8)) {
        // SAFETY: `v` holds 16 floats and `d` 8 i32s, the widths of the loads and store.
        unsafe {
            let lo = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(v.as_ptr()), inv));
            let hi = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(v.as_ptr().add(8)), inv));
            // `vpackssdw` packs within 128-bit lanes (lo 0-3, hi 0-3, lo 4-7, hi 4-7); the
            // permute puts the four 64-bit runs back in order. No value saturates: each is
            // at most `activation_range`.
            let packed = _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_packs_epi32(lo, hi));
            _mm256_storeu_si256(d.as_mut_ptr().cast::<__m256i>(), packed);
        }
    }
    done
}

#[cfg(test)]
mod tests {
    use super::{quantize_row, Isa};
    use crate::kernels::linear::activation_range;

    /// Each row of `x` quantized by `isa`: the pairs and the steps.
    fn quantize_rows(isa: Isa, x: &[f32], k: usize) -> (Vec<i32>, Vec<f32>) {
        let pairs = k.div_ceil(2);
        let mut xq = vec![-1i32; x.len() / k * pairs];
        let steps = x
            .chunks_exact(k)
            .zip(xq.chunks_exact_mut(pairs))
            // SAFETY: only ISAs this CPU runs are passed.
            .map(|(row, dst)| {
                #[allow(unsafe_code)]
                unsafe {
                    quantize_row(isa, row, dst)
                }
            })
            .collect();
        (xq, steps)
    }

    fn isas() -> Vec<Isa> {
        let isas: Vec<Isa> = [Isa::Vnni, Isa::Avx2]
            .into_iter()
            .filter(|isa| isa.available())
            .collect();
        if isas.len() < 2 {
            eprintln!("this CPU runs only {isas:?} of the i16 kernels");
        }
        isas
    }

    fn lanes(xq: &[i32]) -> Vec<i16> {
        xq.iter()
            .flat_map(|p| [*p as i16, (*p >> 16) as i16])
            .collect()
    }

    #[test]
    fn quantizes_each_row_to_its_own_range_and_keeps_nan() {
        for isa in isas() {
            // k = 21: one run of 16 values, two pairs, then a single value padded with zero.
            let k: usize = 21;
            let row: Vec<f32> = (0..k).map(|i| i as f32 - 4.0).collect();
            let mut x = row.clone();
            x.extend(row.iter().map(|v| v * 0.5));
            x.extend([0.0; 21]);
            for nan_at in [3, 20] {
                let mut bad = row.clone();
                bad[nan_at] = f32::NAN;
                x.extend(bad);
            }
            // A row of NaN only, and NaN among zeros: `f32::max` alone would see 0.
            x.extend([f32::NAN; 21]);
            let mut nan_in_zeros = vec![0.0; 21];
            nan_in_zeros[5] = f32::NAN;
            x.extend(nan_in_zeros);
            let mut inf = row.clone();
            inf[17] = f32::INFINITY;
            x.extend(inf);
            let (xq, steps) = quantize_rows(isa, &x, k);
            let range = activation_range(k) as f32;
            let pairs = k.div_ceil(2);
            for r in 0..2 {
                let step = 16.0 * 0.5f32.powi(r as i32) / range;
                assert_eq!(steps[r], step, "{isa:?} row {r}");
                for (i, &q) in lanes(&xq[r * pairs..(r + 1) * pairs]).iter().enumerate() {
                    let want = x.get(r * k + i).filter(|_| i < k).map_or(0.0, |v| v / step);
                    assert_eq!(
                        f32::from(q),
                        want.round_ties_even(),
                        "{isa:?} row {r} value {i}"
                    );
                }
            }
            assert_eq!(steps[2], 0.0);
            assert!(xq[2 * pairs..].iter().all(|&q| q == 0), "{isa:?}");
            assert_eq!(steps.len(), 8);
            assert!(steps[3..].iter().all(|s| s.is_nan()), "{isa:?}: {steps:?}");
            // A row too small for its scale to be finite is a zero row.
            let (xq, steps) = quantize_rows(isa, &[1e-38, -2e-39, 0.0, 1e-40], 4);
            assert_eq!((steps, xq), (vec![0.0], vec![0, 0]), "{isa:?}");
        }
    }

    #[test]
    fn rounds_ties_to_even_as_the_page_does() {
        for isa in isas() {
            // At a step of exactly 1 (the largest magnitude is the range) each tie stays a tie,
            // in the run of 16 and in the tail.
            let k: usize = 19;
            let max = activation_range(k) as f32;
            let mut x: Vec<f32> = [
                0.5,
                1.5,
                2.5,
                3.5,
                -0.5,
                -1.5,
                -2.5,
                -3.5,
                1e-3,
                -0.499_999_97,
            ]
            .into_iter()
            .chain([4_094.5, -4_095.5, 0.0, -0.0, 7.25, max - 0.5])
            .collect();
            x.extend([-max, 2.5, 3.5]);
            let (xq, steps) = quantize_rows(isa, &x, k);
            assert_eq!(steps[0], 1.0);
            let got: Vec<f32> = lanes(&xq).into_iter().take(k).map(f32::from).collect();
            let want: Vec<f32> = x.iter().map(|v| v.round_ties_even()).collect();
            assert_eq!(got, want, "{isa:?}");
            assert_eq!(xq[k / 2] >> 16, 0, "{isa:?}: the odd k's pad is zero");
        }
    }
}
