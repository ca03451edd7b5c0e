//! The encoder's own tract ops, each beside the graph rewrite that emits its node and its
//! registration with tract's ONNX loader: int8 matmuls over weights kept int8
//! ([`int8_matmul`]), and the one-text graph's fused self-attention, layer norms and GELUs.
//! They sit on the graph rewrites ([`crate::prepare`]) and run on [`crate::kernels`].

pub(crate) mod attention;
pub(crate) mod gelu;
pub(crate) mod int8_matmul;
pub(crate) mod layer_norm;

use tract_onnx::tract_hir::internal::*;

/// tract's ONNX loader with the encoder's ops registered.
pub fn onnx() -> tract_onnx::Onnx {
    let mut onnx = tract_onnx::onnx();
    int8_matmul::register(&mut onnx);
    attention::register(&mut onnx);
    layer_norm::register(&mut onnx);
    gelu::register(&mut onnx);
    onnx
}

/// The value of a node's constant input, which a custom op reads at wiring (weights, scales).
pub(crate) fn constant_input(
    model: &TypedModel,
    outlet: OutletId,
    prefix: &str,
    what: &str,
) -> TractResult<Arc<Tensor>> {
    model
        .outlet_fact(outlet)?
        .konst
        .clone()
        .with_context(|| format!("{prefix}: the {what} input is not a constant"))
}
