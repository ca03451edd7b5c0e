//! The arithmetic under the ops: the int8 matmul natively (integer dot products with AVX-512
//! VNNI or AVX2, or floats with AVX-512 or AVX2 and FMA) and in wasm simd128 (integer dot
//! products), four-lane float arithmetic with the same bits on both targets, and the ways a
//! matmul is shared with other cores (threads natively, a helper worker in the browser).
//! Nothing here knows tract's graphs.

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub(crate) mod dot16;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub mod helper;
pub(crate) mod lanes;
pub(crate) mod linear;
#[cfg(target_arch = "x86_64")]
pub(crate) mod native16;
#[cfg(feature = "threads")]
pub(crate) mod split;
