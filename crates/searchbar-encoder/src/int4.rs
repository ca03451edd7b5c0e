//! 4-bit layer weights: the shipped form of an int8 matmul's weights that halves their bytes,
//! and the load-time rewrite that turns them back into int8 weights for the existing kernels.
//!
//! An int8 matmul stores `W = Cast(W_q) * s`: int8 codes `W_q[k, n]` and one scale per column.
//! [`pack_int4_weights`] replaces `W_q` by 4-bit codes `q` in `[-8, 7]` and, per group of
//! [`GROUP`] rows of one column, an integer step `m` in `[1, 16]`, with `W_q ≈ m · q`. The column
//! scales stay as they are. Because `m · q` is an integer in `[-128, 112]`, the load-time rewrite
//! ([`widen_int4_weights`]) rebuilds an exact int8 matrix, and every kernel (AVX-512 VNNI, AVX2,
//! wasm simd128 i16 dot products) runs it unchanged: the 4-bit weights cost nothing at run time and
//! give the same bits natively and in the browser.
//!
//! An integer step per group is what a group-wise scale becomes when it must be a multiple of the
//! column scale: 4 bits for a group of 16 weights, so 4.25 bits a weight, where an f16 scale per
//! group of 16 would need 5. Groups of 16 rather than 32 are what kept SciFact's nDCG@10 within
//! 0.005 of int8 (BENCHMARKS.md, "Encoder diet"). Each group's step is the one of least squared
//! error over the group (every step tried), not simply the largest code divided by 7.
//!
//! The shipped node is `SearchbarInt4Weights(codes, steps) -> W_q` with the group size as an
//! attribute; codes are `[k, n/2]` bytes and steps `[k/GROUP, n/2]` bytes, two 4-bit values a
//! byte (the even column in the low half). The rewrite back runs before anything else reads the
//! graph, so no other runtime ever meets the node unless handed the shipped file itself.

use crate::prepare::{
    consumers, decode_model, drop_dead_nodes, initializer, int8_matmul_inputs, int8_values,
    int_attr, int_attribute,
};
use crate::EncoderError;
use prost::Message;
use std::collections::HashSet;
use tract_onnx::pb::{tensor_proto::DataType, GraphProto, ModelProto, NodeProto, TensorProto};

/// The op type of the node that holds 4-bit weights in a shipped graph.
pub const INT4_WEIGHTS_OP: &str = "SearchbarInt4Weights";

/// The packing's name and version: a change to how codes are chosen changes the embeddings, so
/// it is part of a model's fingerprint.
pub const PACKING: &str = "int4-g16-step4-1";

/// Rows of one column that share a step.
pub const GROUP: usize = 16;

/// The prepared model's metadata key that records which matmuls hold 4-bit weights.
pub const WEIGHTS_METADATA_KEY: &str = "searchbar.weights";

/// Which matmuls [`pack_int4_weights`] leaves int8, by the name of their int8 weights
/// initializer (mixed precision, chosen by measurement).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Int4Plan {
    pub keep_int8: Vec<String>,
}

impl Int4Plan {
    /// What of the packing changes embeddings, for a model fingerprint: its version
    /// ([`PACKING`]) and what the plan keeps int8.
    pub fn identity(&self) -> String {
        format!("{PACKING}|keep={}", self.keep_int8.join(","))
    }
}

/// What [`pack_int4_weights`] did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Int4Report {
    /// The weights now held in 4 bits, by initializer name.
    pub packed: Vec<String>,
    /// The int8 matmul weights left int8 (by the plan).
    pub kept: Vec<String>,
    /// Weights packed, and their squared error against the int8 codes they replace, summed; with
    /// the codes' own sum of squares this gives the relative error.
    pub weights: usize,
    pub squared_error: f64,
    pub squared_codes: f64,
}

impl Int4Report {
    /// `sqrt(Σ(W_q - m·q)² / ΣW_q²)` over every packed weight.
    pub fn relative_error(&self) -> f64 {
        (self.squared_error / self.squared_codes.max(f64::MIN_POSITIVE)).sqrt()
    }
}

/// Rewrites the int8 matmul weights of a prepared graph (`MatMul(x, Cast(W_q) * s)`, with `W_q`
/// int8 `[k, n]`, `k` a multiple of [`GROUP`], `n` even) into 4-bit weights, except those the plan
/// keeps. Records the outcome in the model's metadata ([`WEIGHTS_METADATA_KEY`]). A name in the
/// plan that is no int8 matmul weight is an error, so that a stale plan cannot pass unnoticed.
pub fn pack_int4_weights(
    bytes: &[u8],
    plan: &Int4Plan,
) -> Result<(Vec<u8>, Int4Report), EncoderError> {
    let mut model = decode_model(bytes)?;
    let graph = model
        .graph
        .as_mut()
        .ok_or_else(|| EncoderError::Prepare("the ONNX model has no graph".into()))?;
    let candidates = int8_matmul_weights(graph);
    let keep: HashSet<&str> = plan.keep_int8.iter().map(String::as_str).collect();
    if let Some(unknown) = keep.iter().find(|k| !candidates.iter().any(|c| c == *k)) {
        return Err(EncoderError::Prepare(format!(
            "the plan keeps {unknown:?} int8, but no int8 matmul has weights of that name"
        )));
    }
    let mut report = Int4Report::default();
    for name in candidates {
        if keep.contains(name.as_str()) {
            report.kept.push(name);
            continue;
        }
        let Some(i) = graph.initializer.iter().position(|t| t.name == name) else {
            continue;
        };
        let t = &graph.initializer[i];
        let (k, n) = (t.dims[0] as usize, t.dims[1] as usize);
        let codes: Vec<i8> = int8_values(t)
            .filter(|c| c.len() == k * n)
            .ok_or_else(|| {
                EncoderError::Prepare(format!(
                    "the weights {name:?} hold the wrong number of values"
                ))
            })?
            .into_iter()
            .map(|b| b as i8)
            .collect();
        let packed = pack(&codes, k, n);
        for (a, b) in codes.iter().zip(unpack(&packed.codes, &packed.steps, k, n)) {
            let (a, b) = (f64::from(*a), f64::from(b));
            report.squared_error += (a - b) * (a - b);
            report.squared_codes += a * a;
        }
        report.weights += k * n;
        let (codes_name, steps_name) = (format!("{name}.int4"), format!("{name}.steps"));
        graph.initializer[i] = bytes_tensor(&codes_name, &[k, n / 2], packed.codes);
        graph
            .initializer
            .push(bytes_tensor(&steps_name, &[k / GROUP, n / 2], packed.steps));
        let at = producer_position(graph, &name);
        graph.node.insert(
            at,
            NodeProto {
                op_type: INT4_WEIGHTS_OP.into(),
                name: format!("{name}.widen"),
                input: vec![codes_name, steps_name],
                output: vec![name.clone()],
                attribute: vec![int_attribute("group", GROUP as i64)],
                ..Default::default()
            },
        );
        report.packed.push(name);
    }
    model
        .metadata_props
        .retain(|p| p.key != WEIGHTS_METADATA_KEY);
    model
        .metadata_props
        .push(tract_onnx::pb::StringStringEntryProto {
            key: WEIGHTS_METADATA_KEY.into(),
            value: describe(&report),
        });
    Ok((model.encode_to_vec(), report))
}

/// The metadata value [`pack_int4_weights`] records.
fn describe(report: &Int4Report) -> String {
    let mut s = format!(
        "int4: {} of {} matmul weights in 4 bits with an integer step per {GROUP} rows of a column",
        report.packed.len(),
        report.packed.len() + report.kept.len()
    );
    if !report.kept.is_empty() {
        s.push_str("; int8: ");
        s.push_str(&report.kept.join(", "));
    }
    s
}

/// Where to insert the node that produces `tensor`: before its first reader, so that the graph
/// stays in topological order.
fn producer_position(graph: &GraphProto, tensor: &str) -> usize {
    graph
        .node
        .iter()
        .position(|n| n.input.iter().any(|i| i == tensor))
        .unwrap_or(graph.node.len())
}

/// The names of the int8 matmul weights of an ONNX graph that 4-bit weights can replace, in graph
/// order: what an [`Int4Plan`] names.
pub fn packable_weights(bytes: &[u8]) -> Result<Vec<String>, EncoderError> {
    let model = decode_model(bytes)?;
    Ok(model
        .graph
        .as_ref()
        .map(int8_matmul_weights)
        .unwrap_or_default())
}

/// The weights of the matmuls [`keep_int8_weights`](crate::prepare::keep_int8_weights) would run
/// int8 whose shapes fit the packing and that nothing else reads, in graph order.
fn int8_matmul_weights(graph: &GraphProto) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for i in 0..graph.node.len() {
        let Some(inputs) = int8_matmul_inputs(graph, i) else {
            continue;
        };
        let Some(t) = initializer(graph, &inputs[1]) else {
            continue;
        };
        let fits = t.dims.len() == 2
            && (t.dims[0] as usize).is_multiple_of(GROUP)
            && (t.dims[1] as usize).is_multiple_of(2);
        // A weight read by anything but this matmul's dequantization stays as it is.
        if fits && consumers(graph, &t.name).count() == 1 && !names.contains(&t.name) {
            names.push(t.name.clone());
        }
    }
    names
}

fn bytes_tensor(name: &str, dims: &[usize], raw: Vec<u8>) -> TensorProto {
    TensorProto {
        name: name.into(),
        data_type: DataType::Uint8 as i32,
        dims: dims.iter().map(|&d| d as i64).collect(),
        raw_data: raw,
        ..Default::default()
    }
}

/// 4-bit codes and steps, packed two a byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Packed {
    /// `[k, n/2]`: `q + 8` of an even column in the low half, of the next in the high half.
    pub codes: Vec<u8>,
    /// `[k/GROUP, n/2]`: `m - 1`, laid out like the codes.
    pub steps: Vec<u8>,
}

/// The least-squares step and 4-bit codes of one group of int8 codes.
fn quantize_group(group: &[i8], out: &mut [i8]) -> u8 {
    // Every step: a smaller one that clips the largest code can still be the better fit for
    // the rest of the group.
    let mut best = (i64::MAX, 1);
    for m in 1..=16 {
        let err: i64 = group
            .iter()
            .map(|&v| {
                let v = i32::from(v);
                let q = round_div(v, m).clamp(-8, 7);
                i64::from((v - q * m) * (v - q * m))
            })
            .sum();
        if err < best.0 {
            best = (err, m);
        }
    }
    let m = best.1;
    for (o, &v) in out.iter_mut().zip(group) {
        *o = round_div(i32::from(v), m).clamp(-8, 7) as i8;
    }
    m as u8
}

/// `v / m` rounded to the nearest integer, halves away from zero.
fn round_div(v: i32, m: i32) -> i32 {
    let q = (2 * v.abs() + m) / (2 * m);
    q * v.signum()
}

/// Packs row-major int8 codes `[k, n]` (`k` a multiple of [`GROUP`], `n` even).
pub(crate) fn pack(codes: &[i8], k: usize, n: usize) -> Packed {
    assert_eq!(codes.len(), k * n, "codes are k x n");
    assert!(
        k.is_multiple_of(GROUP) && n.is_multiple_of(2),
        "k in groups, n even"
    );
    let mut q = vec![0i8; k * n];
    let mut steps = vec![0u8; (k / GROUP) * n];
    let mut column = [0i8; GROUP];
    let mut out = [0i8; GROUP];
    for g in 0..k / GROUP {
        for c in 0..n {
            for (r, v) in column.iter_mut().enumerate() {
                *v = codes[(g * GROUP + r) * n + c];
            }
            steps[g * n + c] = quantize_group(&column, &mut out);
            for (r, v) in out.iter().enumerate() {
                q[(g * GROUP + r) * n + c] = *v;
            }
        }
    }
    Packed {
        codes: q
            .chunks_exact(2)
            .map(|p| ((p[0] + 8) as u8) | (((p[1] + 8) as u8) << 4))
            .collect(),
        steps: steps
            .chunks_exact(2)
            .map(|p| (p[0] - 1) | ((p[1] - 1) << 4))
            .collect(),
    }
}

/// The int8 matrix `m · q` of packed codes and steps, row-major `[k, n]`.
pub(crate) fn unpack(codes: &[u8], steps: &[u8], k: usize, n: usize) -> Vec<i8> {
    let nibbles = |bytes: &[u8]| -> Vec<i32> {
        bytes
            .iter()
            .flat_map(|&b| [i32::from(b & 15), i32::from(b >> 4)])
            .collect()
    };
    let (q, m) = (nibbles(codes), nibbles(steps));
    (0..k * n)
        .map(|i| {
            let (r, c) = (i / n, i % n);
            ((q[i] - 8) * (m[(r / GROUP) * n + c] + 1)) as i8
        })
        .collect()
}

/// Replaces every [`INT4_WEIGHTS_OP`] node of a shipped graph by the int8 weights it stands for,
/// so that the rest of the loader sees the int8 graph. Returns how many it replaced; a node whose
/// inputs do not fit its shapes is an error naming it.
pub(crate) fn widen_int4_weights(model: &mut ModelProto) -> Result<usize, EncoderError> {
    let Some(graph) = model.graph.as_mut() else {
        return Ok(0);
    };
    let mut widened = Vec::new();
    for n in graph.node.iter().filter(|n| n.op_type == INT4_WEIGHTS_OP) {
        let bad = |why: &str| EncoderError::Model(format!("4-bit weights {:?}: {why}", n.name));
        if int_attr(n, "group", 0) != GROUP as i64 || n.input.len() != 2 || n.output.len() != 1 {
            return Err(bad(&format!("expected two inputs and groups of {GROUP}")));
        }
        let (Some(codes), Some(steps)) = (
            initializer(graph, &n.input[0]),
            initializer(graph, &n.input[1]),
        ) else {
            return Err(bad("the codes or steps are not constants"));
        };
        let [k, half] = codes.dims[..] else {
            return Err(bad("the codes are not a matrix"));
        };
        let (k, n_cols) = (k as usize, 2 * half as usize);
        if codes.data_type != DataType::Uint8 as i32
            || steps.data_type != DataType::Uint8 as i32
            || !k.is_multiple_of(GROUP)
            || codes.raw_data.len() != k * n_cols / 2
            || steps.raw_data.len() != (k / GROUP) * n_cols / 2
        {
            return Err(bad("the codes or steps have the wrong type or length"));
        }
        let weights = unpack(&codes.raw_data, &steps.raw_data, k, n_cols);
        widened.push(TensorProto {
            name: n.output[0].clone(),
            data_type: DataType::Int8 as i32,
            dims: vec![k as i64, n_cols as i64],
            raw_data: weights.into_iter().map(|v| v as u8).collect(),
            ..Default::default()
        });
    }
    let count = widened.len();
    if count > 0 {
        graph.node.retain(|n| n.op_type != INT4_WEIGHTS_OP);
        graph.initializer.extend(widened);
        drop_dead_nodes(graph);
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Float64 reference: the step and codes of least squared error, by trying every step
    /// and rounding each code to the nearest level in [-8, 7].
    fn reference_group(group: &[i8]) -> (f64, Vec<f64>) {
        let mut best: Option<(f64, Vec<f64>)> = None;
        for m in 1..=16 {
            let m = f64::from(m);
            let q: Vec<f64> = group
                .iter()
                .map(|&v| (f64::from(v) / m).round().clamp(-8.0, 7.0))
                .collect();
            let err: f64 = group
                .iter()
                .zip(&q)
                .map(|(&v, &q)| (f64::from(v) - m * q).powi(2))
                .sum();
            if best.as_ref().is_none_or(|b| err < b.0) {
                best = Some((err, q));
            }
        }
        best.expect("sixteen steps tried")
    }

    fn int8_i8(t: &TensorProto) -> Vec<i8> {
        int8_values(t)
            .unwrap()
            .into_iter()
            .map(|b| b as i8)
            .collect()
    }

    fn lcg(seed: &mut u64) -> i8 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (*seed >> 56) as u8 as i8
    }

    #[test]
    fn each_group_gets_the_least_squares_step() {
        let mut seed = 7;
        for scale in [1i32, 3, 9, 40, 128] {
            for _ in 0..200 {
                let group: Vec<i8> = (0..GROUP)
                    .map(|_| ((i32::from(lcg(&mut seed)) * scale) / 128) as i8)
                    .collect();
                let mut q = [0i8; GROUP];
                let m = quantize_group(&group, &mut q);
                let err: f64 = group
                    .iter()
                    .zip(&q)
                    .map(|(&v, &q)| (f64::from(v) - f64::from(m) * f64::from(q)).powi(2))
                    .sum();
                let (best, _) = reference_group(&group);
                assert_eq!(err, best, "group {group:?}: step {m}");
                assert!((1..=16).contains(&m));
                assert!(q.iter().all(|q| (-8..=7).contains(q)));
            }
        }
    }

    /// `y = x · (Cast(w) * s)` for an int8 `w` of `k` rows and 4 columns, named `name`.
    fn matmul_graph(graph: &mut GraphProto, name: &str, k: usize, seed: &mut u64) {
        let codes: Vec<u8> = (0..k * 4).map(|_| lcg(seed) as u8).collect();
        graph.initializer.push(TensorProto {
            name: name.into(),
            data_type: DataType::Int8 as i32,
            dims: vec![k as i64, 4],
            raw_data: codes,
            ..Default::default()
        });
        graph.initializer.push(TensorProto {
            name: format!("{name}.s"),
            data_type: DataType::Float as i32,
            dims: vec![4],
            raw_data: [0.5f32; 4].iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        });
        let node = |op: &str, inputs: &[String], output: String| NodeProto {
            op_type: op.into(),
            name: format!("{output}.node"),
            input: inputs.to_vec(),
            output: vec![output],
            ..Default::default()
        };
        let mut cast = node("Cast", &[name.into()], format!("{name}.f"));
        cast.attribute
            .push(int_attribute("to", DataType::Float as i64));
        graph.node.push(cast);
        graph.node.push(node(
            "Mul",
            &[format!("{name}.f"), format!("{name}.s")],
            format!("{name}.w"),
        ));
        graph.node.push(node(
            "MatMul",
            &[format!("x.{name}"), format!("{name}.w")],
            format!("y.{name}"),
        ));
        graph.output.push(tract_onnx::pb::ValueInfoProto {
            name: format!("y.{name}"),
            ..Default::default()
        });
    }

    fn two_matmuls() -> (Vec<u8>, Vec<i8>) {
        let mut seed = 11;
        let mut graph = GraphProto::default();
        matmul_graph(&mut graph, "w", 2 * GROUP, &mut seed);
        // Rows that are not whole groups: that matmul stays int8.
        matmul_graph(&mut graph, "odd", GROUP + 8, &mut seed);
        let w = int8_i8(&graph.initializer[0]);
        let model = ModelProto {
            graph: Some(graph),
            ..Default::default()
        };
        (model.encode_to_vec(), w)
    }

    #[test]
    fn a_packed_graph_widens_back_to_the_int8_weights_it_stands_for() {
        let (bytes, w) = two_matmuls();
        assert_eq!(packable_weights(&bytes).unwrap(), ["w"]);
        let (packed, report) = pack_int4_weights(&bytes, &Int4Plan::default()).unwrap();
        assert_eq!(report.packed, ["w"]);
        assert!(report.kept.is_empty());
        assert_eq!(report.weights, 2 * GROUP * 4);
        assert!(report.relative_error() > 0.0 && report.relative_error() < 0.2);
        let mut model = ModelProto::decode(&*packed).unwrap();
        let meta = &model.metadata_props;
        assert_eq!(meta.len(), 1);
        assert_eq!(meta[0].key, WEIGHTS_METADATA_KEY);
        assert!(
            meta[0].value.starts_with("int4: 1 of 1"),
            "{}",
            meta[0].value
        );
        let graph = model.graph.as_ref().unwrap();
        assert!(initializer(graph, "w").is_none());
        assert_eq!(
            initializer(graph, "w.int4").unwrap().raw_data.len(),
            GROUP * 4
        );
        assert_eq!(widen_int4_weights(&mut model).unwrap(), 1);
        let graph = model.graph.as_ref().unwrap();
        assert!(graph.node.iter().all(|n| n.op_type != INT4_WEIGHTS_OP));
        let widened = int8_i8(initializer(graph, "w").unwrap());
        let p = pack(&w, 2 * GROUP, 4);
        assert_eq!(widened, unpack(&p.codes, &p.steps, 2 * GROUP, 4));
        assert!(initializer(graph, "w.int4").is_none() && initializer(graph, "w.steps").is_none());
        // The other matmul is untouched, and widening an int8 graph changes nothing.
        assert!(initializer(graph, "odd").is_some());
        let mut plain = ModelProto::decode(&*bytes).unwrap();
        assert_eq!(widen_int4_weights(&mut plain).unwrap(), 0);
        assert_eq!(plain.encode_to_vec(), bytes);
    }

    #[test]
    fn a_plan_keeps_what_it_names_and_refuses_unknown_names() {
        let (bytes, _) = two_matmuls();
        let keep = Int4Plan {
            keep_int8: vec!["w".into()],
        };
        let (packed, report) = pack_int4_weights(&bytes, &keep).unwrap();
        assert_eq!((report.packed.len(), report.kept.len()), (0, 1));
        let model = ModelProto::decode(&*packed).unwrap();
        assert!(model.metadata_props[0].value.ends_with("int8: w"));
        assert!(initializer(model.graph.as_ref().unwrap(), "w").is_some());
        let stale = Int4Plan {
            keep_int8: vec!["odd".into()],
        };
        let e = pack_int4_weights(&bytes, &stale).unwrap_err().to_string();
        assert!(e.contains("\"odd\"") && e.contains("no int8 matmul"), "{e}");
    }

    #[test]
    fn damaged_4_bit_weights_are_refused_naming_the_node() {
        let (bytes, _) = two_matmuls();
        let (packed, _) = pack_int4_weights(&bytes, &Int4Plan::default()).unwrap();
        let mut model = ModelProto::decode(&*packed).unwrap();
        let graph = model.graph.as_mut().unwrap();
        let codes = graph
            .initializer
            .iter_mut()
            .find(|t| t.name == "w.int4")
            .unwrap();
        codes.raw_data.pop();
        let e = widen_int4_weights(&mut model).unwrap_err().to_string();
        assert!(
            e.contains("\"w.widen\"") && e.contains("wrong type or length"),
            "{e}"
        );
    }

    #[test]
    fn extremes_are_exact() {
        // -128 is -8 x 16; 112 is 7 x 16; a group of zeros takes the step 1.
        let mut group = [0i8; GROUP];
        group[0] = -128;
        group[1] = 112;
        let mut q = [0i8; GROUP];
        assert_eq!(quantize_group(&group, &mut q), 16);
        assert_eq!((q[0], q[1]), (-8, 7));
        assert_eq!(quantize_group(&[0; GROUP], &mut q), 1);
        assert_eq!(q, [0; GROUP]);
    }

    #[test]
    fn packing_round_trips_through_the_int8_matrix() {
        let (k, n) = (2 * GROUP, 6);
        let mut seed = 3;
        let codes: Vec<i8> = (0..k * n).map(|_| lcg(&mut seed)).collect();
        let packed = pack(&codes, k, n);
        assert_eq!(packed.codes.len(), k * n / 2);
        assert_eq!(packed.steps.len(), 2 * n / 2);
        let widened = unpack(&packed.codes, &packed.steps, k, n);
        // Every weight is its group's step times a code of its group's reference.
        for c in 0..n {
            for g in 0..2 {
                let group: Vec<i8> = (0..GROUP).map(|r| codes[(g * GROUP + r) * n + c]).collect();
                let got: Vec<i8> = (0..GROUP)
                    .map(|r| widened[(g * GROUP + r) * n + c])
                    .collect();
                let err: f64 = group
                    .iter()
                    .zip(&got)
                    .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
                    .sum();
                assert_eq!(err, reference_group(&group).0, "column {c}, group {g}");
            }
        }
    }
}
