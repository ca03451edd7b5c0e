//! Residual add and layer normalisation as one op, for the one-text graph (the query path).
//!
//! tract splits `LayerNormalization(a + b)` into six small ops (the add, a mean, a
//! subtraction, a root mean square, a scale and a shift), each a pass and a buffer: for a
//! 10-token query about 20 µs a layer norm in wasm, for 4 thousand values. The fused op does
//! it in two passes over each row. Its sums come from `lanes.rs` (fixed order), so a native
//! build and the browser compute the same bits.

use crate::kernels::lanes::{sum, sum_sq_dev, zip_in_place, Lane, F4};
use crate::ops::constant_input;
use crate::prepare::{
    float_attr, float_attribute, initializer, int_attr, producer, single_consumer,
};
use tract_onnx::pb::{GraphProto, ModelProto};
use tract_onnx::tract_hir::internal::*;

/// The ONNX op type the load-time rewrite emits (never written to a shipped file).
pub(crate) const OP_TYPE: &str = "SearchbarLayerNorm";

/// Rewrites `LayerNormalization(x, scale, bias)` over the last axis, with constant scale and
/// bias, into [`OP_TYPE`]`(x[, residual], scale, bias)`, taking in the `Add` that makes `x`
/// when nothing else reads it. Returns how many.
pub(crate) fn fuse_layer_norm(model: &mut ModelProto) -> usize {
    let Some(graph) = model.graph.as_mut() else {
        return 0;
    };
    let mut fused = 0;
    for i in 0..graph.node.len() {
        let Some(inputs) = match_layer_norm(graph, i) else {
            continue;
        };
        let n = &mut graph.node[i];
        let epsilon = float_attr(n, "epsilon", 1e-5);
        n.op_type = OP_TYPE.into();
        n.input = inputs;
        n.attribute = vec![float_attribute("epsilon", epsilon)];
        fused += 1;
    }
    if fused > 0 {
        crate::prepare::drop_dead_nodes(graph);
    }
    fused
}

/// The fused node's inputs for LayerNormalization node `i`, if it normalises the last axis
/// with float initializers as scale and bias and returns only its result.
fn match_layer_norm(graph: &GraphProto, i: usize) -> Option<Vec<String>> {
    let ln = &graph.node[i];
    let axis = int_attr(ln, "axis", -1);
    if ln.op_type != "LayerNormalization"
        || !ln.domain.is_empty()
        || axis != -1
        || ln.input.len() != 3
        || ln.output.len() != 1
    {
        return None;
    }
    let constant = |name: &str| {
        initializer(graph, name).is_some_and(|t| {
            t.data_type == tract_onnx::pb::tensor_proto::DataType::Float as i32 && t.dims.len() == 1
        })
    };
    if !(constant(&ln.input[1]) && constant(&ln.input[2])) {
        return None;
    }
    let x = &ln.input[0];
    let add = producer(graph, x).filter(|n| {
        n.op_type == "Add"
            && n.input.len() == 2
            && n.input.iter().all(|t| initializer(graph, t).is_none())
            && single_consumer(graph, x) == Some(i)
    });
    let mut inputs = match add {
        Some(add) => add.input.clone(),
        None => vec![x.clone()],
    };
    inputs.extend_from_slice(&ln.input[1..]);
    Some(inputs)
}

/// Registers the ONNX node's op with tract's loader.
pub(crate) fn register(onnx: &mut tract_onnx::Onnx) {
    onnx.op_register.insert(OP_TYPE, |_, node| {
        let epsilon = node.get_attr::<f32>("epsilon")?;
        Ok((expand(LayerNormExpansion { epsilon }), vec![]))
    });
}

/// Shape inference for the ONNX node; wiring reads the constant scale and bias into the op.
#[derive(Debug, Clone)]
struct LayerNormExpansion {
    epsilon: f32,
}

impl Expansion for LayerNormExpansion {
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
            bail!("{OP_TYPE} takes x, an optional residual, scale and bias");
        }
        check_output_arity(outputs, 1)?;
        s.equals(&inputs[0].datum_type, f32::datum_type())?;
        s.equals(&outputs[0].datum_type, f32::datum_type())?;
        if inputs.len() == 4 {
            // The residual may broadcast (an upstream graph adds `[1, seq, w]` position
            // embeddings to `[batch, seq, w]` word embeddings).
            s.equals(&inputs[1].datum_type, f32::datum_type())?;
            s.given_2(&inputs[0].shape, &inputs[1].shape, move |s, a, b| {
                s.equals(
                    &outputs[0].shape,
                    tract_onnx::tract_core::broadcast::multi_broadcast(&[a, b])?,
                )
            })
        } else {
            s.equals(&outputs[0].shape, &inputs[0].shape)
        }
    }

    fn wire(
        &self,
        prefix: &str,
        model: &mut TypedModel,
        inputs: &[OutletId],
    ) -> TractResult<TVec<OutletId>> {
        let konst = |outlet: OutletId, what: &str| -> TractResult<Vec<f32>> {
            let t = constant_input(model, outlet, prefix, what)?;
            ensure!(
                t.datum_type() == f32::datum_type() && t.rank() == 1,
                "{prefix}: the {what} must be a 1-D f32 tensor, got {:?} {:?}",
                t.datum_type(),
                t.shape()
            );
            Ok(t.to_plain_array_view::<f32>()?.iter().copied().collect())
        };
        let n = inputs.len();
        let op = LayerNorm {
            scale: Arc::new(konst(inputs[n - 2], "scale")?),
            bias: Arc::new(konst(inputs[n - 1], "bias")?),
            epsilon: self.epsilon,
        };
        ensure!(
            op.scale.len() == op.bias.len(),
            "{prefix}: {} scales but {} biases",
            op.scale.len(),
            op.bias.len()
        );
        let mut x = inputs[..n - 2].to_vec();
        // Shapes that broadcast take tract's own add first.
        if x.len() == 2 && model.outlet_fact(x[0])?.shape != model.outlet_fact(x[1])?.shape {
            x = model
                .wire_node(
                    format!("{prefix}.add"),
                    tract_onnx::tract_core::ops::math::add(),
                    &x,
                )?
                .to_vec();
        }
        model.wire_node(prefix, op, &x)
    }
}

/// `LayerNorm(x [+ residual])` over the last axis, with a scale and a bias per column.
#[derive(Debug, Clone)]
pub(crate) struct LayerNorm {
    scale: Arc<Vec<f32>>,
    bias: Arc<Vec<f32>>,
    epsilon: f32,
}

impl PartialEq for LayerNorm {
    fn eq(&self, other: &Self) -> bool {
        self.scale == other.scale
            && self.bias == other.bias
            && self.epsilon.to_bits() == other.epsilon.to_bits()
    }
}

impl Eq for LayerNorm {}

impl Op for LayerNorm {
    fn name(&self) -> StaticName {
        "LayerNorm".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!(
            "{} columns, epsilon {}",
            self.scale.len(),
            self.epsilon
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for LayerNorm {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let width = self.scale.len();
        let x = &inputs[0];
        ensure!(
            x.shape().last() == Some(&width),
            "LayerNorm: input shape {:?} does not end in {width}",
            x.shape()
        );
        if let Some(r) = inputs.get(1) {
            ensure!(
                r.shape() == x.shape(),
                "LayerNorm: residual shape {:?} differs from {:?}",
                r.shape(),
                x.shape()
            );
        }
        let mut out = Tensor::zero::<f32>(x.shape())?;
        {
            let x = x.try_as_plain_ram()?;
            let x = x.as_slice::<f32>()?;
            let r = inputs.get(1).map(|r| r.try_as_plain_ram()).transpose()?;
            let r = r.as_ref().map(|r| r.as_slice::<f32>()).transpose()?;
            let mut o = out.try_as_plain_ram_mut()?;
            let o = o.as_slice_mut::<f32>()?;
            for (row, y) in o.chunks_exact_mut(width.max(1)).enumerate() {
                let at = row * width..(row + 1) * width;
                y.copy_from_slice(&x[at.clone()]);
                if let Some(r) = r {
                    zip_in_place(y, &r[at], |y, r| y + r, |y, r| y + r);
                }
                self.normalize(y);
            }
        }
        Ok(tvec!(out.into_tvalue()))
    }
}

impl LayerNorm {
    /// One row, in place.
    fn normalize(&self, y: &mut [f32]) {
        let n = y.len() as f32;
        let mean = sum(y) / n;
        let var = sum_sq_dev(y, mean) / n;
        let inv = 1.0 / (var + self.epsilon).sqrt();
        let (mean4, inv4) = (F4::splat(mean), F4::splat(inv));
        let mut ys = y.chunks_exact_mut(4);
        let (mut gs, mut bs) = (self.scale.chunks_exact(4), self.bias.chunks_exact(4));
        for ((y, g), b) in (&mut ys).zip(&mut gs).zip(&mut bs) {
            (((F4::load(y) - mean4) * inv4) * F4::load(g) + F4::load(b)).store(y);
        }
        let tail = gs.remainder().iter().zip(bs.remainder());
        for (y, (g, b)) in ys.into_remainder().iter_mut().zip(tail) {
            *y = (*y - mean) * inv * g + b;
        }
    }
}

impl TypedOp for LayerNorm {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(inputs.iter().all(|f| f.datum_type == f32::datum_type()));
        ensure!(
            inputs[0].shape.last() == Some(&self.scale.len().to_dim()),
            "LayerNorm: input shape {:?} does not end in {}",
            inputs[0].shape,
            self.scale.len()
        );
        Ok(tvec!(f32::fact(inputs[0].shape.clone())))
    }

    as_op!();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(width: usize) -> LayerNorm {
        LayerNorm {
            scale: Arc::new((0..width).map(|i| 0.5 + i as f32 / width as f32).collect()),
            bias: Arc::new((0..width).map(|i| (i as f32 - 3.0) / 10.0).collect()),
            epsilon: 1e-12,
        }
    }

    #[test]
    fn normalises_the_sum_like_the_formula() {
        for width in [1, 5, 8, 384] {
            let ln = op(width);
            let rows = 3;
            let x: Vec<f32> = (0..rows * width)
                .map(|i| ((i * 37 % 23) as f32 - 11.0) / 3.0)
                .collect();
            let r: Vec<f32> = (0..rows * width).map(|i| (i % 5) as f32 * 0.25).collect();
            let t = |v: &[f32]| tensor1(v).into_shape(&[rows, width]).unwrap().into_tvalue();
            let got = ln.eval_out_of_plan(tvec!(t(&x), t(&r))).unwrap().unwrap();
            let got = got[0].to_plain_array_view::<f32>().unwrap();
            let got = got.as_slice().unwrap();
            for row in 0..rows {
                let y: Vec<f64> = (0..width)
                    .map(|i| x[row * width + i] as f64 + r[row * width + i] as f64)
                    .collect();
                let mean = y.iter().sum::<f64>() / width as f64;
                let var = y.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / width as f64;
                for i in 0..width {
                    let want = (y[i] - mean) / (var + 1e-12).sqrt() * ln.scale[i] as f64
                        + ln.bias[i] as f64;
                    let d = (got[row * width + i] as f64 - want).abs();
                    assert!(d < 1e-5, "width {width}, row {row}, column {i}: off by {d}");
                }
            }
        }
    }

    /// Equal natively and in wasm (where this runs as a browser test too).
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn the_same_bits_on_every_target() {
        let (rows, width) = (11, 384);
        // Integer arithmetic and one division: inputs equal on every target (a libm `sin`
        // would not be).
        let value = |i: usize, p: usize, m: usize| ((i * p % m) as f32 - (m / 2) as f32) / 97.0;
        let x: Vec<f32> = (0..rows * width).map(|i| value(i, 7919, 1013)).collect();
        let r: Vec<f32> = (0..rows * width).map(|i| value(i, 104_729, 997)).collect();
        let t = |v: &[f32]| tensor1(v).into_shape(&[rows, width]).unwrap().into_tvalue();
        let y = op(width)
            .eval_out_of_plan(tvec!(t(&x), t(&r)))
            .unwrap()
            .unwrap();
        let y = y[0].to_plain_array_view::<f32>().unwrap();
        let folded = crate::kernels::lanes::fingerprint(y.as_slice().unwrap());
        assert_eq!(folded, GOLDEN, "{folded:#x}");
    }

    const GOLDEN: u64 = 0x3b9ae1bc6dd52a49;

    #[test]
    fn rejects_a_mismatched_row_or_residual() {
        let ln = op(4);
        let t = |shape: &[usize]| Tensor::zero::<f32>(shape).unwrap().into_tvalue();
        let err = ln.eval_out_of_plan(tvec!(t(&[2, 3]))).unwrap_err();
        assert!(err.to_string().contains("does not end in 4"), "{err}");
        let err = ln
            .eval_out_of_plan(tvec!(t(&[2, 4]), t(&[1, 4])))
            .unwrap_err();
        assert!(err.to_string().contains("residual"), "{err}");
    }
}
