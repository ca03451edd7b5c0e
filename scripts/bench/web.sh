#!/usr/bin/env bash
# Browser benchmark (BENCHMARKS.md, "Search bar in Chromium"): tests/browser.rs's benchmark with
# the transformers.js and onnxruntime-web peers staged next to the release, so all three run in
# one headless Chromium session. Writes target/e2e/browser-bench.json.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/searchbar/target}"
cache="${SEARCHBAR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/searchbar}"
./scripts/build-web.sh
export SEARCHBAR_WEB_DIST="$PWD/dist"
peers="$cache/web-peers-staged"
./scripts/bench/web-peers.sh "$peers"
cargo test -q --workspace --locked --no-run
SEARCHBAR_WEB_PEERS="$peers" cargo test -q --workspace --locked --test browser \
  -- --ignored --exact keystroke_to_results --nocapture
python3 -m json.tool target/e2e/browser-bench.json
