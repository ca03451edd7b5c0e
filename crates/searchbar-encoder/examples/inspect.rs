//! Developer tool: what tract runs for the encoder and where a short query's time goes.
//! `cargo run --release --example inspect -- MODEL.onnx`
use std::collections::BTreeMap;
use std::time::Instant;
use tract_onnx::prelude::*;

fn load(path: &str) -> TractResult<TypedModel> {
    tract_onnx::onnx()
        .with_ignore_value_info(true)
        .with_ignore_output_shapes(true)
        .model_for_path(path)?
        .into_optimized()
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
    println!(
        "symbolic shapes, 8 tokens: {:.3} ms/run",
        time_runs(&symbolic, 8)?
    );
    let concrete = tract_onnx::onnx()
        .with_ignore_value_info(true)
        .with_ignore_output_shapes(true)
        .model_for_path(&path)?
        .into_typed()?;
    let subs: std::collections::HashMap<Symbol, TDim> = [("batch", 1), ("sequence", 8)]
        .into_iter()
        .map(|(name, v)| (concrete.symbols.sym(name), TDim::from(v as i64)))
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
