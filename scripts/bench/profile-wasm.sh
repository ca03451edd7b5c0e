#!/usr/bin/env bash
# Per-op profile of a query embedding in wasm (crates/searchbar-encoder/tests/wasm_profile.rs),
# built with the page's `web` profile. `scripts/bench/profile-wasm.sh` runs it under Node;
# `scripts/bench/profile-wasm.sh chromium` in headless Chromium (whose clock is coarser: 100 us).
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/searchbar/target}"
cargo build -q -p searchbar --bin searchbar
SEARCHBAR_MODEL_DIR="$("$CARGO_TARGET_DIR/debug/searchbar" model path)"
export SEARCHBAR_MODEL_DIR
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner
if [ "${1:-node}" = chromium ]; then
  export WASM_BINDGEN_USE_BROWSER=1 CHROMEDRIVER=/usr/bin/chromedriver WASM_BINDGEN_TEST_TIMEOUT=600
fi
cargo test --profile web -p searchbar-encoder --target wasm32-unknown-unknown --locked \
  --test wasm_profile -- --nocapture
