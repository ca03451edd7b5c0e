//! One-time rewrite of an int8 ONNX export into a graph tract runs fast.
//!
//! Two patterns are rewritten, both exact up to float rounding:
//! * `Gather(Cast(q) * s, ids)` becomes `Cast(Gather(q, ids)) * Gather(s, ids)`: tract would
//!   otherwise dequantize the whole 30522 x 384 word-embedding table on every call, which is
//!   most of a short query's time, to then read a handful of rows.
//! * `x * (0.5 * (erf(x / sqrt2) + 1))` becomes `(x * 0.5) * (erf(x * (1/sqrt2)) + 1)`, the
//!   order tract's GELU detector matches, so the six-node chain runs as one fused kernel.
//!
//! * `And(t, mask)` where `t` is provably all true (an exporter's `arange >= 0` visibility term)
//!   becomes `Identity(mask)`. Besides saving work, tract's optimiser folds that `And` into a
//!   tensor of the wrong shape (`[b,1,1,s]` where it promised `[b,1,s,s]`), which its debug
//!   checks reject; the broadcast result downstream is the same either way.
//!
//! Anything that does not match is left alone, so preparing twice is a no-op and other
//! sentence-transformers exports pass through unchanged.
//!
//! The encoder's bottom layer, with the graph helpers the fused ops' own rewrites use: it
//! works on the ONNX protobuf alone. The rewrites applied at load ([`keep_int8_weights`],
//! [`drop_attention_mask`]) emit nodes that only the encoder's ops ([`crate::ops`]) run.

use crate::EncoderError;
use prost::Message;
use std::collections::HashMap;
use tract_onnx::pb::tensor_shape_proto::{dimension, Dimension};
use tract_onnx::pb::{
    attribute_proto::AttributeType, tensor_proto::DataType, type_proto, AttributeProto, GraphProto,
    ModelProto, NodeProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};

/// The op type [`keep_int8_weights`] gives the int8 matmuls it rewrites (run by
/// [`crate::ops::int8_matmul`]).
pub(crate) const INT8_MATMUL_OP: &str = "SearchbarInt8MatMul";

/// What [`prepare_onnx`] changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PrepareReport {
    /// Embedding lookups that now gather int8 rows before dequantizing.
    pub gathers: usize,
    /// GELU chains reordered into tract's fused pattern.
    pub gelus: usize,
    /// Always-true mask terms removed.
    pub masks: usize,
}

/// An ONNX file's model, for a rewrite; bytes that are not one are a [`EncoderError::Prepare`].
pub(crate) fn decode_model(bytes: &[u8]) -> Result<ModelProto, EncoderError> {
    ModelProto::decode(bytes).map_err(|e| EncoderError::Prepare(format!("not an ONNX model: {e}")))
}

/// Rewrites ONNX bytes; returns the new bytes and what was changed.
pub fn prepare_onnx(bytes: &[u8]) -> Result<(Vec<u8>, PrepareReport), EncoderError> {
    let mut model = decode_model(bytes)?;
    let graph = model
        .graph
        .as_mut()
        .ok_or_else(|| EncoderError::Prepare("the ONNX model has no graph".into()))?;
    let report = PrepareReport {
        gathers: gather_before_dequantize(graph),
        gelus: reorder_gelu(graph),
        masks: drop_always_true_and(graph),
    };
    // The rewrites leave the old dequantize pairs and mask terms unread.
    if report != PrepareReport::default() {
        drop_dead_nodes(graph);
    }
    Ok((model.encode_to_vec(), report))
}

/// The graph input that takes the looked-up word embeddings once [`split_token_rows`] has moved
/// the table out (`[batch, sequence, dim]` floats; Hugging Face's name for the same tensor).
pub const TOKEN_ROWS_INPUT: &str = "inputs_embeds";

/// Moves the word-embedding table out of a prepared graph ([`prepare_onnx`]): the lookup
/// `Cast(Gather(q, input_ids)) * Gather(scale, input_ids)` becomes the graph input
/// [`TOKEN_ROWS_INPUT`], and the table becomes a rows file ([`crate::TokenRows`]). Returns the
/// new graph and the rows file, or `None` where the graph has no such lookup (other exports
/// keep their table inside). `input_ids` stays an input only where something else reads it.
pub fn split_token_rows(bytes: &[u8]) -> Result<Option<SplitGraph>, EncoderError> {
    let mut model = decode_model(bytes)?;
    let Some(graph) = model.graph.as_mut() else {
        return Ok(None);
    };
    let Some((i, q, scale)) = (0..graph.node.len()).find_map(|i| token_lookup(graph, i)) else {
        return Ok(None);
    };
    let (vocab, dim) = (q.dims[0] as usize, q.dims[1] as usize);
    let codes = int8_values(q).filter(|c| c.len() == vocab * dim);
    let scales = float_values(scale).filter(|s| s.len() == vocab);
    let (Some(codes), Some(scales)) = (codes, scales) else {
        return Err(EncoderError::Prepare(format!(
            "the word-embedding table {:?} or its scales {:?} hold the wrong number of values",
            q.name, scale.name
        )));
    };
    let mut rows = Vec::with_capacity(vocab * crate::token_rows::row_len(dim));
    for (codes, scale) in codes.chunks_exact(dim).zip(&scales) {
        rows.extend_from_slice(&scale.to_le_bytes());
        rows.extend_from_slice(codes);
    }
    let ids_input = graph
        .input
        .iter()
        .position(|v| v.name == "input_ids")
        .ok_or_else(|| EncoderError::Prepare("the graph has no input_ids input".into()))?;
    let dims = tensor_dims(&graph.input[ids_input]);
    // The lookup's output is read from the new input instead; the lookup and the table are then
    // unread and go.
    let out = graph.node[i].output[0].clone();
    for n in graph.node.iter_mut() {
        for input in n.input.iter_mut().filter(|x| **x == out) {
            *input = TOKEN_ROWS_INPUT.into();
        }
    }
    let mut shape = dims;
    shape.push(Dimension {
        value: Some(dimension::Value::DimValue(dim as i64)),
        ..Default::default()
    });
    let embeds = ValueInfoProto {
        name: TOKEN_ROWS_INPUT.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: DataType::Float as i32,
                shape: Some(TensorShapeProto { dim: shape }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    };
    drop_dead_nodes(graph);
    if graph
        .node
        .iter()
        .any(|n| n.input.iter().any(|x| x == "input_ids"))
    {
        graph.input.insert(ids_input + 1, embeds);
    } else {
        graph.input[ids_input] = embeds;
    }
    Ok(Some(SplitGraph {
        onnx: model.encode_to_vec(),
        token_rows: rows,
    }))
}

/// A graph without its word-embedding table, and the table as rows ([`split_token_rows`]).
#[derive(Debug, Clone)]
pub struct SplitGraph {
    pub onnx: Vec<u8>,
    pub token_rows: Vec<u8>,
}

/// For the node at `i`, a prepared lookup's last step `Mul(Cast(Gather(q, input_ids)),
/// Gather(scale, input_ids))` with `q` an int8 `[vocab, dim]` initializer and `scale` its
/// `[vocab, 1]` floats: the index, `q` and `scale`.
fn token_lookup(graph: &GraphProto, i: usize) -> Option<(usize, &TensorProto, &TensorProto)> {
    let mul = &graph.node[i];
    if mul.op_type != "Mul" || mul.input.len() != 2 {
        return None;
    }
    let gathered = |tensor: &str| -> Option<&TensorProto> {
        let g = producer(graph, tensor).filter(|n| {
            n.op_type == "Gather"
                && int_attr(n, "axis", 0) == 0
                && n.input.get(1).map(String::as_str) == Some("input_ids")
        })?;
        initializer(graph, &g.input[0])
    };
    [(0, 1), (1, 0)].into_iter().find_map(|(c, s)| {
        let cast = producer(graph, &mul.input[c]).filter(|n| n.op_type == "Cast")?;
        let q = gathered(cast.input.first()?)?;
        let scale = gathered(&mul.input[s])?;
        (q.data_type == DataType::Int8 as i32
            && q.dims.len() == 2
            && scale.data_type == DataType::Float as i32
            && scale.dims == [q.dims[0], 1])
        .then_some((i, q, scale))
    })
}

/// The symbolic or fixed dimensions of a graph input.
fn tensor_dims(v: &ValueInfoProto) -> Vec<Dimension> {
    match v.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(type_proto::Value::TensorType(t)) => {
            t.shape.as_ref().map(|s| s.dim.clone()).unwrap_or_default()
        }
        None => Vec::new(),
    }
}

/// The elements of an int8 initializer, as bytes.
pub(crate) fn int8_values(t: &TensorProto) -> Option<Vec<u8>> {
    if !t.raw_data.is_empty() {
        return Some(t.raw_data.clone());
    }
    // Without raw data ONNX stores int8 elements one per int32.
    (!t.int32_data.is_empty()).then(|| t.int32_data.iter().map(|&v| v as i8 as u8).collect())
}

/// The elements of a float initializer.
fn float_values(t: &TensorProto) -> Option<Vec<f32>> {
    if !t.float_data.is_empty() {
        return Some(t.float_data.clone());
    }
    (t.raw_data.len().is_multiple_of(4)).then(|| {
        t.raw_data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    })
}

/// Rewrites a graph for batches without padding, where every attention-mask value is 1.
///
/// Drops the additive attention mask (`Add(MatMul(q, k), bias)` feeding a Softmax, where the
/// bias is computed from `attention_mask` alone) and the NaN guard after the Softmax
/// (`Where(IsNaN(p), c, p)`). With an all-ones mask the bias is 0 everywhere and the scores
/// are finite, so the result is the same to the bit, without two passes over every
/// `[batch, heads, len, len]` score tensor (tract evaluates those broadcasts element by
/// element under symbolic shapes: a sixth of a 256-token batch's time). Returns how many
/// nodes became identities; 0 leaves the graph as it was.
pub(crate) fn drop_attention_mask(model: &mut ModelProto) -> usize {
    let Some(graph) = model.graph.as_mut() else {
        return 0;
    };
    let mut dropped = 0;
    for i in 0..graph.node.len() {
        let kept = mask_add_scores(graph, i).or_else(|| nan_guarded(graph, i));
        if let Some(kept) = kept {
            let n = &mut graph.node[i];
            n.op_type = "Identity".into();
            n.input = vec![kept];
            n.attribute.clear();
            dropped += 1;
        }
    }
    if dropped > 0 {
        drop_dead_nodes(graph);
    }
    dropped
}

/// For `Add(scores, bias)` read only by a Softmax, with `scores` a MatMul output and `bias`
/// computed from the attention mask alone: the scores.
fn mask_add_scores(graph: &GraphProto, i: usize) -> Option<String> {
    let add = &graph.node[i];
    if add.op_type != "Add" || add.input.len() != 2 {
        return None;
    }
    let softmax = single_consumer(graph, add.output.first()?)?;
    if graph.node[softmax].op_type != "Softmax" {
        return None;
    }
    [(0, 1), (1, 0)].into_iter().find_map(|(s, b)| {
        let scores = &add.input[s];
        (producer(graph, scores)?.op_type == "MatMul"
            && mask_only(graph, &add.input[b], 0) == Some(true))
        .then(|| scores.clone())
    })
}

/// For `Where(IsNaN(p), c, p)` with `p` a Softmax output and `c` a constant: `p`.
fn nan_guarded(graph: &GraphProto, i: usize) -> Option<String> {
    let w = &graph.node[i];
    if w.op_type != "Where" || w.input.len() != 3 {
        return None;
    }
    let isnan = producer(graph, &w.input[0])?;
    let p = &w.input[2];
    (isnan.op_type == "IsNaN"
        && isnan.input.first() == Some(p)
        && producer(graph, p)?.op_type == "Softmax"
        && initializer(graph, &w.input[1]).is_some())
    .then(|| p.clone())
}

/// Whether a tensor is computed from constants, shapes and the `attention_mask` input only:
/// `Some(true)` if the mask is among its sources, `Some(false)` for constants alone, `None`
/// when anything else (token ids, activations) flows in.
fn mask_only(graph: &GraphProto, tensor: &str, depth: usize) -> Option<bool> {
    if depth > 32 {
        return None;
    }
    if tensor == "attention_mask" {
        return Some(true);
    }
    if initializer(graph, tensor).is_some() {
        return Some(false);
    }
    let n = producer(graph, tensor)?;
    match n.op_type.as_str() {
        // A shape carries no values of its input.
        "Shape" => Some(false),
        "Constant" => Some(false),
        _ => n
            .input
            .iter()
            .filter(|i| !i.is_empty())
            .try_fold(false, |any, i| Some(any | mask_only(graph, i, depth + 1)?)),
    }
}

const INV_SQRT2: &str = "searchbar.prepare.inv_sqrt2";
const HALF: &str = "searchbar.prepare.half";

fn gather_before_dequantize(graph: &mut GraphProto) -> usize {
    let mut rewritten = 0;
    let mut i = 0;
    while i < graph.node.len() {
        if let Some(new_nodes) = gather_rewrite(graph, i) {
            let n = new_nodes.len();
            graph.node.splice(i..=i, new_nodes);
            i += n;
            rewritten += 1;
        } else {
            i += 1;
        }
    }
    rewritten
}

/// The nodes that replace Gather node `i`, when it reads a dequantized int8 initializer that
/// nothing but Gathers reads.
fn gather_rewrite(graph: &GraphProto, i: usize) -> Option<Vec<NodeProto>> {
    let gather = &graph.node[i];
    if gather.op_type != "Gather" || !gather.domain.is_empty() || int_attr(gather, "axis", 0) != 0 {
        return None;
    }
    let (table, ids) = (gather.input.first()?, gather.input.get(1)?);
    let (q, scale) = dequantized(graph, table)?;
    // Per-row scales must be gathered with the rows; a scalar or per-column scale broadcasts.
    let per_row = match scale.dims.as_slice() {
        [rows, 1] if *rows == q.dims[0] && *rows > 1 => true,
        dims if dims.iter().product::<i64>() == 1 => false,
        [1, cols] if *cols == q.dims[1] => false,
        _ => return None,
    };
    if !consumers(graph, table).all(|n| n.op_type == "Gather" && n.input[0] == *table) {
        return None;
    }
    let out = gather.output.first()?;
    let name = &gather.name;
    let mut nodes = vec![
        node(
            "Gather",
            &format!("{name}.q"),
            &[&q.name, ids],
            &format!("{out}.q"),
        )
        .with_int("axis", 0),
        node(
            "Cast",
            &format!("{name}.f"),
            &[&format!("{out}.q")],
            &format!("{out}.f"),
        )
        .with_int("to", DataType::Float as i64),
    ];
    let scale_input = if per_row {
        let s = format!("{out}.scale");
        nodes.push(
            node("Gather", &format!("{name}.s"), &[&scale.name, ids], &s).with_int("axis", 0),
        );
        s
    } else {
        scale.name.clone()
    };
    nodes.push(node(
        "Mul",
        &format!("{name}.dq"),
        &[&format!("{out}.f"), &scale_input],
        out,
    ));
    Some(nodes)
}

/// For a tensor computed as `Cast(q) * s` (either operand order) from a 2-D int8 or uint8
/// initializer `q` and a float initializer `s`: `q` and `s`.
fn dequantized<'a>(
    graph: &'a GraphProto,
    tensor: &str,
) -> Option<(&'a TensorProto, &'a TensorProto)> {
    let mul = producer(graph, tensor)?;
    if mul.op_type != "Mul" || mul.input.len() != 2 {
        return None;
    }
    let (cast, scale) = [(0, 1), (1, 0)].into_iter().find_map(|(c, s)| {
        let cast = producer(graph, &mul.input[c]).filter(|n| n.op_type == "Cast")?;
        Some((cast, initializer(graph, &mul.input[s])?))
    })?;
    let q = initializer(graph, cast.input.first()?)?;
    let int8 = [DataType::Int8 as i32, DataType::Uint8 as i32];
    (int8.contains(&q.data_type)
        && q.dims.len() == 2
        && scale.data_type == DataType::Float as i32
        && int_attr(cast, "to", 0) == DataType::Float as i64)
        .then_some((q, scale))
}

/// Rewrites `MatMul(x, Cast(W_q) * s)`, with `W_q` an int8 `[k, n]` initializer and `s` one
/// scale per column (or one for all), into the encoder's own `Int8MatMul(x, W_q, s)`, which
/// keeps the weights int8 in memory (see `linear.rs`). Applied at load, never to a shipped
/// file: no other runtime knows the op. Returns how many matmuls were rewritten.
pub fn keep_int8_weights(model: &mut ModelProto) -> usize {
    let Some(graph) = model.graph.as_mut() else {
        return 0;
    };
    let mut rewritten = 0;
    for i in 0..graph.node.len() {
        if let Some(mut inputs) = int8_matmul_inputs(graph, i) {
            // A bias added right after joins the op; the Add passes the result on unchanged.
            if let Some((add, bias)) = bias_add(graph, i) {
                inputs.push(bias);
                let output = graph.node[i].output[0].clone();
                let a = &mut graph.node[add];
                a.op_type = "Identity".into();
                a.input = vec![output];
                a.attribute.clear();
            }
            let n = &mut graph.node[i];
            n.op_type = INT8_MATMUL_OP.into();
            n.input = inputs;
            n.attribute.clear();
            rewritten += 1;
        }
    }
    if rewritten > 0 {
        drop_dead_nodes(graph);
    }
    rewritten
}

/// For the matmul at `i` by int8 weights with one scale per column (or one for all), as
/// [`keep_int8_weights`] runs it: its input, weights and scale names.
pub(crate) fn int8_matmul_inputs(graph: &GraphProto, i: usize) -> Option<Vec<String>> {
    let matmul = &graph.node[i];
    if matmul.op_type != "MatMul" || !matmul.domain.is_empty() || matmul.input.len() != 2 {
        return None;
    }
    let (q, scale) = dequantized(graph, &matmul.input[1])?;
    let columns = q.dims[1];
    let per_column = match scale.dims.as_slice() {
        [1, n] | [n] => *n == columns,
        dims => dims.iter().product::<i64>() == 1,
    };
    (q.data_type == DataType::Int8 as i32 && per_column)
        .then(|| vec![matmul.input[0].clone(), q.name.clone(), scale.name.clone()])
}

/// For the matmul at `i` (by dequantized weights) whose only reader is `Add(out, b)` with `b`
/// a float initializer of one value per output column: that Add's index, and `b`.
fn bias_add(graph: &GraphProto, i: usize) -> Option<(usize, String)> {
    let columns = dequantized(graph, &graph.node[i].input[1])?.0.dims[1];
    let out = graph.node[i].output.first()?;
    let add = single_consumer(graph, out)?;
    let node = &graph.node[add];
    if node.op_type != "Add" || node.input.len() != 2 {
        return None;
    }
    let other = if node.input[0] == *out {
        &node.input[1]
    } else {
        &node.input[0]
    };
    let bias = initializer(graph, other)?;
    (bias.data_type == DataType::Float as i32 && bias.dims == [columns])
        .then(|| (add, bias.name.clone()))
}

fn reorder_gelu(graph: &mut GraphProto) -> usize {
    let matches: Vec<GeluMatch> = (0..graph.node.len())
        .filter_map(|i| match_gelu(graph, i))
        .collect();
    if matches.is_empty() {
        return 0;
    }
    for name in [INV_SQRT2, HALF] {
        if initializer(graph, name).is_none() {
            let value = if name == HALF {
                0.5
            } else {
                std::f32::consts::FRAC_1_SQRT_2
            };
            graph.initializer.push(scalar_f32(name, value));
        }
    }
    for m in &matches {
        let x = graph.node[m.div].input[0].clone();
        let div = &mut graph.node[m.div];
        div.op_type = "Mul".into();
        div.input = vec![x.clone(), INV_SQRT2.into()];
        // The 0.5 multiply moves onto x; the last multiply takes (0.5x) * (1 + erf).
        let half_x = format!("{}.half_x", graph.node[m.half].output[0]);
        let half = &mut graph.node[m.half];
        half.input = vec![x, HALF.into()];
        half.output = vec![half_x.clone()];
        let one_plus_erf = graph.node[m.add].output[0].clone();
        graph.node[m.out].input = vec![half_x, one_plus_erf];
    }
    matches.len()
}

/// Node indices of `x * (c * (erf(x / sqrt2) + 1))` with c = 0.5.
#[derive(Debug)]
struct GeluMatch {
    div: usize,
    add: usize,
    half: usize,
    out: usize,
}

fn match_gelu(graph: &GraphProto, erf: usize) -> Option<GeluMatch> {
    let erf_node = &graph.node[erf];
    if erf_node.op_type != "Erf" {
        return None;
    }
    let div = producer_index(graph, erf_node.input.first()?)?;
    let div_node = &graph.node[div];
    if div_node.op_type != "Div" || !is_scalar(graph, div_node.input.get(1)?, 2f32.sqrt()) {
        return None;
    }
    let x = &div_node.input[0];
    let add = single_consumer(graph, &erf_node.output[0])?;
    let add_node = &graph.node[add];
    if add_node.op_type != "Add" || !other_input_is(graph, add_node, &erf_node.output[0], 1.0) {
        return None;
    }
    let half = single_consumer(graph, &add_node.output[0])?;
    let half_node = &graph.node[half];
    if half_node.op_type != "Mul" || !other_input_is(graph, half_node, &add_node.output[0], 0.5) {
        return None;
    }
    let out = single_consumer(graph, &half_node.output[0])?;
    let out_node = &graph.node[out];
    let other = out_node.input.iter().find(|n| **n != half_node.output[0])?;
    if out_node.op_type != "Mul" || other != x || out <= half {
        return None;
    }
    Some(GeluMatch {
        div,
        add,
        half,
        out,
    })
}

fn drop_always_true_and(graph: &mut GraphProto) -> usize {
    let mut dropped = 0;
    for i in 0..graph.node.len() {
        let n = &graph.node[i];
        if n.op_type != "And" || n.input.len() != 2 {
            continue;
        }
        let kept = if always_true(graph, &n.input[0], 0) {
            n.input[1].clone()
        } else if always_true(graph, &n.input[1], 0) {
            n.input[0].clone()
        } else {
            continue;
        };
        // Safe only when the mask is at least as large as the folded term, so the output
        // shape can only shrink by broadcasting: require the kept side not to be always true.
        if always_true(graph, &kept, 0) {
            continue;
        }
        let n = &mut graph.node[i];
        n.op_type = "Identity".into();
        n.input = vec![kept];
        n.attribute.clear();
        dropped += 1;
    }
    dropped
}

/// Conservative proof that a boolean tensor is true everywhere.
fn always_true(graph: &GraphProto, tensor: &str, depth: usize) -> bool {
    if depth > 8 {
        return false;
    }
    if let Some(t) = initializer(graph, tensor) {
        return t.data_type == DataType::Bool as i32
            && int_values(t).is_some_and(|v| v.iter().all(|x| *x != 0));
    }
    let Some(n) = producer(graph, tensor) else {
        return false;
    };
    match n.op_type.as_str() {
        "And" => n.input.iter().all(|i| always_true(graph, i, depth + 1)),
        // x >= c with x never negative and c <= 0.
        "GreaterOrEqual" => {
            non_negative(graph, &n.input[0], depth + 1)
                && initializer(graph, &n.input[1])
                    .and_then(int_values)
                    .is_some_and(|v| v.iter().all(|x| *x <= 0))
        }
        _ => false,
    }
}

/// Conservative proof that an integer tensor has no negative element.
fn non_negative(graph: &GraphProto, tensor: &str, depth: usize) -> bool {
    if depth > 8 {
        return false;
    }
    if let Some(t) = initializer(graph, tensor) {
        return int_values(t).is_some_and(|v| v.iter().all(|x| *x >= 0));
    }
    let Some(n) = producer(graph, tensor) else {
        return false;
    };
    let konst = |i: usize| {
        n.input
            .get(i)
            .and_then(|name| initializer(graph, name))
            .and_then(int_values)
    };
    match n.op_type.as_str() {
        // start >= 0 and a positive step never go below zero.
        "Range" => {
            konst(0).is_some_and(|v| v.iter().all(|x| *x >= 0))
                && konst(2).is_some_and(|v| v.iter().all(|x| *x > 0))
        }
        "Unsqueeze" | "Squeeze" | "Expand" | "Reshape" | "Identity" => {
            non_negative(graph, &n.input[0], depth + 1)
        }
        _ => false,
    }
}

/// Integer (or boolean) elements of a small initializer.
pub(crate) fn int_values(t: &TensorProto) -> Option<Vec<i64>> {
    const SMALL: usize = 64;
    let typed: Vec<i64> = if t.data_type == DataType::Int64 as i32 {
        t.int64_data.clone()
    } else {
        t.int32_data.iter().map(|x| *x as i64).collect()
    };
    let width = match t.data_type {
        d if d == DataType::Int64 as i32 => 8,
        d if d == DataType::Int32 as i32 => 4,
        d if d == DataType::Bool as i32 => 1,
        _ => return None,
    };
    let values = if typed.is_empty() {
        let raw = &t.raw_data;
        if !raw.len().is_multiple_of(width) {
            return None;
        }
        raw.chunks_exact(width)
            .map(|c| {
                let mut b = [0u8; 8];
                b[..width].copy_from_slice(c);
                // Sign-extend 4-byte ints; bools are 0 or 1 either way.
                match width {
                    4 => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64,
                    _ => i64::from_le_bytes(b),
                }
            })
            .collect()
    } else {
        typed
    };
    (values.len() <= SMALL).then_some(values)
}

pub(crate) fn other_input_is(
    graph: &GraphProto,
    node: &NodeProto,
    known: &str,
    value: f32,
) -> bool {
    node.input.len() == 2
        && node
            .input
            .iter()
            .find(|n| *n != known)
            .is_some_and(|n| is_scalar(graph, n, value))
}

fn is_scalar(graph: &GraphProto, name: &str, value: f32) -> bool {
    scalar_value(graph, name).is_some_and(|v| (v - value).abs() <= 1e-6 * value.abs())
}

/// The value of a one-element float initializer.
pub(crate) fn scalar_value(graph: &GraphProto, name: &str) -> Option<f32> {
    initializer(graph, name)
        .filter(|t| t.data_type == DataType::Float as i32 && t.dims.iter().product::<i64>() == 1)
        .and_then(|t| match (t.float_data.first(), t.raw_data.get(..4)) {
            (Some(v), _) => Some(*v),
            (None, Some(b)) => Some(f32::from_le_bytes(b.try_into().ok()?)),
            _ => None,
        })
}

pub(crate) fn initializer<'a>(graph: &'a GraphProto, name: &str) -> Option<&'a TensorProto> {
    graph.initializer.iter().find(|t| t.name == name)
}

pub(crate) fn producer<'a>(graph: &'a GraphProto, tensor: &str) -> Option<&'a NodeProto> {
    producer_index(graph, tensor).map(|i| &graph.node[i])
}

pub(crate) fn producer_index(graph: &GraphProto, tensor: &str) -> Option<usize> {
    graph
        .node
        .iter()
        .position(|n| n.output.iter().any(|o| o == tensor))
}

pub(crate) fn consumers<'a>(
    graph: &'a GraphProto,
    tensor: &'a str,
) -> impl Iterator<Item = &'a NodeProto> {
    graph
        .node
        .iter()
        .filter(move |n| n.input.iter().any(|i| i == tensor))
}

/// The one node reading `tensor`, if exactly one does and it is not a graph output.
pub(crate) fn single_consumer(graph: &GraphProto, tensor: &str) -> Option<usize> {
    if graph.output.iter().any(|o| o.name == tensor) {
        return None;
    }
    let mut readers = graph
        .node
        .iter()
        .enumerate()
        .filter(|(_, n)| n.input.iter().any(|i| i == tensor));
    let (i, _) = readers.next()?;
    readers.next().is_none().then_some(i)
}

/// Removes nodes whose outputs nobody reads (the old dequantize pairs), then unused
/// initializers, until nothing changes.
pub(crate) fn drop_dead_nodes(graph: &mut GraphProto) {
    loop {
        let mut readers: HashMap<&str, usize> = HashMap::new();
        for name in graph.node.iter().flat_map(|n| n.input.iter()) {
            *readers.entry(name.as_str()).or_default() += 1;
        }
        for o in &graph.output {
            *readers.entry(o.name.as_str()).or_default() += 1;
        }
        let dead: Vec<usize> = graph
            .node
            .iter()
            .enumerate()
            .filter(|(_, n)| n.output.iter().all(|o| !readers.contains_key(o.as_str())))
            .map(|(i, _)| i)
            .collect();
        let live_inits: Vec<bool> = graph
            .initializer
            .iter()
            .map(|t| readers.contains_key(t.name.as_str()))
            .collect();
        if dead.is_empty() {
            let mut keep = live_inits.into_iter();
            graph.initializer.retain(|_| keep.next().unwrap_or(true));
            return;
        }
        for i in dead.into_iter().rev() {
            graph.node.remove(i);
        }
    }
}

pub(crate) fn int_attr(node: &NodeProto, name: &str, default: i64) -> i64 {
    node.attribute
        .iter()
        .find(|a| a.name == name)
        .map_or(default, |a| a.i)
}

pub(crate) fn float_attr(node: &NodeProto, name: &str, default: f32) -> f32 {
    node.attribute
        .iter()
        .find(|a| a.name == name)
        .map_or(default, |a| a.f)
}

pub(crate) fn int_attribute(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Int as i32,
        i: value,
        ..Default::default()
    }
}

pub(crate) fn float_attribute(name: &str, value: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Float as i32,
        f: value,
        ..Default::default()
    }
}

fn node(op: &str, name: &str, inputs: &[&str], output: &str) -> NodeProto {
    NodeProto {
        op_type: op.into(),
        name: name.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        ..Default::default()
    }
}

trait WithInt {
    fn with_int(self, name: &str, value: i64) -> Self;
}

impl WithInt for NodeProto {
    fn with_int(mut self, name: &str, value: i64) -> Self {
        self.attribute.push(int_attribute(name, value));
        self
    }
}

fn scalar_f32(name: &str, value: f32) -> TensorProto {
    TensorProto {
        name: name.into(),
        data_type: DataType::Float as i32,
        raw_data: value.to_le_bytes().to_vec(),
        ..Default::default()
    }
}
