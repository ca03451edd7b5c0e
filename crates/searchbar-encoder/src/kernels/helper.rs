//! A second core for a query in the browser: a Web Worker runs its own instance of this crate
//! and computes part of each large int8 matmul's column panels.
//!
//! Threads on wasm32-unknown-unknown need a nightly std rebuilt with atomics. Two ordinary
//! instances need only a `SharedArrayBuffer` to meet in (a cross-origin-isolated page), and
//! the page moves the bytes (`web/encoder/src/worker.rs`). This module decides what is shared:
//! * [`crate::Encoder::matmul_weights`] packs the query graph's int8 matrices (a matrix's id is its
//!   position) for [`MatmulHelper::from_bytes`] in the worker;
//! * [`crate::Encoder::share_matmuls`] gives this thread a [`Peer`]. Each large int8 matmul then
//!   quantizes its rows once, offers its last panels to the worker in a few chunks and computes the
//!   first ones itself; then it claims whatever chunks the worker has not. A worker that is asleep,
//!   late or descheduled simply claims fewer chunks, so the page never waits for one to start.
//!
//! Sums are exact integers and each column's rescaling is the same code on both sides, so a
//! split result equals the unsplit one bit for bit.

use crate::kernels::dot16::{self, Weights};
use crate::kernels::linear::Int8Matrix;
use crate::EncoderError;
use std::cell::RefCell;
use std::collections::HashMap;
use std::ops::Range;
use std::rc::Rc;
use std::sync::Arc;

/// Below this many multiply-adds a matmul is not split: offering it costs a few microseconds,
/// a matmul this size about 10.
const MIN_MACS_TO_SPLIT: usize = 1 << 18;
/// Share of a matmul's panels offered to the worker, in 1/64ths: a little under half, as it
/// also copies the rows in and its results out (a smaller offer left the page waiting on its
/// own larger share; BENCHMARKS.md has the split measurements).
const OFFERED_64THS: usize = 30;
/// Chunks the offer is cut into: the page waits at most about one chunk for the worker's last
/// one, and each chunk costs the worker a call into wasm and a copy out.
const CHUNKS: usize = 4;

const MAGIC: &[u8; 8] = b"SBMATMUL";
const VERSION: u32 = 1;

/// A matmul offered to the helper.
#[derive(Debug)]
pub struct Share<'a> {
    /// Position of the matrix in [`crate::Encoder::matmul_weights`].
    pub matrix: u32,
    /// Column panels offered (8 columns each), claimed `chunk` at a time from the start.
    pub panels: Range<usize>,
    pub chunk: usize,
    /// The rows, quantized: `steps.len()` rows of `ceil(k / 2)` i16 pairs.
    pub xq: &'a [i32],
    /// Each row's dequantization step.
    pub steps: &'a [f32],
}

/// The page's link to a helper. The helper writes a chunk starting at panel `p` as a
/// `[rows, columns]` block at offset `rows * p * 8` of its result area.
pub trait Peer {
    /// Offers `share`; false if the helper cannot take one now.
    fn post(&self, share: &Share) -> bool;
    /// Claims the next unclaimed chunk of the posted share for the caller: its first panel.
    fn claim(&self) -> Option<usize>;
    /// Waits until the helper has written the `panels` panels it claimed; false if it failed
    /// or stopped answering (the caller then computes them itself).
    fn wait(&self, panels: usize) -> bool;
    /// Copies `out.len()` values from `offset` of the helper's result area (called once per
    /// share, for the whole offered area).
    fn read(&self, offset: usize, out: &mut [f32]);
    /// Milliseconds on a clock of the peer's choosing, for [`split_times`] (0: not timed).
    fn now(&self) -> f64 {
        0.0
    }
}

/// Where this thread's split matmuls spent their time, in milliseconds by the peer's clock
/// ([`Peer::now`]): quantizing the rows and offering them, computing its own panels, computing
/// chunks claimed back, and waiting for and reading the helper's chunks.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SplitTimes {
    pub matmuls: u64,
    pub offer_ms: f64,
    pub own_ms: f64,
    pub claimed_ms: f64,
    pub theirs_ms: f64,
}

/// The totals of [`SplitTimes`] since this thread started.
pub fn split_times() -> SplitTimes {
    TIMES.get()
}

struct Installed {
    peer: Rc<dyn Peer>,
    /// Matrix address to its id in the worker.
    ids: HashMap<usize, u32>,
}

thread_local! {
    static PEER: RefCell<Option<Installed>> = const { RefCell::new(None) };
    /// [`OFFERED_64THS`] and [`CHUNKS`], unless [`tune`]d.
    static SPLIT: std::cell::Cell<(usize, usize)> =
        const { std::cell::Cell::new((OFFERED_64THS, CHUNKS)) };
    static TIMES: std::cell::Cell<SplitTimes> = const {
        std::cell::Cell::new(SplitTimes {
            matmuls: 0, offer_ms: 0.0, own_ms: 0.0, claimed_ms: 0.0, theirs_ms: 0.0,
        })
    };
}

/// Splits this thread's int8 matmuls with `peer`, whose helper was built from the same
/// matrices ([`crate::Encoder::share_matmuls`]).
pub(crate) fn install(matrices: &[Arc<Int8Matrix>], peer: Rc<dyn Peer>) {
    let ids = matrices
        .iter()
        .enumerate()
        .map(|(i, w)| (Arc::as_ptr(w) as usize, i as u32))
        .collect();
    PEER.set(Some(Installed { peer, ids }));
}

/// Offers `offered_64ths` of each matmul's panels (clamped to 1..=63) in `chunks` chunks
/// (1..=32) instead of the defaults: a knob for measuring other splits on a given machine
/// without a rebuild (the page reads it from its URL, `?split=30,4`).
pub fn tune(offered_64ths: usize, chunks: usize) {
    SPLIT.set((offered_64ths.clamp(1, 63), chunks.clamp(1, 32)));
}

/// Stops splitting. Needed before the installed encoder is dropped: its matrices' addresses,
/// by which shares are matched, could be reused by another encoder's.
pub fn uninstall() {
    PEER.set(None);
}

/// `y = x · W` shared with the installed peer, if there is one and the matmul is large enough.
/// Returns whether it ran.
pub(crate) fn matmul(w: &Arc<Int8Matrix>, x: &[f32], m: usize, y: &mut [f32]) -> bool {
    PEER.with_borrow(|installed| {
        let Some(Installed { peer, ids }) = installed else {
            return false;
        };
        let Some(&matrix) = ids.get(&(Arc::as_ptr(w) as usize)) else {
            return false;
        };
        let (k, n, panels) = (w.k(), w.n(), w.panel_count());
        if m * k * n < MIN_MACS_TO_SPLIT || panels < 2 {
            return false;
        }
        let (offered, asked_chunks) = SPLIT.get();
        let split = panels - (panels * offered / 64).max(1);
        let chunk = (panels - split).div_ceil(asked_chunks);
        let mut times = TIMES.get();
        times.matmuls += 1;
        let t0 = peer.now();
        let weights = w.dot16();
        let (xq, steps) = dot16::quantize_rows(x, m, k);
        let share = Share {
            matrix,
            panels: split..panels,
            chunk,
            xq: &xq,
            steps: &steps,
        };
        if !peer.post(&share) {
            dot16::matmul_quantized(&weights, &xq, &steps, 0..panels, y);
            return true;
        }
        let t1 = peer.now();
        times.offer_ms += t1 - t0;
        // Straight into `y`'s columns: no copy of the page's own panels.
        let run_here = |panels: Range<usize>, y: &mut [f32]| {
            dot16::matmul_quantized_into(&weights, &xq, &steps, panels, y, n, 0);
        };
        run_here(0..split, y);
        let t2 = peer.now();
        times.own_ms += t2 - t1;
        let chunks = (panels - split).div_ceil(chunk);
        let span = |c: usize| split + c * chunk..(split + (c + 1) * chunk).min(panels);
        let mut mine = vec![false; chunks];
        while let Some(p) = peer.claim() {
            let c = (p - split) / chunk;
            mine[c] = true;
            run_here(span(c), y);
        }
        let t3 = peer.now();
        times.claimed_ms += t3 - t2;
        let theirs: Vec<usize> = (0..chunks).filter(|&c| !mine[c]).collect();
        let their_panels = theirs.iter().map(|&c| span(c).len()).sum();
        if their_panels > 0 && !peer.wait(their_panels) {
            theirs.into_iter().for_each(|c| run_here(span(c), y));
            TIMES.set(times);
            return true;
        }
        if !theirs.is_empty() {
            // One copy of the whole offered area (a call into the page's glue costs more than
            // the bytes of the page's own chunks in it), then each of the helper's chunks.
            let mut area = vec![0.0; m * w.columns(&(split..panels)).len()];
            peer.read(m * split * dot16::COLS, &mut area);
            for c in theirs {
                let at = m * (span(c).start - split) * dot16::COLS;
                w.scatter(&span(c), &area[at..][..m * w.columns(&span(c)).len()], y);
            }
        }
        times.theirs_ms += peer.now() - t3;
        TIMES.set(times);
        true
    })
}

/// [`crate::Encoder::matmul_weights`]' format: a header, then per matrix `k`, `n` (u32), the
/// k-pair panels, then the padded column scales and biases (f32), all little-endian.
pub(crate) fn pack(matrices: &[Arc<Int8Matrix>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(packed_len(matrices));
    pack_into(matrices, &mut |part| out.extend_from_slice(part));
    out
}

/// How many bytes [`pack`] makes of `matrices`. Exactly: an int8 matrix in wasm also holds the
/// portable kernel's panels, and the page's linear memory never shrinks back.
pub(crate) fn packed_len(matrices: &[Arc<Int8Matrix>]) -> usize {
    let bytes = |d: Weights| 8 + d.pairs.len() + 4 * (d.scales.len() + d.biases.len());
    16 + matrices.iter().map(|w| bytes(w.dot16())).sum::<usize>()
}

/// [`pack`]'s bytes handed to `sink` a piece at a time (a matrix's panels at most), so a page
/// can copy them out of its memory without holding all of them there at once.
pub(crate) fn pack_into(matrices: &[Arc<Int8Matrix>], sink: &mut dyn FnMut(&[u8])) {
    let mut head = Vec::with_capacity(16);
    head.extend_from_slice(MAGIC);
    head.extend_from_slice(&VERSION.to_le_bytes());
    head.extend_from_slice(&(matrices.len() as u32).to_le_bytes());
    sink(&head);
    for w in matrices {
        let d = w.dot16();
        let mut dims = [0u8; 8];
        dims[..4].copy_from_slice(&(d.k as u32).to_le_bytes());
        dims[4..].copy_from_slice(&(d.n as u32).to_le_bytes());
        sink(&dims);
        let pairs: Vec<u8> = d.pairs.iter().map(|&b| b as u8).collect();
        sink(&pairs);
        let floats: Vec<u8> = d
            .scales
            .iter()
            .chain(d.biases)
            .flat_map(|v| v.to_le_bytes())
            .collect();
        sink(&floats);
    }
}

/// One matrix as the helper holds it: [`Weights`]' fields, owned.
struct Packed {
    k: usize,
    n: usize,
    pairs: Vec<i8>,
    scales: Vec<f32>,
    biases: Vec<f32>,
}

impl Packed {
    fn weights(&self) -> Weights<'_> {
        Weights {
            pairs: &self.pairs,
            k: self.k,
            n: self.n,
            scales: &self.scales,
            biases: &self.biases,
        }
    }

    fn panel_count(&self) -> usize {
        self.n.div_ceil(dot16::COLS)
    }
}

/// The worker's side: the matrices, and the shares it computes.
pub struct MatmulHelper {
    matrices: Vec<Packed>,
}

impl std::fmt::Debug for MatmulHelper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MatmulHelper({} matrices)", self.matrices.len())
    }
}

impl MatmulHelper {
    /// Reads [`crate::Encoder::matmul_weights`]' bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EncoderError> {
        let bad =
            |what: &str| EncoderError::Model(format!("matmul weights for the helper: {what}"));
        let mut r = Reader { bytes, at: 0 };
        if r.take(MAGIC.len()).ok_or_else(|| bad("too short"))? != MAGIC {
            return Err(bad("not a searchbar matmul-weights file"));
        }
        let version = r.u32().ok_or_else(|| bad("too short"))?;
        if version != VERSION {
            return Err(bad(&format!("version {version}, expected {VERSION}")));
        }
        let count = r.u32().ok_or_else(|| bad("too short"))?;
        let mut matrices = Vec::new();
        for i in 0..count {
            let truncated = || bad(&format!("truncated in matrix {i}"));
            let k = r.u32().ok_or_else(truncated)? as usize;
            let n = r.u32().ok_or_else(truncated)? as usize;
            let panels = n.div_ceil(dot16::COLS);
            let pair_bytes = panels
                .checked_mul(k.div_ceil(2) * 2 * dot16::COLS)
                .ok_or_else(|| bad(&format!("matrix {i} is {k} x {n}")))?;
            let pairs = r.take(pair_bytes).ok_or_else(truncated)?;
            let mut floats = |len: usize| -> Option<Vec<f32>> {
                let raw = r.take(len.checked_mul(4)?)?;
                Some(
                    raw.chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                        .collect(),
                )
            };
            let scales = floats(panels * dot16::COLS).ok_or_else(truncated)?;
            let biases = floats(panels * dot16::COLS).ok_or_else(truncated)?;
            matrices.push(Packed {
                k,
                n,
                pairs: pairs.iter().map(|&b| b as i8).collect(),
                scales,
                biases,
            });
        }
        if r.at != bytes.len() {
            return Err(bad(&format!(
                "{} bytes after the last matrix",
                bytes.len() - r.at
            )));
        }
        Ok(Self { matrices })
    }

    /// Number of matrices held.
    pub fn len(&self) -> usize {
        self.matrices.len()
    }

    /// Whether it holds no matrix.
    pub fn is_empty(&self) -> bool {
        self.matrices.is_empty()
    }

    /// Computes a posted share into `out` (resized to `[rows, columns of panels]`, row-major;
    /// the worker keeps one buffer for all its chunks). Checks every size first, so a
    /// malformed share is an error, never a panic in the worker.
    pub fn run(
        &self,
        matrix: u32,
        panels: Range<usize>,
        xq: &[i32],
        steps: &[f32],
        out: &mut Vec<f32>,
    ) -> Result<(), EncoderError> {
        let bad = |what: String| EncoderError::Inference(format!("helper share: {what}"));
        let w = self
            .matrices
            .get(matrix as usize)
            .ok_or_else(|| bad(format!("no matrix {matrix} (of {})", self.matrices.len())))?;
        if panels.start >= panels.end || panels.end > w.panel_count() {
            return Err(bad(format!(
                "panels {panels:?} of matrix {matrix} ({} panels)",
                w.panel_count()
            )));
        }
        let m = steps.len();
        if xq.len() != m * w.k.div_ceil(2) {
            return Err(bad(format!(
                "{} quantized values for {m} rows of {}",
                xq.len(),
                w.k
            )));
        }
        let cols = (panels.end * dot16::COLS).min(w.n) - panels.start * dot16::COLS;
        // Every value is written: no need to clear what a previous chunk left.
        out.resize(m * cols, 0.0);
        dot16::matmul_quantized(&w.weights(), xq, steps, panels, out);
        Ok(())
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(len)?;
        let out = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(out)
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random `[k, n]` int8 weights with scales and biases.
    fn matrix(k: usize, n: usize, seed: u32) -> Arc<Int8Matrix> {
        let mut s = seed;
        let mut next = || {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            s >> 8
        };
        let weights: Vec<i8> = (0..k * n).map(|_| next() as i8).collect();
        let scales: Vec<f32> = (0..n).map(|_| (next() % 1000) as f32 * 1e-5).collect();
        let biases: Vec<f32> = (0..n).map(|_| (next() % 200) as f32 * 0.01 - 1.0).collect();
        Arc::new(Int8Matrix::new(&weights, k, n, &scales, Some(&biases)))
    }

    #[wasm_bindgen_test::wasm_bindgen_test]
    fn a_share_equals_the_same_columns_of_the_whole_matmul() {
        // Odd k (a padded pair) and a partial last panel.
        let (a, b) = (matrix(37, 21, 1), matrix(16, 40, 2));
        let helper = MatmulHelper::from_bytes(&pack(&[a.clone(), b])).unwrap();
        assert_eq!(helper.len(), 2);
        let m = 5;
        let x: Vec<f32> = (0..m * 37)
            .map(|i| ((i * 7919) % 101) as f32 * 0.1 - 5.0)
            .collect();
        let mut whole = vec![0f32; m * 21];
        a.matmul(&x, m, &mut whole);
        let (xq, steps) = dot16::quantize_rows(&x, m, 37);
        for panels in [0..3, 1..3, 2..3, 0..1] {
            let cols = a.columns(&panels);
            let mut share = vec![f32::NAN; 1000];
            helper
                .run(0, panels.clone(), &xq, &steps, &mut share)
                .unwrap();
            assert_eq!(share.len(), m * cols.len());
            for (row, got) in share.chunks_exact(cols.len()).enumerate() {
                // Bit for bit: same integer sums, same rescaling.
                assert_eq!(
                    got,
                    &whole[row * 21 + cols.start..row * 21 + cols.end],
                    "{panels:?}"
                );
            }
        }
    }

    #[wasm_bindgen_test::wasm_bindgen_test]
    fn malformed_weights_and_shares_are_errors() {
        let a = matrix(8, 8, 3);
        let bytes = pack(&[a]);
        for cut in [0, 7, 12, 20, bytes.len() - 1] {
            let err = MatmulHelper::from_bytes(&bytes[..cut]).expect_err("truncated");
            assert!(err.to_string().contains("matmul weights"), "{err}");
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(MatmulHelper::from_bytes(&extra).is_err());
        let helper = MatmulHelper::from_bytes(&bytes).unwrap();
        let (xq, steps) = dot16::quantize_rows(&[1.0; 16], 2, 8);
        let mut out = Vec::new();
        let mut run = |matrix, panels, xq: &[i32]| helper.run(matrix, panels, xq, &steps, &mut out);
        assert!(run(0, 0..1, &xq).is_ok());
        assert!(run(1, 0..1, &xq).is_err(), "no such matrix");
        assert!(run(0, 0..2, &xq).is_err(), "past the last panel");
        assert!(run(0, 1..1, &xq).is_err(), "empty share");
        assert!(run(0, 0..1, &xq[1..]).is_err(), "short rows");
    }
}
