use thiserror::Error;

/// Everything that can go wrong turning text into a vector.
#[derive(Debug, Error)]
pub enum EncoderError {
    /// The ONNX bytes could not be parsed, typed or optimised by tract.
    #[error("encoder model: {0}")]
    Model(String),
    /// The graph rewrite could not decode or re-encode the ONNX protobuf.
    #[error("preparing the ONNX graph: {0}")]
    Prepare(String),
    /// `tokenizer.json` is unreadable or tokenization failed.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// Running the model failed or it returned an unexpected shape.
    #[error("inference: {0}")]
    Inference(String),
}

impl EncoderError {
    pub(crate) fn model(e: impl std::fmt::Display) -> Self {
        Self::Model(format!("{e:#}"))
    }
    pub(crate) fn inference(e: impl std::fmt::Display) -> Self {
        Self::Inference(format!("{e:#}"))
    }
}
