#!/usr/bin/env bash
# Search latency in headless Chromium for the index files `searchbar-bench-index --dump DIR`
# wrote (crates/searchbar-index/tests/wasm_bench.rs, wasm32 + simd128): writes DIR/wasm.jsonl.
# Indexes with a separate rows file fetch their candidates' records from the local server one
# range request each, as a page would from a CDN.
set -euo pipefail
cd "$(dirname "$0")/../.."
printf '\033[1m[bench-index-browser]\033[0m Chromium (wasm32 + simd128) on %s\n' "$1" >&2
scripts/bench/wasm.sh searchbar-index "$1" | tee "$1/wasm.jsonl"
