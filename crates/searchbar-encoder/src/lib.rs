pub use tract_onnx; pub use tokenizers;
