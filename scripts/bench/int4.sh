#!/usr/bin/env bash
# 4-bit layer weights (BENCHMARKS.md, "Encoder diet"): what they cost in retrieval quality on BEIR
# SciFact. `layers` packs one matmul at a time and ranks them by how far a sample's embeddings
# move (how a model lock's [int4] keep_int8 plan is chosen); `ndcg` embeds the whole corpus with
# int8 weights and with the built-in lock's plan (every matmul in 4 bits for MiniLM), and prints
# nDCG@10 on the train queries (where a plan is chosen) and the test queries (what is reported);
# `latency` times the two encoders query by query in turn (one thread, one text at a time).
# About 15 minutes on 2 cores. Needs the model (`searchbar model fetch`).
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/searchbar/target}"
SCIFACT="${SEARCHBAR_SCIFACT:-../shared/datasets/scifact}"
cargo build -q --release --locked --bin searchbar --bin searchbar-bench-int4
BIN="$CARGO_TARGET_DIR/release"
MODEL_DIR="${SEARCHBAR_MODEL_DIR:-$("$BIN/searchbar" model path)}"
run() { "$BIN/searchbar-bench-int4" --model-dir "$MODEL_DIR" --beir "$SCIFACT" "$@"; }
if [ "${1:-}" = layers ]; then
  run layers --sample 150
fi
run latency
run ndcg --qrels train.tsv --qrels test.tsv --keep lock
