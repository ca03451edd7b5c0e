#!/usr/bin/env bash
# Index benchmark (BENCHMARKS.md, "Index"): flat int8 and IVF-PQ at several code sizes on
#   1. SciFact's real embeddings (the project scripts/bench/scifact.sh sets up; its embedding
#      cache is reused) queried with the 300 judged test queries, and
#   2. a synthetic 1,000,000 x 384 clustered set (SEARCHBAR_BENCH_N to change the size),
# reporting recall@10 against exact FAISS search, bytes per document, native single-thread
# latency (`searchbar-bench-index`), build time against Python faiss-cpu of the same FAISS
# version on the same data (scripts/bench/faiss-cpu.py), and search latency in headless
# Chromium (crates/searchbar-index/tests/wasm_bench.rs).
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/searchbar/target}"
cache="${SEARCHBAR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/searchbar}"
out="${SEARCHBAR_BENCH_OUT:-$cache/bench-index}"
n="${SEARCHBAR_BENCH_N:-1000000}"
FAISS_CPU_VERSION=1.12.0 # the FAISS version faiss-sys vendors
log() { printf '\033[1m[bench-index]\033[0m %s\n' "$*" >&2; }

venv="$cache/venv-bench-index"
if ! "$venv/bin/python" -c "import faiss, sys; sys.exit(faiss.__version__ != '$FAISS_CPU_VERSION')" 2>/dev/null; then
  log "installing faiss-cpu==$FAISS_CPU_VERSION into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "faiss-cpu==$FAISS_CPU_VERSION" "numpy<3"
fi
cargo build -q --release --locked -p searchbar
sb="$CARGO_TARGET_DIR/release/searchbar"
bench="$CARGO_TARGET_DIR/release/searchbar-bench-index"
mkdir -p "$out"

# 1. SciFact: the project of scripts/bench/scifact.sh (run that once first).
scifact="${SEARCHBAR_BENCH_DIR:-$CARGO_TARGET_DIR/bench-scifact}"
if [ -f "$scifact/searchbar.toml" ]; then
  log "SciFact embeddings from $scifact"
  (cd "$scifact" && "$sb" ingest >/dev/null && "$sb" embed >/dev/null)
  (cd "$scifact" && "$bench" --dump "$out/scifact" \
    --config 'flat:rerank=0' \
    --config 'ivfpq:nlist=64,m=48,nprobe=8/16,rerank=0/100' \
    --config 'ivfpq:nlist=64,m=48,store=external,nprobe=16,rerank=100' \
    --config 'ivfpq:nlist=64,m=96,store=false,nprobe=8/16,rerank=0' \
    --config 'ivfpq:nlist=64,m=24,store=false,nprobe=16,rerank=0') | tee "$out/scifact.md"
else
  log "no SciFact project at $scifact: run scripts/bench/scifact.sh first (skipping SciFact)"
fi

# 2. Synthetic.
log "synthetic set of $n documents"
"$bench" --synthetic "$n" --queries 1000 --dump "$out/synthetic" \
  --config 'ivfpq:nlist=1024,m=32,store=false,sample=100000,nprobe=16/32,rerank=0' \
  --config 'ivfpq:nlist=1024,m=48,store=false,sample=100000,nprobe=16/32/64,rerank=0' \
  --config 'ivfpq:nlist=1024,m=96,store=false,sample=100000,nprobe=16/32,rerank=0' \
  --config 'ivfpq:nlist=1024,m=48,store=true,sample=100000,nprobe=16/32,rerank=100' \
  --config 'ivfpq:nlist=1024,m=48,store=external,sample=100000,nprobe=16/32,rerank=50/100' \
  --config 'ivfpq:nlist=1024,m=32,store=external,sample=100000,nprobe=16/32,rerank=100' \
  --config 'flat:rerank=0' | tee "$out/synthetic.md"

# Peer: Python faiss-cpu, same builds.
for d in "$out/scifact" "$out/synthetic"; do
  [ -f "$d/bench.json" ] || continue
  log "faiss-cpu on $d"
  "$venv/bin/python" scripts/bench/faiss-cpu.py "$d" | tee "$d/faiss-cpu.jsonl"
done

# Browser: the same index files searched by our wasm build in headless Chromium.
for d in "$out/scifact" "$out/synthetic"; do
  [ -f "$d/bench.json" ] || continue
  scripts/bench/index-browser.sh "$d"
done
log "results in $out/{scifact,synthetic}/{bench.json,faiss-cpu.jsonl,wasm.jsonl}"
for d in "$out/scifact" "$out/synthetic"; do
  [ -f "$d/bench.json" ] && python3 scripts/bench/index-table.py "$d" && echo
done
