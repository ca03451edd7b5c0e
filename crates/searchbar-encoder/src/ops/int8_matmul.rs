//! The tract op that multiplies by int8 weights kept as int8 ([`Int8Matrix`]), and its ONNX
//! node: [`crate::prepare::keep_int8_weights`] emits `Int8MatMul(x, W_q, scale[, bias])` at
//! load in place of `MatMul(x, Cast(W_q) * scale)` (and the bias `Add` after it). The node
//! exists only inside the encoder, never in a shipped file, so other runtimes never meet it.

use crate::kernels::linear::Int8Matrix;
use crate::ops::constant_input;
use tract_onnx::tract_hir::internal::*;

// The ONNX op type the load-time rewrite emits.
use crate::prepare::INT8_MATMUL_OP as OP_TYPE;

/// Registers the ONNX node's op with tract's loader.
pub(crate) fn register(onnx: &mut tract_onnx::Onnx) {
    onnx.op_register
        .insert(OP_TYPE, |_, _| Ok((expand(Int8MatMulExpansion), vec![])));
}

/// Shape inference for the ONNX node; wiring reads the two constant inputs into the op.
#[derive(Debug, Clone)]
struct Int8MatMulExpansion;

impl Expansion for Int8MatMulExpansion {
    fn name(&self) -> StaticName {
        OP_TYPE.into()
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        if inputs.len() != 3 && inputs.len() != 4 {
            bail!("{OP_TYPE} takes x, weights, scale and an optional bias");
        }
        check_output_arity(outputs, 1)?;
        s.equals(&inputs[0].datum_type, f32::datum_type())?;
        s.equals(&outputs[0].datum_type, f32::datum_type())?;
        s.equals(&inputs[1].rank, 2)?;
        s.equals(&inputs[0].rank, &outputs[0].rank)?;
        s.given_2(&inputs[0].shape, &inputs[1].shape, move |s, x, w| {
            let mut y = x.clone();
            if let Some(last) = y.last_mut() {
                *last = w[1].clone();
            }
            s.equals(&outputs[0].shape, y)
        })
    }

    fn wire(
        &self,
        prefix: &str,
        model: &mut TypedModel,
        inputs: &[OutletId],
    ) -> TractResult<TVec<OutletId>> {
        let konst = |outlet: OutletId, what: &str| constant_input(model, outlet, prefix, what);
        let weights = konst(inputs[1], "weights")?;
        let scales = konst(inputs[2], "scale")?;
        ensure!(
            weights.rank() == 2 && weights.datum_type() == i8::datum_type(),
            "{prefix}: weights must be a 2-D int8 tensor, got {:?} {:?}",
            weights.datum_type(),
            weights.shape()
        );
        let (k, n) = (weights.shape()[0], weights.shape()[1]);
        ensure!(
            (scales.len() == n || scales.len() == 1) && scales.datum_type() == f32::datum_type(),
            "{prefix}: expected {n} f32 column scales (or one), got {:?} {:?}",
            scales.datum_type(),
            scales.shape()
        );
        let weights = weights.to_plain_array_view::<i8>()?;
        let scales = scales.to_plain_array_view::<f32>()?;
        let (Some(weights), Some(scales)) = (weights.as_slice(), scales.as_slice()) else {
            bail!("{prefix}: constant inputs are not contiguous");
        };
        let scales: Vec<f32> = scales.iter().copied().cycle().take(n).collect();
        let biases = match inputs.get(3) {
            Some(&outlet) => {
                let b = konst(outlet, "bias")?;
                ensure!(
                    b.len() == n && b.datum_type() == f32::datum_type(),
                    "{prefix}: expected {n} f32 biases, got {:?} {:?}",
                    b.datum_type(),
                    b.shape()
                );
                let b = b.to_plain_array_view::<f32>()?;
                Some(b.iter().copied().collect::<Vec<f32>>())
            }
            None => None,
        };
        let op = Int8MatMul {
            weights: Arc::new(Int8Matrix::new(weights, k, n, &scales, biases.as_deref())),
        };
        model.wire_node(prefix, op, &[inputs[0]])
    }
}

/// Wires one [`Int8MatMul`] over the weights of the matmuls that produce `outlets`, side by
/// side, when they all multiply the same input and their weights can be joined
/// ([`Int8Matrix::concat_columns`]); its output holds their outputs' columns in order. The
/// original matmuls stay until nothing reads them (tract then drops them).
pub(crate) fn merge_matmuls(
    model: &mut TypedModel,
    name: &str,
    outlets: &[OutletId],
) -> TractResult<Option<OutletId>> {
    let mut input = None;
    let mut parts = Vec::new();
    for &outlet in outlets {
        let mut node = model.node(outlet.node);
        // The rewrite leaves an Identity where the bias Add was.
        while node.op_is::<tract_onnx::tract_core::ops::identity::Identity>() {
            node = model.node(node.inputs[0].node);
        }
        let Some(op) = node.op_as::<Int8MatMul>() else {
            return Ok(None);
        };
        if outlet.slot != 0 || input.is_some_and(|i| i != node.inputs[0]) {
            return Ok(None);
        }
        input = Some(node.inputs[0]);
        parts.push(op.weights.as_ref());
    }
    let (Some(input), Some(weights)) = (input, Int8Matrix::concat_columns(&parts)) else {
        return Ok(None);
    };
    let op = Int8MatMul {
        weights: Arc::new(weights),
    };
    Ok(Some(model.wire_node(name, op, &[input])?[0]))
}

/// `x · W` over the last axis of `x`, with `W` held as int8.
#[derive(Debug, Clone)]
pub(crate) struct Int8MatMul {
    weights: Arc<Int8Matrix>,
}

impl Int8MatMul {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    pub(crate) fn weights(&self) -> &Arc<Int8Matrix> {
        &self.weights
    }
}

impl PartialEq for Int8MatMul {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.weights, &other.weights) || self.weights == other.weights
    }
}

impl Eq for Int8MatMul {}

impl Op for Int8MatMul {
    fn name(&self) -> StaticName {
        "Int8MatMul".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!(
            "{}x{} int8 weights ({} bytes)",
            self.weights.k(),
            self.weights.n(),
            self.weights.heap_bytes()
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for Int8MatMul {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let x = args_1!(inputs);
        let (k, n) = (self.weights.k(), self.weights.n());
        let mut shape: TVec<usize> = x.shape().into();
        ensure!(
            shape.last() == Some(&k),
            "Int8MatMul: input shape {shape:?} does not end in {k}"
        );
        let m = x.len() / k.max(1);
        *shape.last_mut().expect("checked above") = n;
        let mut y = Tensor::zero::<f32>(&shape)?;
        {
            let x = x.try_as_plain_ram()?;
            let mut out = y.try_as_plain_ram_mut()?;
            let (x, out) = (x.as_slice::<f32>()?, out.as_slice_mut::<f32>()?);
            if !split_over_threads(&self.weights, x, m, out) {
                self.weights.matmul(x, m, out);
            }
        }
        Ok(tvec!(y.into_tvalue()))
    }
}

#[cfg(feature = "threads")]
fn split_over_threads(w: &Arc<Int8Matrix>, x: &[f32], m: usize, y: &mut [f32]) -> bool {
    crate::kernels::split::matmul(w, x, m, y)
}

/// In the browser, with a helper worker (`helper.rs`).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
fn split_over_threads(w: &Arc<Int8Matrix>, x: &[f32], m: usize, y: &mut [f32]) -> bool {
    crate::kernels::helper::matmul(w, x, m, y)
}

#[cfg(not(any(
    feature = "threads",
    all(target_arch = "wasm32", target_feature = "simd128")
)))]
fn split_over_threads(_: &Arc<Int8Matrix>, _: &[f32], _: usize, _: &mut [f32]) -> bool {
    false
}

impl TypedOp for Int8MatMul {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(inputs[0].datum_type == f32::datum_type());
        let mut shape = inputs[0].shape.to_tvec();
        ensure!(
            shape.last() == Some(&self.weights.k().to_dim()),
            "Int8MatMul: input shape {shape:?} does not end in {}",
            self.weights.k()
        );
        *shape.last_mut().expect("checked above") = self.weights.n().to_dim();
        Ok(tvec!(f32::fact(shape)))
    }

    /// One multiply-add per row and weight: what a sliced job budgets its next node by.
    fn cost(&self, inputs: &[&TypedFact]) -> TractResult<TVec<(Cost, TDim)>> {
        let shape = &inputs[0].shape;
        let rows: TDim = shape.iter().take(shape.rank().saturating_sub(1)).product();
        Ok(tvec!((
            Cost::FMA(i8::datum_type()),
            rows * (self.weights.k() * self.weights.n())
        )))
    }

    as_op!();
}
