#!/usr/bin/env bash
# Full SciFact embedding (5,183 documents, cold embedding cache) with each int8 matmul kernel
# this CPU runs, in one run: wall time of `searchbar run --until embed`, documents per second,
# and the dense ranking's nDCG@10 on the 300 judged test queries with those embeddings. Prints
# the rows for BENCHMARKS.md ("Document encoding on SciFact").
# Usage: scripts/bench/embed-scifact.sh [kernel ...]   (default: avx512 vnni; see
# SEARCHBAR_MATMUL_KERNEL in scripts/bench/encoder.sh). Needs scripts/bench/hybrid.sh's project
# (run it once) and a release build.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/searchbar/target}"
if [ -z "${SEARCHBAR_BIN:-}" ]; then
  cargo build -q --release --locked -p searchbar
fi
sb="${SEARCHBAR_BIN:-$CARGO_TARGET_DIR/release/searchbar}"
work="${SEARCHBAR_BENCH_DIR:-$CARGO_TARGET_DIR/bench-scifact}"
[ -f "$work/searchbar.toml" ] || { echo "no project at $work: run scripts/bench/hybrid.sh once" >&2; exit 1; }
kernels=("$@")
[ ${#kernels[@]} -gt 0 ] || kernels=(avx512 vnni)
cd "$work"
echo "| kernel | embed wall time | docs/s | dense nDCG@10 (test) |"
echo "|---|---|---|---|"
for kernel in "${kernels[@]}"; do
  # A cold cache: the stage records and the embeddings both go, as on a model change.
  rm -rf .searchbar/embeddings .searchbar/stages .searchbar/candidate
  start=$(date +%s.%N)
  SEARCHBAR_MATMUL_KERNEL="$kernel" "$sb" run --env stage --until embed > "embed-$kernel.log" 2>&1
  end=$(date +%s.%N)
  SEARCHBAR_MATMUL_KERNEL="$kernel" "$sb" run --env stage --until evaluate > "evaluate-$kernel.log" 2>&1
  python3 - "$kernel" "$start" "$end" "$(wc -l < corpus.jsonl)" <<'PY'
import json, sys
kernel, start, end, docs = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
r = json.load(open(".searchbar/candidate/report.json"))
dense = next(m for m in r["modes"] if m["mode"] == "dense")
print(f"| {kernel} | {end - start:.1f} s | {docs / (end - start):.1f} | {dense['ndcg_at_10']:.4f} |")
PY
done
