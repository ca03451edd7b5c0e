#!/usr/bin/env bash
# The lexical index's bytes per query and search latency, natively and in headless Chromium,
# on SciFact and on a synthetic Zipfian corpus of 1,000,000 documents (BENCHMARKS.md,
# "Lexical index"). Usage: scripts/bench/lexical.sh [SCIFACT_DIR] [DOCUMENTS]
# Then what the postings budget costs SciFact's judged queries among DOCUMENTS made of its
# unjudged documents' sentences (natively; LEXICAL_DISTRACTORS=0 skips it).
# Needs about 14 GB of memory and 25 minutes on 2 cores; writes target/bench-lexical/.
set -euo pipefail
cd "$(dirname "$0")/../.."
scifact="${1:-../shared/datasets/scifact}"
docs="${2:-1000000}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/searchbar/target}"
log() { printf '\033[1m[bench-lexical]\033[0m %s\n' "$*" >&2; }
out="$PWD/target/bench-lexical"
rm -rf "$out" && mkdir -p "$out"
cargo build -q --release -p searchbar-lexical --example lexical_bench --locked
bench="$CARGO_TARGET_DIR/release/examples/lexical_bench"
for corpus in scifact synthetic; do
  arg="$scifact"; [ "$corpus" = synthetic ] && arg="$docs"
  log "native: $corpus"
  "$bench" "$corpus" "$arg" --dump "$out/$corpus" | tee "$out/$corpus.txt"
  log "Chromium (wasm32): $corpus"
  scripts/bench/wasm.sh searchbar-lexical "$out/$corpus" | tee "$out/$corpus-wasm.json"
done
if [ "${LEXICAL_DISTRACTORS:-1}" != 0 ]; then
  log "native: SciFact among $docs documents"
  "$bench" scifact-distractors "$scifact" "$docs" | tee "$out/scifact-distractors.txt"
fi
