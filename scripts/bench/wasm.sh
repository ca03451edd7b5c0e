#!/usr/bin/env bash
# Runs a crate's Chromium benchmark (its tests/wasm_bench.rs: wasm32, release, headless
# Chromium) against the files in DIR, served from a loopback port by scripts/bench/server.js
# (CORS for the test runner's page, HTTP range requests), and prints the benchmark's
# WASMBENCH lines as JSON, one per line. Usage: scripts/bench/wasm.sh PACKAGE DIR
set -euo pipefail
cd "$(dirname "$0")/../.."
pkg="$1"
d="$(realpath "$2")"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/searchbar/target}"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
node scripts/bench/server.js "$d" "$port" &
server=$!
trap 'kill $server' EXIT
SEARCHBAR_WASM_BENCH_URL="http://127.0.0.1:$port" \
CHROMEDRIVER=/usr/bin/chromedriver \
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
WASM_BINDGEN_TEST_TIMEOUT=1200 \
  cargo test --release -p "$pkg" --target wasm32-unknown-unknown --locked \
    --test wasm_bench -- --nocapture 2>&1 | grep WASMBENCH | sed 's/^.*WASMBENCH //' || true
