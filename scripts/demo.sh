#!/usr/bin/env bash
# The main job. Today: install, fetch and verify the pinned model, prepare the browser encoder and
# show that embeddings capture meaning. Later issues extend it to ingest -> train -> evaluate ->
# deploy -> serve the search bar.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/searchbar/target}"
bash scripts/install.sh
cargo build -q --release --locked -p searchbar
sb="$CARGO_TARGET_DIR/release/searchbar"
"$sb" model fetch
"$sb" model verify
out="${SEARCHBAR_DEMO_OUT:-$CARGO_TARGET_DIR/demo}"
mkdir -p "$out"
"$sb" model prepare --out "$out/encoder.onnx"
echo
echo "Cosine similarity of sentence pairs (related meanings score high without shared words):"
"$sb" encode --similarity \
  "monitor air quality at home" \
  "indoor particulate sensor network with live dashboards" \
  "predict which patients return to hospital within a month" \
  "gradient boosting on readmission records"
