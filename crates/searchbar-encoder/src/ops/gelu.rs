//! GELU as one op, for the one-text graph (the query path).
//!
//! The prepared graph computes `(x * 0.5) * (erf(x * (1/sqrt2)) + 1)` in five nodes, which
//! tract runs as its `GeluExact`: a pass to scale into a scratch buffer, its erf kernel (called
//! through its element-wise framework), and a pass back. For a 10-token query that is about
//! 60 µs a feed-forward layer in wasm, for 15 thousand values. The fused op does it in one
//! pass, four values at a time (`lanes::F4`), with the same erf approximation as tract's
//! portable kernel (Abramowitz and Stegun 7.1.26: absolute error under 3e-7). Only
//! multiplies, adds, one division and sign bits, in a fixed order: a native build and the
//! browser compute the same bits.

use crate::kernels::lanes::{map_in_place, Lane, F4};
use crate::prepare::{other_input_is, producer_index, single_consumer};
use tract_onnx::pb::{GraphProto, ModelProto};
use tract_onnx::tract_hir::internal::*;

/// The ONNX op type the load-time rewrite emits (never written to a shipped file).
pub(crate) const OP_TYPE: &str = "SearchbarGelu";

/// Rewrites `(x * 0.5) * (erf(x * (1/sqrt2)) + 1)` (the order `prepare` leaves GELU in) into
/// [`OP_TYPE`]`(x)`. Returns how many.
pub(crate) fn fuse_gelu(model: &mut ModelProto) -> usize {
    let Some(graph) = model.graph.as_mut() else {
        return 0;
    };
    let mut fused = 0;
    for erf in 0..graph.node.len() {
        let Some((x, out)) = match_gelu(graph, erf) else {
            continue;
        };
        let n = &mut graph.node[out];
        n.op_type = OP_TYPE.into();
        n.input = vec![x];
        n.attribute.clear();
        fused += 1;
    }
    if fused > 0 {
        crate::prepare::drop_dead_nodes(graph);
    }
    fused
}

/// For the `Erf` node `erf` of a GELU chain: its input `x` and the chain's last node.
fn match_gelu(graph: &GraphProto, erf: usize) -> Option<(String, usize)> {
    let erf_node = &graph.node[erf];
    if erf_node.op_type != "Erf" || erf_node.input.len() != 1 {
        return None;
    }
    let scaled = &erf_node.input[0];
    let scale = &graph.node[producer_index(graph, scaled)?];
    let x = scale.input.iter().find(|i| *i != scaled)?;
    if scale.op_type != "Mul"
        || !other_input_is(graph, scale, x, std::f32::consts::FRAC_1_SQRT_2)
        || single_consumer(graph, scaled)? != erf
    {
        return None;
    }
    let add = single_consumer(graph, &erf_node.output[0])?;
    let add_node = &graph.node[add];
    if add_node.op_type != "Add" || !other_input_is(graph, add_node, &erf_node.output[0], 1.0) {
        return None;
    }
    let out = single_consumer(graph, &add_node.output[0])?;
    let out_node = &graph.node[out];
    let half_x = out_node.input.iter().find(|i| **i != add_node.output[0])?;
    let half = &graph.node[producer_index(graph, half_x)?];
    if out_node.op_type != "Mul"
        || out_node.input.len() != 2
        || half.op_type != "Mul"
        || !half.input.contains(x)
        || !other_input_is(graph, half, x, 0.5)
        || single_consumer(graph, half_x)? != out
    {
        return None;
    }
    Some((x.clone(), out))
}

/// Registers the ONNX node's op with tract's loader.
pub(crate) fn register(onnx: &mut tract_onnx::Onnx) {
    onnx.op_register
        .insert(OP_TYPE, |_, _| Ok((expand(GeluExpansion), vec![])));
}

/// Shape inference for the ONNX node.
#[derive(Debug, Clone)]
struct GeluExpansion;

impl Expansion for GeluExpansion {
    fn name(&self) -> StaticName {
        OP_TYPE.into()
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        check_input_arity(inputs, 1)?;
        check_output_arity(outputs, 1)?;
        s.equals(&inputs[0].datum_type, f32::datum_type())?;
        s.equals(&outputs[0].datum_type, f32::datum_type())?;
        s.equals(&outputs[0].shape, &inputs[0].shape)
    }

    fn wire(
        &self,
        prefix: &str,
        model: &mut TypedModel,
        inputs: &[OutletId],
    ) -> TractResult<TVec<OutletId>> {
        model.wire_node(prefix, Gelu, inputs)
    }
}

/// `x * 0.5 * (1 + erf(x / sqrt2))`, element-wise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Gelu;

impl Op for Gelu {
    fn name(&self) -> StaticName {
        "Gelu".into()
    }

    op_as_typed_op!();
}

impl EvalOp for Gelu {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let x = args_1!(inputs);
        let mut y = x.into_tensor();
        {
            let mut plain = y.try_as_plain_ram_mut()?;
            gelu(plain.as_slice_mut::<f32>()?);
        }
        Ok(tvec!(y.into_tvalue()))
    }
}

impl TypedOp for Gelu {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(
            inputs.len() == 1 && inputs[0].datum_type == f32::datum_type(),
            "Gelu: one f32 input, got {inputs:?}"
        );
        Ok(tvec!(f32::fact(inputs[0].shape.clone())))
    }

    as_op!();
}

/// In place, four values at a time.
pub(crate) fn gelu(x: &mut [f32]) {
    map_in_place(x, gelu_one::<F4>, gelu_one::<f32>);
}

#[inline(always)]
fn gelu_one<L: Lane>(x: L) -> L {
    (x * L::splat(0.5)) * (erf(x * L::splat(std::f32::consts::FRAC_1_SQRT_2)) + L::splat(1.0))
}

/// Abramowitz and Stegun 7.1.26, as tract's portable `erf` kernel computes it.
#[inline(always)]
#[allow(clippy::excessive_precision)]
fn erf<L: Lane>(x: L) -> L {
    const A: [f32; 6] = [
        0.070_523_078_4,
        0.042_282_012_3,
        0.009_270_527_2,
        0.000_152_014_3,
        0.000_276_567_2,
        0.000_043_063_8,
    ];
    let abs = x.abs();
    let mut y = L::splat(A[5]) * abs;
    for a in A[..5].iter().rev() {
        y = (L::splat(*a) + y) * abs;
    }
    let one = L::splat(1.0);
    let t2 = (y + one) * (y + one);
    let t4 = t2 * t2;
    let t8 = t4 * t4;
    let t16 = t8 * t8;
    (one - one / t16).copysign(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_formula() {
        let x: Vec<f32> = (-800..=800).map(|i| i as f32 / 100.0).collect();
        let mut y = x.clone();
        gelu(&mut y);
        for (x, y) in x.iter().zip(&y) {
            let want = 0.5 * *x as f64 * (1.0 + libm_erf(*x as f64 / 2f64.sqrt()));
            let d = (*y as f64 - want).abs();
            assert!(
                d < 3e-6 * (1.0 + x.abs() as f64),
                "gelu({x}) = {y}, want {want}"
            );
        }
        assert_eq!(erf(0.0), 0.0);
        assert!(gelu_one(f32::NAN).is_nan());
    }

    /// erf by its Maclaurin series in f64 (Abramowitz and Stegun 7.1.5): a reference for the
    /// test only. Past 4 it is 1 to within 2e-8, far below the approximation's error.
    fn libm_erf(x: f64) -> f64 {
        if x.abs() > 4.0 {
            return x.signum();
        }
        let (mut term, mut sum, mut n) = (x, x, 0.0);
        while term.abs() > 1e-17 * sum.abs().max(1e-300) {
            n += 1.0;
            term *= -x * x / n;
            sum += term / (2.0 * n + 1.0);
        }
        2.0 / std::f64::consts::PI.sqrt() * sum
    }

    /// Equal natively and in wasm (where this runs as a browser test too).
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn the_same_bits_on_every_target() {
        // Integer arithmetic and one division: inputs equal on every target.
        let mut x: Vec<f32> = (0..11 * 1536)
            .map(|i| ((i * 7919 % 1013) as f32 - 506.0) / 97.0)
            .collect();
        gelu(&mut x);
        let folded = crate::kernels::lanes::fingerprint(&x);
        assert_eq!(folded, GOLDEN, "{folded:#x}");
    }

    const GOLDEN: u64 = 0x4104131d1d54619d;
}
