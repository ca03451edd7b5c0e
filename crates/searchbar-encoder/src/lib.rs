//! Sentence embeddings for the search bar, identical in the pipeline and in the browser.
//!
//! The same code path runs natively and on `wasm32-unknown-unknown`: tokenize with the model's
//! `tokenizer.json` (sentence-transformers settings), run the ONNX encoder with tract, then
//! attention-masked mean pooling and L2 normalisation. [`prepare`] rewrites an int8 export once so
//! that tract does not dequantize the whole embedding table on every call.

// Layers, each using only those below it: at the bottom `kernels` (the arithmetic) and
// `prepare` (rewrites of the ONNX graph), neither knowing the other; on both, `ops` (the
// encoder's own tract ops, each with the rewrite that emits it); on top the public encoder
// with its tokenizer and pooling.
mod encoder;
mod error;
pub mod int4;
mod kernels;
mod ops;
pub mod pool;
pub mod prepare;
mod token_rows;
mod tokenize;
mod wordpiece;

/// The browser's second core: a helper worker's share of each int8 matmul.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub use kernels::helper;

pub use encoder::{EmbedJob, Encoder, EncoderConfig, FusedOps, Pooling};
pub use error::EncoderError;
/// tract's ONNX loader with the encoder's own ops registered (for tools that load a graph
/// rewritten by [`prepare::keep_int8_weights`]).
pub use ops::onnx as onnx_loader;
pub use token_rows::{row_len as token_row_len, RowSpan, TokenRows, TOKEN_DIGEST_LEN};
pub use tokenize::TextTokenizer;

/// The int8 matmul kernel this machine runs (`vnni`, `avx512`, `avx2-i16`, `avx2`, `dot16` in
/// the browser, or `portable`) and whether it quantizes activations to i16 (`vnni`, `avx2-i16`
/// and `dot16`).
pub fn matmul_kernel() -> (&'static str, bool) {
    kernels::linear::kernel()
}

pub use kernels::linear::KERNEL_VAR;

/// Token limit sentence-transformers applies for all-MiniLM-L6-v2 (`max_seq_length`).
pub const DEFAULT_MAX_TOKENS: usize = 256;
