//! The arithmetic under the ops: the int8 matmul natively (AVX-512 or AVX2 with FMA) and in
//! wasm simd128 (integer dot products), four-lane float arithmetic with the same bits on both
//! targets, and the ways a matmul is shared with other cores (threads natively, a helper
//! worker in the browser). Nothing here knows tract's graphs.

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub(crate) mod dot16;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub mod helper;
pub(crate) mod lanes;
pub(crate) mod linear;
#[cfg(feature = "threads")]
pub(crate) mod split;
