#!/usr/bin/env bash
# First-visit benchmark (BENCHMARKS.md, "First visit"): the demo release opened at its root in
# headless Chromium under DevTools throttling (9 Mbit/s / 40 ms and Lighthouse's mobile
# 1.6 Mbit/s / 150 ms), cold then warm: time to the box, to the app, to the first and to the
# hybrid results, and the bytes before each. Writes target/e2e/first-visit.json and prints a
# table. Needs the model (`searchbar model fetch`) and chromium + chromium-driver.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/searchbar/target}"
[ -n "${SEARCHBAR_WEB_DIST:-}" ] || { ./scripts/build-web.sh; export SEARCHBAR_WEB_DIST="$PWD/dist"; }
# The same feature set as the test suite (scripts/test.sh), so tract is not built twice.
cargo test -q --workspace --locked --no-run
if [ -z "${SEARCHBAR_MODEL_DIR:-}" ]; then
  SEARCHBAR_MODEL_DIR="$("$CARGO_TARGET_DIR/debug/searchbar" model path)"
  export SEARCHBAR_MODEL_DIR
fi
cargo test -q --workspace --locked --test e2e -- --ignored --exact browser_lexical::first_visit --nocapture
python3 - <<'PY'
import json
rows = json.load(open("target/e2e/first-visit.json"))
s = lambda v: "—" if v is None else f"{v:.2f} s"
b = lambda v: "—" if v is None else f"{int(v):,}"
print("| profile | visit | box | app | first result | hybrid results | bytes before first result | bytes before hybrid | later query, max | total bytes |")
print("|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    print(f"| {r['profile']} | {r['visit']} | {s(r['box_s'])} | {s(r['app_s'])} | {s(r['first_result_s'])} | "
          f"{s(r['complete_s'])} | {b(r['bytes_before_first_result'])} | {b(r['bytes_before_complete'])} | "
          f"{b(r['bytes_per_later_query_max'])} | {b(r['total_bytes'])} |")
PY
