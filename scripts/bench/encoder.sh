#!/usr/bin/env bash
# Encoder benchmark: tract (ours) and onnxruntime (peer) on the same model and texts, in one run.
# Prints both sets of measurements and the ratios recorded in BENCHMARKS.md.
# Needs: pip install onnxruntime tokenizers numpy. BENCH_QUICK=1 for a short run.
# SEARCHBAR_MATMUL_KERNEL=avx512 (or avx2, portable) times a kernel other than the best this
# CPU runs (vnni where it has AVX-512 VNNI).
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/searchbar/target}"
cargo run -q --release -p searchbar --bin searchbar -- model fetch >/dev/null
dir="$(cargo run -q --release -p searchbar --bin searchbar -- model path)"
out="$(mktemp)"
cargo bench -q --workspace --bench encode | tee "$out"
python3 crates/searchbar-encoder/reference/bench_onnxruntime.py "$dir/model.onnx" "$dir/tokenizer.json" \
  ${BENCH_QUICK:+--quick} | tee -a "$out"
python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
get = lambda rt, th, case: next(r for r in rows if r["runtime"] == rt and r.get("threads") == th and r["case"] == case)
kernel = next(r for r in rows if r["case"] == "matmul_kernel")
print(f"\nint8 matmul kernel: {kernel['kernel']}"
      f" ({'i16 activations' if kernel['i16_activations'] else 'f32 activations'})")
up = next((r for r in rows if r["runtime"] == "tract-upstream-graph"), None)
if up:
    print(f"\nPrepared vs upstream graph in tract, 8-token query, 1 thread: "
          f"{get('tract', 1, 'query_8_tokens')['median_ms']:.2f} ms vs {up['median_ms']:.2f} ms")
f32 = next((r for r in rows if r["runtime"] == "tract-float32-matmuls"), None)
if f32:
    print(f"int8 weight kernel vs tract's float32 matmuls, 8-token query, 1 thread: "
          f"{get('tract', 1, 'query_8_tokens')['median_ms']:.2f} ms vs {f32['median_ms']:.2f} ms")
for r in rows:
    if r["case"].startswith("tokenize_"):
        print(f"tokenizing {r['case'][9:].replace('_', ' ')} documents (1 thread, before embedding): "
              f"{r['docs_per_s']:.0f} docs/s")
for r in rows:
    if r["case"] == "query_encoder_memory":
        kind = "int8 weights" if r["int8_weights"] else "float32 weights (tract)"
        print(f"query encoder heap, {kind}: {r['held_mb']:.1f} MB held, {r['peak_mb']:.1f} MB peak while loading")
print("\n| case | threads | tract | onnxruntime | tract / onnxruntime |")
print("|---|---|---|---|---|")
for th in (1, 2):
    q_t, q_o = get("tract", th, "query_8_tokens")["median_ms"], get("onnxruntime", th, "query_8_tokens")["median_ms"]
    print(f"| 8-token query latency | {th} | {q_t:.2f} ms | {q_o:.2f} ms | {q_t / q_o:.2f}x (lower is better) |")
    for n in (128, 256):
        d_t, d_o = get("tract", th, f"docs_{n}_tokens")["docs_per_s"], get("onnxruntime", th, f"docs_{n}_tokens")["docs_per_s"]
        print(f"| {n}-token documents | {th} | {d_t:.1f} docs/s | {d_o:.1f} docs/s | {d_t / d_o:.2f}x (higher is better) |")
PY
