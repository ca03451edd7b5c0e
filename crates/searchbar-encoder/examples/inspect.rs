//! Developer tool: what tract runs for the encoder and where a short query's time goes.
//! `cargo run --release --example inspect -- MODEL.onnx`
//!
//! `PROFILE=1` instead times every op kind for a query and two document batches (`BY_NODE=1`:
//! every node; `TOP=N`: how many rows), which is how the attention-mask work was found.
//! `INT8=1` loads the graph as the encoder does with `int8_weights` on.
use prost::Message;
use std::collections::BTreeMap;
use std::time::Instant;
use tract_onnx::prelude::*;

fn parse(path: &str) -> TractResult<InferenceModel> {
    let mut proto = tract_onnx::pb::ModelProto::decode(&*std::fs::read(path)?)?;
    if std::env::var_os("INT8").is_some() {
        let n = searchbar_encoder::prepare::keep_int8_weights(&mut proto);
        println!("{n} matmuls keep int8 weights");
    }
    searchbar_encoder::onnx_loader()
        .with_ignore_value_info(true)
        .with_ignore_output_shapes(true)
        .model_for_proto_model(&proto)
}

fn load(path: &str) -> TractResult<TypedModel> {
    parse(path)?.into_optimized()
}

fn time_runs(plan: &Arc<TypedRunnableModel>, len: usize) -> TractResult<f64> {
    let ids: Vec<i64> = (0..len as i64).map(|i| 1000 + i).collect();
    let t = || Tensor::from_shape(&[1, len], &ids).map(|t| t.into_tvalue());
    let ones = Tensor::from_shape(&[1, len], &vec![1i64; len])?.into_tvalue();
    let zeros = Tensor::from_shape(&[1, len], &vec![0i64; len])?.into_tvalue();
    for _ in 0..20 {
        plan.run(tvec!(t()?, ones.clone(), zeros.clone()))?;
    }
    let start = Instant::now();
    let n = 200;
    for _ in 0..n {
        plan.run(tvec!(t()?, ones.clone(), zeros.clone()))?;
    }
    Ok(start.elapsed().as_secs_f64() * 1e3 / n as f64)
}

/// Time per op kind over `n` runs of a `[batch, len]` input, largest first.
fn profile(plan: &Arc<TypedRunnableModel>, batch: usize, len: usize, n: usize) -> TractResult<()> {
    let shape = [batch, len];
    let ids: Vec<i64> = (0..(batch * len) as i64).map(|i| 1000 + i % 5000).collect();
    let inputs = || -> TractResult<TVec<TValue>> {
        Ok(tvec!(
            Tensor::from_shape(&shape, &ids)?.into_tvalue(),
            Tensor::from_shape(&shape, &vec![1i64; batch * len])?.into_tvalue(),
            Tensor::from_shape(&shape, &vec![0i64; batch * len])?.into_tvalue()
        ))
    };
    let mut times: BTreeMap<String, (f64, usize)> = BTreeMap::new();
    let mut state = TypedSimpleState::new(plan)?;
    for round in 0..n + 2 {
        state.run_plan_with_eval(inputs()?, |ctx, op_state, node, input| {
            let t = Instant::now();
            let r = tract_onnx::tract_core::plan::eval(ctx, op_state, node, input);
            if round >= 2 {
                let key = if std::env::var_os("BY_NODE").is_some() {
                    format!("{} {}", node.op.name(), node.name)
                } else {
                    node.op.name().to_string()
                };
                let e = times.entry(key).or_default();
                e.0 += t.elapsed().as_secs_f64() * 1e3 / n as f64;
                e.1 += 1;
            }
            r
        })?;
    }
    let total: f64 = times.values().map(|v| v.0).sum();
    println!("profile [{batch}, {len}]: {total:.3} ms per run");
    let mut rows: Vec<_> = times.into_iter().collect();
    rows.sort_by(|a, b| b.1 .0.total_cmp(&a.1 .0));
    let top = std::env::var("TOP")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(14);
    for (op, (ms, count)) in rows.iter().take(top) {
        println!(
            "  {ms:8.3} ms {:5.1}% {:4} x {op}",
            100.0 * ms / total,
            count / n
        );
    }
    Ok(())
}

fn main() -> TractResult<()> {
    let path = std::env::args().nth(1).expect("usage: inspect MODEL.onnx");
    let model = load(&path)?;
    let mut ops: BTreeMap<String, usize> = BTreeMap::new();
    for n in model.nodes() {
        *ops.entry(n.op.name().to_string()).or_default() += 1;
    }
    for (op, count) in &ops {
        println!("{count:5} {op}");
    }
    let symbolic = model.clone().into_runnable()?;
    if std::env::var_os("PROFILE").is_some() {
        profile(&symbolic, 1, 8, 200)?;
        profile(&symbolic, 16, 128, 3)?;
        profile(&symbolic, 16, 256, 2)?;
        return Ok(());
    }
    println!(
        "symbolic shapes, 8 tokens: {:.3} ms/run",
        time_runs(&symbolic, 8)?
    );
    let concrete = parse(&path)?.into_typed()?;
    let fixed: &[(&str, i64)] = if std::env::var_os("BATCH_ONLY").is_some() {
        &[("batch", 1)]
    } else {
        &[("batch", 1), ("sequence", 8)]
    };
    let subs: std::collections::HashMap<Symbol, TDim> = fixed
        .iter()
        .copied()
        .map(|(name, v)| (concrete.symbols.sym(name), TDim::from(v)))
        .collect();
    let t = Instant::now();
    let concrete = concrete.set_symbols(&subs)?.into_optimized()?;
    println!(
        "concretizing took {:.0} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    println!(
        "concrete shapes, 8 tokens: {:.3} ms/run",
        time_runs(&concrete.into_runnable()?, 8)?
    );
    Ok(())
}
