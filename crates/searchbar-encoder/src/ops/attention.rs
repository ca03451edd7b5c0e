//! Self-attention as one op, for the graph that embeds one text at a time (the query path).
//!
//! An exporter spells each attention block as about twenty ONNX nodes: reshapes into heads,
//! transposes, two scalings, two batched matmuls and a softmax. For a 10-token query tract runs
//! them as a dozen small ops whose fixed costs (packing, shape bookkeeping, a buffer per node) are
//! most of their time, for 80 thousand multiply-adds. [`fuse_attention`] replaces each block, where
//! the attention mask is already gone (see `prepare::drop_attention_mask`), with one
//! `Attention(q, k, v)` node, and [`attend`] computes it in one pass over the `[seq, width]` rows,
//! with no copies.
//!
//! The kernel is plain Rust whose every float operation is spelled out (fixed-order partial
//! sums from `lanes.rs`, its own `exp`): the same bits natively and in wasm, vectorised or
//! not, so the browser and `searchbar query` still rank alike.

use crate::kernels::lanes::{dot, map_in_place, sum, zip_in_place, Lane, F4, ROUND};
use crate::prepare::{
    drop_dead_nodes, float_attribute, initializer, int_attr, int_attribute, int_values, producer,
    scalar_value, single_consumer,
};
use tract_onnx::pb::{GraphProto, ModelProto};
use tract_onnx::tract_hir::internal::*;

/// The ONNX op type the load-time rewrite emits (never written to a shipped file).
pub(crate) const OP_TYPE: &str = "SearchbarAttention";

/// Replaces each mask-free self-attention block with one [`OP_TYPE`] node; returns how many.
/// A block that does not match exactly is left alone.
pub(crate) fn fuse_attention(model: &mut ModelProto) -> usize {
    let Some(graph) = model.graph.as_mut() else {
        return 0;
    };
    let blocks: Vec<Block> = (0..graph.node.len())
        .filter_map(|i| match_block(graph, i))
        .collect();
    for b in &blocks {
        let n = &mut graph.node[b.output_node];
        n.op_type = OP_TYPE.into();
        n.domain.clear();
        n.input = vec![b.q.clone(), b.k.clone(), b.v.clone()];
        n.attribute = vec![
            int_attribute("head_dim", b.head_dim as i64),
            float_attribute("scale", b.scale),
        ];
    }
    if !blocks.is_empty() {
        drop_dead_nodes(graph);
    }
    blocks.len()
}

/// One matched block: its `[batch, seq, width]` inputs, head size, score scale, and the node
/// whose output is the block's `[batch, seq, width]` result.
struct Block {
    q: String,
    k: String,
    v: String,
    head_dim: usize,
    scale: f32,
    output_node: usize,
}

/// The block around Softmax node `i`: `softmax(Q·s1 · (K·s2)ᵀ) · V`, each of Q, K, V a
/// `[b, s, w]` tensor split into `[b, heads, s, d]` heads, and the result merged back.
fn match_block(graph: &GraphProto, i: usize) -> Option<Block> {
    let softmax = &graph.node[i];
    let axis = int_attr(softmax, "axis", -1);
    if softmax.op_type != "Softmax" || !(axis == -1 || axis == 3) {
        return None;
    }
    let scores = through_identity(graph, softmax.input.first()?)?;
    if scores.op_type != "MatMul" || scores.input.len() != 2 {
        return None;
    }
    let (q_heads, s1) = scaled(graph, &scores.input[0])?;
    let (k_heads_t, s2) = scaled(graph, &scores.input[1])?;
    let (q, d_q) = split_heads(graph, q_heads)?;
    let (k, d_k) = split_heads(graph, transposed_heads(graph, k_heads_t)?)?;
    // The probabilities feed exactly one MatMul with V's heads.
    let pv_index = consumer_through_identity(graph, softmax.output.first()?)?;
    let pv = &graph.node[pv_index];
    if pv.op_type != "MatMul" || pv.input.len() != 2 {
        return None;
    }
    let (v, d_v) = split_heads(graph, &pv.input[1])?;
    let merge = single_consumer(graph, pv.output.first()?)?;
    if !is_transpose(&graph.node[merge], &[0, 2, 1, 3]) {
        return None;
    }
    let output_node = single_consumer(graph, graph.node[merge].output.first()?)?;
    let reshape = &graph.node[output_node];
    if reshape.op_type != "Reshape" || rank_of_shape(graph, reshape.input.get(1)?) != Some(3) {
        return None;
    }
    (d_q == d_k && d_k == d_v && d_q > 0).then(|| Block {
        q: q.to_string(),
        k: k.to_string(),
        v: v.to_string(),
        head_dim: d_q,
        scale: s1 * s2,
        output_node,
    })
}

/// For `Mul(x, c)` (either order) with `c` a scalar initializer: `x` and `c`.
fn scaled<'a>(graph: &'a GraphProto, tensor: &str) -> Option<(&'a str, f32)> {
    let mul = producer(graph, tensor)?;
    if mul.op_type != "Mul" || mul.input.len() != 2 {
        return None;
    }
    [(0, 1), (1, 0)]
        .into_iter()
        .find_map(|(x, c)| Some((mul.input[x].as_str(), scalar_value(graph, &mul.input[c])?)))
}

/// For `Transpose(Reshape(x, [b, s, -1, d]), perm = [0, 2, 1, 3])`: `x` and `d`.
fn split_heads<'a>(graph: &'a GraphProto, tensor: &str) -> Option<(&'a str, usize)> {
    let transpose = producer(graph, tensor)?;
    if !is_transpose(transpose, &[0, 2, 1, 3]) {
        return None;
    }
    let reshape = producer(graph, transpose.input.first()?)?;
    if reshape.op_type != "Reshape" || reshape.input.len() != 2 {
        return None;
    }
    let d = last_of_shape(graph, &reshape.input[1])?;
    Some((reshape.input[0].as_str(), usize::try_from(d).ok()?))
}

/// For heads `h` (`[b, heads, s, d]`) transposed to `[b, heads, d, s]`, either directly or
/// through 3-D reshapes around a `[0, 2, 1]` transpose: `h`.
fn transposed_heads<'a>(graph: &'a GraphProto, tensor: &str) -> Option<&'a str> {
    let node = producer(graph, tensor)?;
    if is_transpose(node, &[0, 1, 3, 2]) {
        return Some(node.input.first()?.as_str());
    }
    if node.op_type != "Reshape" {
        return None;
    }
    let t = producer(graph, node.input.first()?)?;
    if !is_transpose(t, &[0, 2, 1]) {
        return None;
    }
    let inner = producer(graph, t.input.first()?)?;
    (inner.op_type == "Reshape" && rank_of_shape(graph, inner.input.get(1)?) == Some(3))
        .then(|| inner.input.first().map(String::as_str))
        .flatten()
}

fn is_transpose(node: &tract_onnx::pb::NodeProto, perm: &[i64]) -> bool {
    node.op_type == "Transpose"
        && node
            .attribute
            .iter()
            .any(|a| a.name == "perm" && a.ints == perm)
}

/// The last entry of a reshape's target shape, when it is a constant: an initializer, or a
/// Concat whose last input is a one-element initializer.
fn last_of_shape(graph: &GraphProto, shape: &str) -> Option<i64> {
    if let Some(t) = initializer(graph, shape) {
        return int_values(t)?.last().copied();
    }
    let concat = producer(graph, shape)?;
    if concat.op_type != "Concat" {
        return None;
    }
    let last = int_values(initializer(graph, concat.input.last()?)?)?;
    (last.len() == 1).then(|| last[0])
}

/// How many entries a reshape's target shape has, when the graph says: an initializer's
/// length, or a Concat of one-element parts.
fn rank_of_shape(graph: &GraphProto, shape: &str) -> Option<usize> {
    if let Some(t) = initializer(graph, shape) {
        return Some(int_values(t)?.len());
    }
    let concat = producer(graph, shape)?;
    (concat.op_type == "Concat").then_some(concat.input.len())
}

fn through_identity<'a>(
    graph: &'a GraphProto,
    tensor: &str,
) -> Option<&'a tract_onnx::pb::NodeProto> {
    let mut node = producer(graph, tensor)?;
    while node.op_type == "Identity" {
        node = producer(graph, node.input.first()?)?;
    }
    Some(node)
}

fn consumer_through_identity(graph: &GraphProto, tensor: &str) -> Option<usize> {
    let mut i = single_consumer(graph, tensor)?;
    while graph.node[i].op_type == "Identity" {
        i = single_consumer(graph, graph.node[i].output.first()?)?;
    }
    Some(i)
}

/// Registers the ONNX node's op with tract's loader.
pub(crate) fn register(onnx: &mut tract_onnx::Onnx) {
    onnx.op_register.insert(OP_TYPE, |_, node| {
        let head_dim = node.get_attr::<i64>("head_dim")?;
        ensure!(head_dim > 0, "{OP_TYPE}: head_dim must be positive");
        let scale = node.get_attr::<f32>("scale")?;
        Ok((
            expand(AttentionExpansion(Attention {
                head_dim: head_dim as usize,
                scale,
                packed: false,
            })),
            vec![],
        ))
    });
}

/// `softmax(q_h · k_hᵀ · scale) · v_h` for each head `h` (a `head_dim` slice of the last
/// axis) of `[batch, seq, width]` inputs, with a `[batch, seq, width]` result.
#[derive(Debug, Clone)]
pub(crate) struct Attention {
    head_dim: usize,
    scale: f32,
    /// One input, `[batch, seq, 3 * width]`: each row holds q, k and v side by side, as one
    /// matmul over the three projections' weights computes them (see [`AttentionExpansion`]).
    packed: bool,
}

impl Attention {
    /// Whether q, k and v come packed in one input.
    pub(crate) fn packed(&self) -> bool {
        self.packed
    }
}

impl PartialEq for Attention {
    fn eq(&self, other: &Self) -> bool {
        self.head_dim == other.head_dim
            && self.scale.to_bits() == other.scale.to_bits()
            && self.packed == other.packed
    }
}

impl Eq for Attention {}

/// Shape inference for the ONNX node; wiring adds the [`Attention`] op.
#[derive(Debug, Clone)]
struct AttentionExpansion(Attention);

impl Expansion for AttentionExpansion {
    fn name(&self) -> StaticName {
        OP_TYPE.into()
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        check_input_arity(inputs, 3)?;
        check_output_arity(outputs, 1)?;
        for input in inputs {
            s.equals(&input.datum_type, f32::datum_type())?;
            s.equals(&input.rank, 3)?;
            s.equals(&input.shape, &inputs[0].shape)?;
        }
        s.equals(&outputs[0].datum_type, f32::datum_type())?;
        s.equals(&outputs[0].shape, &inputs[0].shape)?;
        Ok(())
    }

    fn wire(
        &self,
        prefix: &str,
        model: &mut TypedModel,
        inputs: &[OutletId],
    ) -> TractResult<TVec<OutletId>> {
        let op = &self.0;
        let width = model.outlet_fact(inputs[0])?.shape.last().cloned();
        if let Some(width) = width.and_then(|d| d.to_usize().ok()) {
            ensure!(
                width % op.head_dim == 0,
                "{prefix}: width {width} is not a whole number of {}-wide heads",
                op.head_dim
            );
        }
        // Q, K and V are three int8 matmuls of the same rows: one matmul over their weights
        // side by side computes the same bits (each column's sum is independent), quantizes
        // the rows once, and hands the browser's helper worker one share instead of three.
        let merged = format!("{prefix}.qkv");
        if let Some(qkv) = crate::ops::int8_matmul::merge_matmuls(model, &merged, inputs)? {
            let packed = Attention {
                packed: true,
                ..op.clone()
            };
            return model.wire_node(prefix, packed, &[qkv]);
        }
        model.wire_node(prefix, op.clone(), inputs)
    }
}

impl Op for Attention {
    fn name(&self) -> StaticName {
        "Attention".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!(
            "heads of {}, scale {}{}",
            self.head_dim,
            self.scale,
            if self.packed { ", q|k|v packed" } else { "" }
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for Attention {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let shapes: Vec<&[usize]> = inputs.iter().map(|t| t.shape()).collect();
        // Packed: one input three times as wide as the result.
        let (parts, widths) = if self.packed { (1, 3) } else { (3, 1) };
        ensure!(
            inputs.len() == parts
                && shapes[0].len() == 3
                && shapes.iter().all(|s| *s == shapes[0])
                && shapes[0][2].is_multiple_of(widths),
            "Attention: input shapes {shapes:?} differ or are not [batch, seq, width]{}",
            if self.packed {
                " with q, k, v packed"
            } else {
                ""
            }
        );
        let (batch, seq) = (shapes[0][0], shapes[0][1]);
        let width = shapes[0][2] / widths;
        ensure!(
            width.is_multiple_of(self.head_dim),
            "Attention: width {width} is not a whole number of {}-wide heads",
            self.head_dim
        );
        let mut out = Tensor::zero::<f32>(&[batch, seq, width])?;
        {
            let plain = inputs
                .iter()
                .map(|t| t.try_as_plain_ram())
                .collect::<TractResult<Vec<_>>>()?;
            let data = plain
                .iter()
                .map(|t| t.as_slice::<f32>())
                .collect::<TractResult<Vec<_>>>()?;
            let mut o = out.try_as_plain_ram_mut()?;
            let o = o.as_slice_mut::<f32>()?;
            let (item, stride) = (seq * width, seq * width * widths);
            for b in 0..batch {
                let at = b * stride..(b + 1) * stride;
                let [q, k, v] = if self.packed {
                    let qkv = &data[0][at];
                    [0, 1, 2].map(|part| Rows::packed(qkv, width, part, seq))
                } else {
                    [0, 1, 2].map(|part| Rows::new(&data[part][at.clone()], width))
                };
                attend(
                    q,
                    k,
                    v,
                    self.head_dim,
                    self.scale,
                    &mut o[b * item..][..item],
                );
            }
        }
        Ok(tvec!(out.into_tvalue()))
    }
}

impl TypedOp for Attention {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let parts = if self.packed { 1 } else { 3 };
        ensure!(inputs.len() == parts && inputs.iter().all(|f| f.datum_type == f32::datum_type()));
        ensure!(
            inputs[0].rank() == 3,
            "Attention: inputs must be [batch, seq, width]"
        );
        let mut shape = inputs[0].shape.to_tvec();
        if self.packed {
            let packed = shape[2]
                .to_usize()
                .context("Attention: packed width is symbolic")?;
            ensure!(
                packed % 3 == 0,
                "Attention: packed width {packed} is not 3 x width"
            );
            shape[2] = (packed / 3).to_dim();
        }
        Ok(tvec!(f32::fact(shape)))
    }

    /// Scores (q·k) and the weighted sum of values: two multiply-adds per pair of positions
    /// and output column.
    fn cost(&self, inputs: &[&TypedFact]) -> TractResult<TVec<(Cost, TDim)>> {
        let out = &self.output_facts(inputs)?[0].shape;
        let pairs = out[0].clone() * &out[1] * &out[1];
        Ok(tvec!((Cost::FMA(f32::datum_type()), pairs * &out[2] * 2)))
    }

    as_op!();
}

/// `seq` rows of `width` floats, `stride` floats apart.
#[derive(Clone, Copy)]
pub(crate) struct Rows<'a> {
    data: &'a [f32],
    width: usize,
    stride: usize,
    seq: usize,
}

impl<'a> Rows<'a> {
    /// Contiguous rows.
    pub(crate) fn new(data: &'a [f32], width: usize) -> Self {
        let seq = data.len() / width.max(1);
        Self {
            data,
            width,
            stride: width,
            seq,
        }
    }

    /// Part `part` (0 for q, 1 for k, 2 for v) of `seq` rows that hold q, k and v side by side.
    pub(crate) fn packed(qkv: &'a [f32], width: usize, part: usize, seq: usize) -> Self {
        Self {
            data: &qkv[part * width..],
            width,
            stride: 3 * width,
            seq,
        }
    }

    /// Row `i`'s slice `[at, at + n)`.
    fn part(&self, i: usize, at: usize, n: usize) -> &'a [f32] {
        &self.data[i * self.stride + at..][..n]
    }
}

/// Attention for one batch item: `out` gets, for each head, `softmax(q·kᵀ·scale)·v`.
pub(crate) fn attend(q: Rows, k: Rows, v: Rows, head_dim: usize, scale: f32, out: &mut [f32]) {
    let (seq, width) = (q.seq, q.width);
    let mut p = vec![0f32; seq];
    for h in (0..width).step_by(head_dim) {
        for i in 0..seq {
            let qi = q.part(i, h, head_dim);
            for (j, pj) in p.iter_mut().enumerate() {
                *pj = dot(qi, k.part(j, h, head_dim)) * scale;
            }
            softmax(&mut p);
            let o = &mut out[i * width + h..][..head_dim];
            for (j, &pj) in p.iter().enumerate() {
                let (vj, w) = (v.part(j, h, head_dim), F4::splat(pj));
                zip_in_place(o, vj, |o, x| o + w * x, |o, x| o + pj * x);
            }
        }
    }
}

/// In place, over all of `x`.
fn softmax(x: &mut [f32]) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let max4 = F4::splat(max);
    map_in_place(
        x,
        |v| exp_nonpositive(v - max4),
        |v| exp_nonpositive(v - max),
    );
    let inv = 1.0 / sum(x);
    let inv4 = F4::splat(inv);
    map_in_place(x, |v| v * inv4, |v| v * inv);
}

/// `e^x` for `x <= 0` (relative error about 1e-7): `2^n · e^r` with `|r| <= ln2 / 2` and
/// Cephes' `expf` polynomial for `e^r`. Only adds, multiplies and bit moves, so every target
/// gets the same bits (a libm `expf` differs between them).
#[inline(always)]
fn exp_nonpositive<L: Lane>(x: L) -> L {
    // Below this, e^x is under f32's smallest normal; the result is then 2^-126-ish, not 0,
    // which no softmax weight can tell apart.
    let x = x.at_least(-87.0);
    // Round to nearest by adding and removing 1.5 * 2^23.
    let t = x * L::splat(std::f32::consts::LOG2_E) + L::splat(ROUND);
    let n = t - L::splat(ROUND);
    // ln 2 in two parts, so that n * ln2 is exact enough.
    let r = (x - n * L::splat(0.693_359_4)) + n * L::splat(2.121_944_4e-4);
    let mut p = L::splat(1.987_569_1e-4);
    for c in [
        1.398_199_9e-3,
        8.333_452e-3,
        4.166_579_6e-2,
        1.666_666_5e-1,
        0.5,
    ] {
        p = p * r + L::splat(c);
    }
    let er = (p * r) * r + r + L::splat(1.0);
    er * t.pow2_of_rounded()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic spread of values in [-1, 1).
    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// The textbook formula in f64.
    fn reference(q: &[f32], k: &[f32], v: &[f32], width: usize, d: usize, scale: f64) -> Vec<f64> {
        let seq = q.len() / width;
        let mut out = vec![0f64; q.len()];
        for h in (0..width).step_by(d) {
            for i in 0..seq {
                let scores: Vec<f64> = (0..seq)
                    .map(|j| {
                        (0..d)
                            .map(|t| q[i * width + h + t] as f64 * k[j * width + h + t] as f64)
                            .sum::<f64>()
                            * scale
                    })
                    .collect();
                let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                let sum: f64 = e.iter().sum();
                for j in 0..seq {
                    for t in 0..d {
                        out[i * width + h + t] += e[j] / sum * v[j * width + h + t] as f64;
                    }
                }
            }
        }
        out
    }

    #[test]
    fn exp_matches_the_library_to_a_few_ulps() {
        let mut worst = 0f64;
        for i in 0..=200_000 {
            let x = -(i as f32) * 87.0 / 200_000.0;
            let want = (x as f64).exp();
            let got = exp_nonpositive(x) as f64;
            worst = worst.max(((got - want) / want).abs());
        }
        assert!(worst < 3e-7, "worst relative error {worst}");
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert!(exp_nonpositive(-1000.0) >= 0.0 && exp_nonpositive(-1000.0) < 1e-37);
    }

    #[test]
    fn attention_matches_the_formula() {
        // 12 heads of 32 like MiniLM, and an odd head size that leaves a remainder in `dot`.
        for (seq, width, d) in [(1, 384, 32), (10, 384, 32), (37, 60, 12), (5, 44, 11)] {
            let (q, k, v) = (
                values(seq * width, 1),
                values(seq * width, 2),
                values(seq * width, 3),
            );
            // Large enough that the softmax is far from uniform.
            let scale = 3.0 / (d as f32).sqrt();
            let mut out = vec![0f32; seq * width];
            attend(
                Rows::new(&q, width),
                Rows::new(&k, width),
                Rows::new(&v, width),
                d,
                scale,
                &mut out,
            );
            let want = reference(&q, &k, &v, width, d, scale as f64);
            let worst = out
                .iter()
                .zip(&want)
                .map(|(a, b)| (*a as f64 - b).abs())
                .fold(0f64, f64::max);
            assert!(
                worst < 2e-6,
                "seq {seq}, width {width}, d {d}: max abs diff {worst}"
            );
        }
    }

    /// The bits of one MiniLM-sized block, folded into one number: equal natively and in wasm
    /// (where this runs as a browser test too), so neither side rounds differently.
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn the_same_bits_on_every_target() {
        let (seq, width) = (11, 384);
        let (q, k, v) = (
            values(seq * width, 4),
            values(seq * width, 5),
            values(seq * width, 6),
        );
        let mut out = vec![0f32; seq * width];
        let scale = 0.4204482f32 * 0.4204482;
        let rows = |x| Rows::new(x, width);
        attend(rows(&q), rows(&k), rows(&v), 32, 2.0 * scale, &mut out);
        let folded = crate::kernels::lanes::fingerprint(&out);
        assert_eq!(folded, GOLDEN, "{folded:#x}");
    }

    const GOLDEN: u64 = 0xb5221a37a57f6b18;

    #[test]
    fn packed_rows_give_the_same_bits() {
        let (seq, width) = (7, 64);
        let (q, k, v) = (
            values(seq * width, 7),
            values(seq * width, 8),
            values(seq * width, 9),
        );
        let qkv: Vec<f32> = (0..seq)
            .flat_map(|i| [&q, &k, &v].map(|x| &x[i * width..][..width]).concat())
            .collect();
        let op = |packed| Attention {
            head_dim: 16,
            scale: 0.25,
            packed,
        };
        let t = |x: &[f32], w| Tensor::from_shape(&[1, seq, w], x).unwrap().into_tvalue();
        let apart = op(false)
            .eval_out_of_plan(tvec!(t(&q, width), t(&k, width), t(&v, width)))
            .unwrap()
            .unwrap();
        let packed = op(true)
            .eval_out_of_plan(tvec!(t(&qkv, 3 * width)))
            .unwrap()
            .unwrap();
        assert_eq!(packed[0].shape(), &[1, seq, width]);
        let bits = |t: &TValue| -> Vec<u32> {
            let view = t.to_plain_array_view::<f32>().unwrap();
            view.iter().map(|v| v.to_bits()).collect()
        };
        assert_eq!(bits(&packed[0]), bits(&apart[0]));
        let err = op(true)
            .eval_out_of_plan(tvec!(t(&qkv[..seq * 190], 190)))
            .unwrap_err();
        assert!(err.to_string().contains("packed"), "{err}");
    }

    #[test]
    fn the_op_rejects_mismatched_inputs() {
        let op = Attention {
            head_dim: 4,
            scale: 0.5,
            packed: false,
        };
        let t = |shape: &[usize]| Tensor::zero::<f32>(shape).unwrap().into_tvalue();
        let err = op
            .eval_out_of_plan(tvec!(t(&[1, 3, 8]), t(&[1, 2, 8]), t(&[1, 3, 8])))
            .unwrap_err();
        assert!(err.to_string().contains("differ"), "{err}");
        let err = op
            .eval_out_of_plan(tvec!(t(&[1, 3, 6]), t(&[1, 3, 6]), t(&[1, 3, 6])))
            .unwrap_err();
        assert!(err.to_string().contains("heads"), "{err}");
        let ok = op
            .eval_out_of_plan(tvec!(t(&[2, 3, 8]), t(&[2, 3, 8]), t(&[2, 3, 8])))
            .unwrap()
            .unwrap();
        assert_eq!(ok[0].shape(), &[2, 3, 8]);
    }
}
