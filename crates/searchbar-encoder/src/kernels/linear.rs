//! `x · W` where `W` stays int8 with one scale per output column, as the int8 export stores
//! it (`Cast(W_q) * scale`, then `MatMul`).
//!
//! tract folds that dequantization into float32 constants at load: 42 MB of weights that a short
//! query streams in full for every call (more than a typical last-level cache), and several times
//! that in the browser's memory. Kept as int8, the weights are a quarter of that and a query's
//! matmuls are bound by arithmetic again. Each weight is widened to f32 in registers and the column
//! scale is applied once to the sum, so the result equals the float32 graph's up to summation order
//! (about 1e-7 relative).
//!
//! The loops are plain Rust over fixed-size arrays, which LLVM vectorizes: with AVX-512 or
//! AVX2 and FMA (detected at run time) natively. In the browser, where simd128 has no fused
//! multiply-add, integer dot products are faster (`dot16.rs`).

#[cfg(target_arch = "x86_64")]
use crate::kernels::native16::{self, Isa};

/// Output columns per packed panel, and rows per register tile (at most 6): sized so the
/// accumulators (`ROWS x COLS` floats) fill the vector registers without spilling (16 ymm;
/// 16 xmm in V8).
#[cfg(not(target_arch = "wasm32"))]
const COLS: usize = 16;
// `pairs16` panels follow one another like `panels` (`concat_columns`) only if as wide.
#[cfg(target_arch = "x86_64")]
const _: () = assert!(COLS == native16::COLS);
#[cfg(not(target_arch = "wasm32"))]
const ROWS: usize = 6;
#[cfg(target_arch = "wasm32")]
const COLS: usize = 8;
#[cfg(target_arch = "wasm32")]
const ROWS: usize = 4;

/// An int8 `[k, n]` weight matrix with per-column scales, packed in panels of `COLS` columns
/// so that one panel's row of weights is one contiguous load.
#[derive(Clone, PartialEq)]
pub(crate) struct Int8Matrix {
    k: usize,
    n: usize,
    /// `ceil(n / COLS)` panels of `k x COLS` weights, padded with zero columns.
    panels: Vec<i8>,
    /// One scale per column, padded like the panels.
    scales: Vec<f32>,
    /// One bias per column (zeros when there is none), padded like the panels.
    biases: Vec<f32>,
    /// The same weights in k-pairs for the browser's integer kernel (`dot16`).
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    pairs: Vec<i8>,
    /// The same weights in k-pairs for the native integer kernels (`native16`), where the CPU
    /// runs one; `panels` is then left empty (outside tests), since no float kernel runs.
    #[cfg(target_arch = "x86_64")]
    pairs16: Vec<i8>,
}

impl std::fmt::Debug for Int8Matrix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Int8Matrix({}x{})", self.k, self.n)
    }
}

impl Int8Matrix {
    /// Packs row-major `[k, n]` int8 weights, their `n` column scales and, if the layer has
    /// them, `n` biases added to the products.
    pub(crate) fn new(
        weights: &[i8],
        k: usize,
        n: usize,
        scales: &[f32],
        biases: Option<&[f32]>,
    ) -> Self {
        Self::for_kernels(weights, k, n, scales, biases, &[Kernel::detect()])
    }

    /// [`Self::new`] with the layouts of each of `kernels`.
    fn for_kernels(
        weights: &[i8],
        k: usize,
        n: usize,
        scales: &[f32],
        biases: Option<&[f32]>,
        kernels: &[Kernel],
    ) -> Self {
        assert_eq!(weights.len(), k * n, "weights are k x n");
        assert_eq!(scales.len(), n, "one scale per column");
        let n_panels = n.div_ceil(COLS);
        let mut panels = vec![0i8; n_panels * k * COLS];
        let mut padded_scales = vec![0f32; n_panels * COLS];
        padded_scales[..n].copy_from_slice(scales);
        let mut padded_biases = vec![0f32; n_panels * COLS];
        if let Some(biases) = biases {
            assert_eq!(biases.len(), n, "one bias per column");
            padded_biases[..n].copy_from_slice(biases);
        }
        // Elsewhere every kernel reads the same layouts.
        #[cfg(not(target_arch = "x86_64"))]
        let _ = kernels;
        #[cfg(target_arch = "x86_64")]
        let pairs16 = if kernels.iter().any(|k| k.quantizes()) {
            native16::pack(weights, k, n)
        } else {
            Vec::new()
        };
        #[cfg(target_arch = "x86_64")]
        if kernels.iter().all(|k| k.quantizes()) {
            panels = Vec::new();
        }
        for (p, panel) in panels.chunks_exact_mut(k * COLS).enumerate() {
            let first = p * COLS;
            let width = COLS.min(n - first);
            for (row, dst) in panel.chunks_exact_mut(COLS).enumerate() {
                let src = &weights[row * n + first..][..width];
                dst[..width].copy_from_slice(src);
            }
        }
        Self {
            k,
            n,
            panels,
            scales: padded_scales,
            biases: padded_biases,
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            pairs: crate::kernels::dot16::pack(weights, k, n),
            #[cfg(target_arch = "x86_64")]
            pairs16,
        }
    }

    /// The matrices' columns side by side (`[k, n1 + n2 + ...]`), when they share `k` and
    /// each fills whole panels, so that their panels, scales and biases simply follow one
    /// another (in wasm `dot16`'s panels are as wide as these).
    pub(crate) fn concat_columns(parts: &[&Self]) -> Option<Self> {
        let first = parts.first()?;
        let whole = |w: &Self| w.k == first.k && w.n.is_multiple_of(COLS);
        if !parts.iter().all(|w| whole(w)) {
            return None;
        }
        let join =
            |field: fn(&Self) -> &[i8]| parts.iter().flat_map(|w| field(w)).copied().collect();
        let floats =
            |field: fn(&Self) -> &[f32]| parts.iter().flat_map(|w| field(w)).copied().collect();
        Some(Self {
            k: first.k,
            n: parts.iter().map(|w| w.n).sum(),
            panels: join(|w| &w.panels),
            scales: floats(|w| &w.scales),
            biases: floats(|w| &w.biases),
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            pairs: join(|w| &w.pairs),
            #[cfg(target_arch = "x86_64")]
            pairs16: join(|w| &w.pairs16),
        })
    }

    pub(crate) fn k(&self) -> usize {
        self.k
    }

    pub(crate) fn n(&self) -> usize {
        self.n
    }

    /// Bytes held (the packed weights and scales).
    pub(crate) fn heap_bytes(&self) -> usize {
        #[allow(unused_mut)]
        let mut bytes = self.panels.len() + 4 * (self.scales.len() + self.biases.len());
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        {
            bytes += self.pairs.len();
        }
        #[cfg(target_arch = "x86_64")]
        {
            bytes += self.pairs16.len();
        }
        bytes
    }

    /// `y = x · W` for `m` rows: `x` is `[m, k]`, `y` is `[m, n]`, both row-major. With more
    /// than one `threads`, the column panels are split between them (the caller's pool).
    pub(crate) fn matmul(&self, x: &[f32], m: usize, y: &mut [f32]) {
        assert_eq!(x.len(), m * self.k, "x is m x k");
        assert_eq!(y.len(), m * self.n, "y is m x n");
        self.panels_into(x, m, 0..self.n.div_ceil(COLS), y);
    }

    /// Number of column panels (the unit of work to split between threads).
    #[cfg(any(
        feature = "threads",
        test,
        all(target_arch = "wasm32", target_feature = "simd128")
    ))]
    pub(crate) fn panel_count(&self) -> usize {
        self.n.div_ceil(COLS)
    }

    /// The weights as the browser's integer kernel reads them.
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    pub(crate) fn dot16(&self) -> PairWeights<'_> {
        self.paired(&self.pairs)
    }

    /// This matrix with `pairs`, its weights as an integer kernel's `pack` lays them out.
    #[cfg(any(
        target_arch = "x86_64",
        all(target_arch = "wasm32", target_feature = "simd128")
    ))]
    fn paired<'a>(&'a self, pairs: &'a [i8]) -> PairWeights<'a> {
        PairWeights {
            pairs,
            k: self.k,
            n: self.n,
            scales: &self.scales,
            biases: &self.biases,
        }
    }

    /// Columns covered by `panels`.
    pub(crate) fn columns(&self, panels: &std::ops::Range<usize>) -> std::ops::Range<usize> {
        panels.start * COLS..(panels.end * COLS).min(self.n)
    }

    /// Copies a result for `panels` only (`[m, columns(panels).len()]`, as [`Self::panels_into`]
    /// writes it) into those columns of `y` (`[m, n]`).
    #[cfg(any(
        feature = "threads",
        all(target_arch = "wasm32", target_feature = "simd128")
    ))]
    pub(crate) fn scatter(&self, panels: &std::ops::Range<usize>, part: &[f32], y: &mut [f32]) {
        let (cols, n) = (self.columns(panels), self.n);
        for (row, src) in part.chunks_exact(cols.len()).enumerate() {
            y[row * n + cols.start..row * n + cols.end].copy_from_slice(src);
        }
    }

    /// `x · W` for the columns of `panels` only, into `y`: `[m, columns(panels).len()]`.
    pub(crate) fn panels_into(
        &self,
        x: &[f32],
        m: usize,
        panels: std::ops::Range<usize>,
        y: &mut [f32],
    ) {
        assert_eq!(y.len(), m * self.columns(&panels).len(), "y is m x columns");
        Kernel::detect().run(self, x, m, panels, y);
    }
}

/// A `[k, n]` weight matrix as the kernels over i16 activations read it (`dot16`, `native16`):
/// the weights in k-pairs as their `pack` lays them out, and the per-column scales and biases
/// padded to whole panels.
#[cfg(any(
    target_arch = "x86_64",
    all(target_arch = "wasm32", target_feature = "simd128")
))]
pub(crate) struct PairWeights<'a> {
    pub pairs: &'a [i8],
    pub k: usize,
    pub n: usize,
    pub scales: &'a [f32],
    pub biases: &'a [f32],
}

/// Largest activation magnitude after quantization for inner dimension `k`, for the kernels
/// that quantize activations to i16 (`dot16`, `native16`): `k` products of at most `q * 128` must
/// fit an i32 (`k = 1536`: 10,922; `k <= 512`: the full i16 range).
#[cfg_attr(
    not(any(
        target_arch = "x86_64",
        all(target_arch = "wasm32", target_feature = "simd128")
    )),
    allow(dead_code)
)]
pub(crate) fn activation_range(k: usize) -> i32 {
    let k = k.next_multiple_of(2).max(2) as i64;
    ((i64::from(i32::MAX) / (k * 128)).min(i64::from(i16::MAX))) as i32
}

/// How the kernels that quantize activations (`dot16`, `native16`) quantize a row of `k`
/// values whose largest magnitude is `max` (NaN where the row holds a NaN): `Ok` with its
/// dequantization step and the scale its values are multiplied by before rounding, or `Err`
/// with the step of a row that is not multiplied: NaN for a row with a NaN or an infinity (its
/// results are NaN, as a float matmul's would be), 0 for a row of zeros or one so small (below
/// about 1e-34) that the scale overflows; such a row multiplies to nothing measurable.
#[cfg_attr(
    not(any(
        target_arch = "x86_64",
        all(target_arch = "wasm32", target_feature = "simd128")
    )),
    allow(dead_code)
)]
pub(crate) fn row_scale(max: f32, k: usize) -> Result<(f32, f32), f32> {
    if !max.is_finite() {
        return Err(f32::NAN);
    }
    let range = activation_range(k) as f32;
    let inv = range / max;
    if max == 0.0 || !inv.is_finite() {
        return Err(0.0);
    }
    Ok((max / range, inv))
}

/// Names a kernel to run instead of the best this CPU runs, to compare kernels on one machine
/// (`scripts/bench/encoder.sh`): `vnni`, `avx512`, `avx2-i16`, `avx2` or `portable`.
pub const KERNEL_VAR: &str = "SEARCHBAR_MATMUL_KERNEL";

/// Which matmul kernel this CPU (or the browser) runs, and whether it quantizes activations
/// to i16 (then two graphs that compute the same function can differ by an i16 step where
/// float rounding puts a value on the other side of a rounding boundary).
pub fn kernel() -> (&'static str, bool) {
    let kernel = Kernel::detect();
    (kernel.name(), kernel.quantizes())
}

/// An error naming the kernels this CPU runs when [`KERNEL_VAR`] names another.
pub fn check_choice() -> Result<(), String> {
    Kernel::chosen().map(|_| ())
}

/// The instruction sets the loops are compiled for, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kernel {
    /// Integer dot products (`vpdpwssd`) over i16-quantized activations (`native16`).
    #[cfg(target_arch = "x86_64")]
    Vnni,
    /// The same sums with AVX2's `vpmaddwd` (`native16`).
    #[cfg(target_arch = "x86_64")]
    Avx2I16,
    /// 16 columns in one zmm register, with FMA.
    #[cfg(target_arch = "x86_64")]
    Avx512,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// wasm simd128 integer dot products over i16-quantized activations (`dot16`).
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    Dot16,
    /// Whatever the build targets: simd128 on wasm, SSE2 on a baseline x86-64.
    Portable,
}

impl Kernel {
    fn detect() -> Self {
        static BEST: std::sync::OnceLock<Kernel> = std::sync::OnceLock::new();
        // A bad choice is reported by `check_choice` when an encoder loads; here it falls
        // back to the best.
        *BEST.get_or_init(|| Self::chosen().unwrap_or_else(|_| Self::available()[0]))
    }

    /// The kernel [`KERNEL_VAR`] names, or the best.
    fn chosen() -> Result<Self, String> {
        Self::choose(std::env::var(KERNEL_VAR).ok().as_deref())
    }

    /// The kernel `name` names (the best for `None` or empty), if this CPU runs it.
    fn choose(name: Option<&str>) -> Result<Self, String> {
        let available = Self::available();
        let Some(name) = name.filter(|n| !n.is_empty()) else {
            return Ok(available[0]);
        };
        available
            .iter()
            .copied()
            .find(|k| k.name() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = available.iter().map(|k| k.name()).collect();
                format!("{KERNEL_VAR}={name:?}: this CPU runs {}", names.join(", "))
            })
    }

    fn name(self) -> &'static str {
        match self {
            #[cfg(target_arch = "x86_64")]
            Self::Vnni => "vnni",
            #[cfg(target_arch = "x86_64")]
            Self::Avx2I16 => "avx2-i16",
            #[cfg(target_arch = "x86_64")]
            Self::Avx512 => "avx512",
            #[cfg(target_arch = "x86_64")]
            Self::Avx2 => "avx2",
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            Self::Dot16 => "dot16",
            Self::Portable => "portable",
        }
    }

    /// Whether the kernel quantizes activations to i16.
    fn quantizes(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Self::Vnni | Self::Avx2I16 => true,
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            Self::Dot16 => true,
            _ => false,
        }
    }

    /// Every kernel this CPU can run, best first.
    fn available() -> Vec<Self> {
        #[cfg(target_arch = "x86_64")]
        let vector: Vec<Self> = {
            let avx2 = std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma");
            let avx512 = avx2 && std::arch::is_x86_feature_detected!("avx512f");
            let vnni = avx512 && Isa::Vnni.available();
            [
                (Self::Vnni, vnni),
                (Self::Avx512, avx512),
                (Self::Avx2I16, avx2),
                (Self::Avx2, avx2),
            ]
            .into_iter()
            .filter_map(|(kernel, ok)| ok.then_some(kernel))
            .collect()
        };
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        let vector: Vec<Self> = vec![Self::Dot16];
        #[cfg(not(any(
            target_arch = "x86_64",
            all(target_arch = "wasm32", target_feature = "simd128")
        )))]
        let vector: Vec<Self> = Vec::new();
        vector.into_iter().chain([Self::Portable]).collect()
    }

    /// The dequantization step of activations whose largest magnitude is `max_abs` (0 for
    /// kernels that keep them float).
    #[cfg(test)]
    fn activation_step(self, k: usize, max_abs: f64) -> f64 {
        if self.quantizes() {
            max_abs / f64::from(activation_range(k))
        } else {
            0.0
        }
    }

    fn run(
        self,
        w: &Int8Matrix,
        x: &[f32],
        m: usize,
        panels: std::ops::Range<usize>,
        y: &mut [f32],
    ) {
        #[cfg(target_arch = "x86_64")]
        assert!(
            if self.quantizes() {
                !w.pairs16.is_empty()
            } else {
                !w.panels.is_empty()
            } || w.n == 0
                || w.k == 0,
            "the matrix was packed for {self:?}"
        );
        match self {
            // SAFETY: `available` lists these only when the CPU has their features.
            #[cfg(target_arch = "x86_64")]
            #[allow(unsafe_code)]
            Self::Vnni | Self::Avx2I16 => unsafe {
                let isa = if self == Self::Vnni {
                    Isa::Vnni
                } else {
                    Isa::Avx2
                };
                native16::matmul(isa, &w.paired(&w.pairs16), x, m, panels, y)
            },
            #[cfg(target_arch = "x86_64")]
            #[allow(unsafe_code)]
            Self::Avx512 => unsafe { matmul_avx512(w, x, m, panels, y) },
            #[cfg(target_arch = "x86_64")]
            #[allow(unsafe_code)]
            Self::Avx2 => unsafe { matmul_avx2(w, x, m, panels, y) },
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            Self::Dot16 => crate::kernels::dot16::matmul(&w.dot16(), x, m, panels, y),
            Self::Portable => matmul_with::<Separate>(w, x, m, panels, y),
        }
    }
}

/// `acc + a * b`: fused where the target has FMA, a multiply and an add elsewhere (wasm
/// simd128 has no fused form, and `f32::mul_add` would call a software routine).
trait MulAdd {
    fn mul_add(a: f32, b: f32, acc: f32) -> f32;
}

struct Separate;
impl MulAdd for Separate {
    #[inline(always)]
    fn mul_add(a: f32, b: f32, acc: f32) -> f32 {
        acc + a * b
    }
}

#[cfg(target_arch = "x86_64")]
struct Fused;
#[cfg(target_arch = "x86_64")]
impl MulAdd for Fused {
    #[inline(always)]
    fn mul_add(a: f32, b: f32, acc: f32) -> f32 {
        a.mul_add(b, acc)
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
fn matmul_avx512(
    w: &Int8Matrix,
    x: &[f32],
    m: usize,
    panels: std::ops::Range<usize>,
    y: &mut [f32],
) {
    matmul_with::<Fused>(w, x, m, panels, y);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn matmul_avx2(w: &Int8Matrix, x: &[f32], m: usize, panels: std::ops::Range<usize>, y: &mut [f32]) {
    matmul_with::<Fused>(w, x, m, panels, y);
}

#[inline(always)]
fn matmul_with<F: MulAdd>(
    w: &Int8Matrix,
    x: &[f32],
    m: usize,
    panels: std::ops::Range<usize>,
    y: &mut [f32],
) {
    let k = w.k;
    let columns = w.columns(&panels);
    let ldy = columns.len();
    for p in panels {
        let panel = &w.panels[p * k * COLS..][..k * COLS];
        let first = p * COLS;
        let width = COLS.min(w.n - first);
        let scales: &[f32; COLS] = w.scales[first..first + COLS].try_into().expect("COLS");
        let biases: &[f32; COLS] = w.biases[first..first + COLS].try_into().expect("COLS");
        let mut row = 0;
        while row < m {
            let rows = ROWS.min(m - row);
            let x_rows = &x[row * k..(row + rows) * k];
            let mut store = |sums: &[[f32; COLS]]| {
                for (r, sums) in sums.iter().enumerate() {
                    let dst = &mut y[(row + r) * ldy + first - columns.start..][..width];
                    for (((d, s), scale), bias) in dst.iter_mut().zip(sums).zip(scales).zip(biases)
                    {
                        *d = s * scale + bias;
                    }
                }
            };
            match rows {
                1 => store(&tile::<F, 1>(x_rows, k, panel)),
                2 => store(&tile::<F, 2>(x_rows, k, panel)),
                3 => store(&tile::<F, 3>(x_rows, k, panel)),
                4 => store(&tile::<F, 4>(x_rows, k, panel)),
                5 => store(&tile::<F, 5>(x_rows, k, panel)),
                _ => store(&tile::<F, 6>(x_rows, k, panel)),
            }
            row += rows;
        }
    }
}

/// Sums of `R` rows of `x` times one panel, unscaled. Every weight is widened once and used
/// for all `R` rows. The sums live in locals (not behind a reference) and the indexing is
/// provably in bounds, so LLVM keeps them in registers for the whole loop.
#[inline(always)]
fn tile<F: MulAdd, const R: usize>(x: &[f32], k: usize, panel: &[i8]) -> [[f32; COLS]; R] {
    let panel = &panel[..k * COLS];
    let x_rows: [&[f32]; R] = std::array::from_fn(|r| &x[r * k..][..k]);
    let mut acc = [[0f32; COLS]; R];
    for (kk, weights) in panel.chunks_exact(COLS).enumerate() {
        let weights: &[i8; COLS] = weights.try_into().expect("COLS");
        let wf: [f32; COLS] = std::array::from_fn(|j| f32::from(weights[j]));
        for r in 0..R {
            let a = x_rows[r][kk];
            for j in 0..COLS {
                acc[r][j] = F::mul_add(a, wf[j], acc[r][j]);
            }
        }
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::{Int8Matrix, Kernel};

    /// Deterministic pseudo-random values (no rand dependency in this crate).
    fn lcg(seed: &mut u64) -> u32 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (*seed >> 33) as u32
    }

    // In wasm (`cargo test --lib --target wasm32-unknown-unknown`, under Node) this checks
    // the integer kernel.
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn equals_a_float64_matmul_for_every_tile_and_panel_shape() {
        let mut seed = 7;
        // Row counts cover every tile height and a full tile plus a remainder; column counts a
        // partial panel; k both short and model-sized.
        for &(m, k, n) in &[
            (1, 3, 1),
            (5, 17, 9),
            (7, 384, 40),
            (13, 64, 16),
            (12, 1536, 33),
        ] {
            let weights: Vec<i8> = (0..k * n).map(|_| lcg(&mut seed) as i8).collect();
            let scales: Vec<f32> = (0..n)
                .map(|_| 1e-3 + lcg(&mut seed) as f32 / u32::MAX as f32 * 1e-2)
                .collect();
            let x: Vec<f32> = (0..m * k)
                .map(|_| lcg(&mut seed) as f32 / u32::MAX as f32 * 4.0 - 2.0)
                .collect();
            let biases: Vec<f32> = (0..n).map(|c| c as f32 * 0.25 - 1.0).collect();
            let w = Int8Matrix::for_kernels(
                &weights,
                k,
                n,
                &scales,
                Some(&biases),
                &Kernel::available(),
            );
            let mut y = vec![f32::NAN; m * n];
            w.matmul(&x, m, &mut y);
            // Kernels that quantize activations give the same bits as one another (the page's).
            let mut quantized: Option<Vec<u32>> = None;
            for kernel in Kernel::available() {
                let mut got = vec![f32::NAN; m * n];
                kernel.run(&w, &x, m, 0..w.panel_count(), &mut got);
                if kernel.quantizes() {
                    let bits: Vec<u32> = got.iter().map(|v| v.to_bits()).collect();
                    let first = quantized.get_or_insert_with(|| bits.clone());
                    assert!(
                        *first == bits,
                        "{kernel:?} differs from the other i16 kernel"
                    );
                }
                for r in 0..m {
                    let row = &x[r * k..(r + 1) * k];
                    let max_x = row.iter().fold(0f64, |a, &v| a.max(f64::from(v).abs()));
                    for c in 0..n {
                        let terms =
                            (0..k).map(|i| f64::from(row[i]) * f64::from(weights[i * n + c]));
                        let scale = f64::from(scales[c]);
                        let exact = terms.clone().sum::<f64>() * scale + f64::from(biases[c]);
                        let magnitude = terms.map(f64::abs).sum::<f64>() * scale + 1.0;
                        // f32 rounding over k additions, with a wide margin; plus, for a kernel
                        // that quantizes activations, half a step per weight.
                        let weights_abs: f64 =
                            (0..k).map(|i| f64::from(weights[i * n + c]).abs()).sum();
                        let step = kernel.activation_step(k, max_x);
                        let bound =
                            1e-6 * (k as f64).sqrt() * magnitude + 0.5 * step * weights_abs * scale;
                        let v = f64::from(got[r * n + c]);
                        assert!(
                            (v - exact).abs() <= bound,
                            "{kernel:?} m={m} k={k} n={n} at ({r},{c}): {v} vs {exact}"
                        );
                    }
                }
            }
            // Any split of the panels (as threads take them) gives the same columns.
            let cut = w.panel_count() / 2;
            for share in [0..cut, cut..w.panel_count()] {
                let cols = w.columns(&share);
                let mut part = vec![f32::NAN; m * cols.len()];
                w.panels_into(&x, m, share, &mut part);
                for (row, got) in part.chunks_exact(cols.len().max(1)).enumerate() {
                    assert_eq!(got, &y[row * n + cols.start..row * n + cols.end]);
                }
            }
        }
    }

    #[test]
    fn a_kernel_is_chosen_by_name_among_those_this_cpu_runs() {
        let available = Kernel::available();
        assert_eq!(Kernel::choose(None), Ok(available[0]));
        assert_eq!(Kernel::choose(Some("")), Ok(available[0]));
        assert_eq!(Kernel::choose(Some("portable")), Ok(Kernel::Portable));
        for kernel in &available {
            assert_eq!(Kernel::choose(Some(kernel.name())), Ok(*kernel));
        }
        let err = Kernel::choose(Some("avx9000")).unwrap_err();
        assert!(
            err.contains("SEARCHBAR_MATMUL_KERNEL=\"avx9000\"") && err.contains("portable"),
            "{err}"
        );
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn matrices_side_by_side_give_each_ones_bits() {
        let mut seed = 11;
        let (m, k) = (5, 48);
        let mut matrix = |n: usize| {
            let weights: Vec<i8> = (0..k * n).map(|_| lcg(&mut seed) as i8).collect();
            let scales: Vec<f32> = (0..n).map(|c| 1e-3 * (1 + c % 7) as f32).collect();
            let biases: Vec<f32> = (0..n).map(|c| c as f32 * 0.5 - 3.0).collect();
            Int8Matrix::new(&weights, k, n, &scales, Some(&biases))
        };
        let parts = [matrix(16), matrix(32), matrix(16)];
        let x: Vec<f32> = (0..m * k).map(|i| (i % 13) as f32 * 0.3 - 2.0).collect();
        let joined = Int8Matrix::concat_columns(&parts.iter().collect::<Vec<_>>()).unwrap();
        assert_eq!((joined.k(), joined.n()), (k, 64));
        let mut y = vec![f32::NAN; m * 64];
        joined.matmul(&x, m, &mut y);
        let mut at = 0;
        for w in &parts {
            let mut alone = vec![f32::NAN; m * w.n()];
            w.matmul(&x, m, &mut alone);
            for (r, row) in alone.chunks_exact(w.n()).enumerate() {
                let got = &y[r * 64 + at..][..w.n()];
                assert_eq!(
                    got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    row.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
                );
            }
            at += w.n();
        }
        // A partial panel, or another k, cannot simply follow.
        assert!(Int8Matrix::concat_columns(&[&parts[0], &matrix(9)]).is_none());
        let other_k = Int8Matrix::new(&[1; 16 * 16], 16, 16, &[1.0; 16], None);
        assert!(Int8Matrix::concat_columns(&[&parts[0], &other_k]).is_none());
    }
}
