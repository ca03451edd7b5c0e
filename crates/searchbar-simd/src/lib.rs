//! Bounds-checked simd128 loads and stores for the browser's kernels (the encoder's and the
//! vector index's): the workspace's one home for the `unsafe` that wasm's `v128_load` and
//! `v128_store` need. Each function takes a slice, checks its length (a short slice panics),
//! then reads or writes it unaligned, which wasm allows. Other targets get nothing: their
//! kernels are portable loops the compiler vectorizes. The encoder's and the index's kernel
//! tests, run in Chromium by scripts/test.sh, compare every kernel built on these bit for bit
//! with the portable one.

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[allow(unsafe_code)]
mod wasm {
    use core::arch::wasm32::*;

    /// The first 4 floats of `s` as one vector.
    #[inline(always)]
    pub fn load_f32x4(s: &[f32]) -> v128 {
        let s: &[f32; 4] = s[..4].try_into().expect("4 lanes");
        // SAFETY: `s` is 16 readable bytes; wasm loads need no alignment.
        unsafe { v128_load(s.as_ptr().cast()) }
    }

    /// `v` into the first 4 floats of `d`.
    #[inline(always)]
    pub fn store_f32x4(d: &mut [f32], v: v128) {
        let d: &mut [f32; 4] = (&mut d[..4]).try_into().expect("4 lanes");
        // SAFETY: `d` is 16 writable bytes; wasm stores need no alignment.
        unsafe { v128_store(d.as_mut_ptr().cast(), v) }
    }

    /// `v` into the first 4 integers of `d`.
    #[inline(always)]
    pub fn store_i32x4(d: &mut [i32], v: v128) {
        let d: &mut [i32; 4] = (&mut d[..4]).try_into().expect("4 lanes");
        // SAFETY: `d` is 16 writable bytes; wasm stores need no alignment.
        unsafe { v128_store(d.as_mut_ptr().cast(), v) }
    }

    /// The first 8 bytes of `x`, each sign-extended to 16 bits (`i16x8.load8x8_s`).
    #[inline(always)]
    pub fn load_i8x8_widened(x: &[i8]) -> v128 {
        let x: &[i8; 8] = x[..8].try_into().expect("8 bytes");
        // SAFETY: `x` is 8 readable bytes; wasm loads need no alignment.
        unsafe { i16x8_load_extend_i8x8(x.as_ptr()) }
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub use wasm::*;
