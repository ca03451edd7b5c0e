//! Sentence embeddings for the search bar, identical in the pipeline and in the browser.
//!
//! The same code path runs natively and on `wasm32-unknown-unknown`: tokenize with the model's
//! `tokenizer.json` (sentence-transformers settings), run the ONNX encoder with tract, then
//! attention-masked mean pooling and L2 normalisation. [`prepare`] rewrites an int8 export once so
//! that tract does not dequantize the whole embedding table on every call.

mod attention;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod dot16;
mod encoder;
mod error;
mod gelu;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub mod helper;
mod int8_op;
mod lanes;
mod layer_norm;
mod linear;
pub mod pool;
pub mod prepare;
#[cfg(feature = "threads")]
mod split;
mod tokenize;
mod wordpiece;

pub use encoder::{EmbedJob, Encoder, EncoderConfig, FusedOps, Pooling};
pub use error::EncoderError;
/// tract's ONNX loader with the encoder's own ops registered (for tools that load a graph
/// rewritten by [`prepare::keep_int8_weights`]).
pub use int8_op::onnx as onnx_loader;
pub use tokenize::TextTokenizer;

/// Token limit sentence-transformers applies for all-MiniLM-L6-v2 (`max_seq_length`).
pub const DEFAULT_MAX_TOKENS: usize = 256;
