#!/usr/bin/env bash
# Browser benchmark (BENCHMARKS.md, "Search bar in Chromium"): tests/browser.rs's benchmark with
# the transformers.js and onnxruntime-web peers staged next to the release, so all three run in
# one headless Chromium session, for the default release and for the same with int8 encoder
# weights. Writes target/e2e/browser-bench-default.json and browser-bench-int8.json.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/searchbar/target}"
cache="${SEARCHBAR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/searchbar}"
./scripts/build-web.sh
export SEARCHBAR_WEB_DIST="$PWD/dist"
peers="$cache/web-peers-staged"
./scripts/bench/web-peers.sh "$peers"
cargo test -q --workspace --locked --no-run
# The release as configured by default (4-bit encoder weights), then the same with int8 weights.
bench() {
  SEARCHBAR_SAMPLE_CONFIG="$1" SEARCHBAR_WEB_PEERS="$peers" cargo test -q --workspace --locked \
    --test browser -- --ignored --exact keystroke_to_results --nocapture
  cp target/e2e/browser-bench.json "target/e2e/browser-bench-$2.json"
  echo "== $2"
  python3 -m json.tool "target/e2e/browser-bench-$2.json"
}
bench "" default
bench $'[model]\nweights = "int8"' int8
