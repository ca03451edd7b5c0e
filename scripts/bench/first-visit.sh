#!/usr/bin/env bash
# First-visit benchmark (BENCHMARKS.md, "First visit"): the demo release (SciFact's, where
# ../shared/datasets/scifact is here; a synthetic 1,000,000-document one where
# SEARCHBAR_FIRST_VISIT_MILLION=1) opened at its root in headless Chromium under DevTools
# throttling (9 Mbit/s / 40 ms and Lighthouse's mobile 1.6 Mbit/s / 150 ms), cold then warm:
# time to the box, to the app, to the first and to the hybrid results, and the bytes before
# each. Each over HTTP/1.1 (`searchbar serve` as a plain host) and HTTP/2 (`serve --tls-cert`
# with a self-signed certificate the browser is told to trust: as a CDN serves);
# SEARCHBAR_FIRST_VISIT_TRANSPORTS=http1 (or h2) measures one. Writes
# target/e2e/first-visit.json and prints a table. Needs the model (`searchbar model fetch`),
# chromium + chromium-driver and openssl.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/bench/scifact-documents.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/searchbar/target}"
[ -n "${SEARCHBAR_WEB_DIST:-}" ] || { ./scripts/build-web.sh; export SEARCHBAR_WEB_DIST="$PWD/dist"; }
# The same feature set as the test suite (scripts/test.sh), so tract is not built twice.
cargo test -q --workspace --locked --no-run
if [ -z "${SEARCHBAR_MODEL_DIR:-}" ]; then
  SEARCHBAR_MODEL_DIR="$("$CARGO_TARGET_DIR/debug/searchbar" model path)"
  export SEARCHBAR_MODEL_DIR
fi
# SciFact (../shared/datasets/scifact, read in place), where it is here: a hybrid release of its
# 5,183 documents in a project of its own, by a release build or SEARCHBAR_BIN (the embeddings
# that scripts/bench/scifact.sh or hybrid.sh cached are reused; otherwise embedding takes
# minutes, and hours in a debug build).
data="${SEARCHBAR_SCIFACT:-$(cd .. && pwd)/shared/datasets/scifact}"
if [ -f "$data/corpus.jsonl" ]; then
  if [ -z "${SEARCHBAR_BIN:-}" ]; then
    cargo build -q --release --locked -p searchbar
  fi
  sb="${SEARCHBAR_BIN:-$CARGO_TARGET_DIR/release/searchbar}"
  work="$CARGO_TARGET_DIR/first-visit-scifact"
  mkdir -p "$work/.searchbar/embeddings"
  for f in "$CARGO_TARGET_DIR"/bench-scifact/.searchbar/embeddings/*.bin; do
    [ -e "$f" ] && [ ! -e "$work/.searchbar/embeddings/$(basename "$f")" ] && cp "$f" "$work/.searchbar/embeddings/"
  done
  cp -f "$data/corpus.jsonl" "$work/corpus.jsonl"
  { scifact_documents_toml; cat <<TOML
[index]
kind = "flat"
TOML
    first_visit_toml "$data/queries.jsonl" "$data/qrels/test.tsv" "$SEARCHBAR_WEB_DIST"
  } > "$work/searchbar.toml"
  (cd "$work" && "$sb" run --env stage | grep -E "^(export|deploy): ")
  export SEARCHBAR_FIRST_VISIT_SCIFACT="$work" SEARCHBAR_SCIFACT="$data"
fi
# The 1,000,000-document release where SEARCHBAR_FIRST_VISIT_MILLION=1 (scripts/bench/million.sh:
# about half an hour the first time, on 2 cores).
if [ "${SEARCHBAR_FIRST_VISIT_MILLION:-}" = 1 ]; then
  SEARCHBAR_FIRST_VISIT_MILLION="$(scripts/bench/million.sh)"
  export SEARCHBAR_FIRST_VISIT_MILLION
fi
cargo test -q --workspace --locked --test e2e -- --ignored --exact browser_lexical::first_visit --nocapture
python3 - <<'PY'
import json
rows = json.load(open("target/e2e/first-visit.json"))
s = lambda v: "—" if v is None else f"{v:.2f} s"
b = lambda v: "—" if v is None else f"{int(v):,}"
print("| catalog | transport | profile | visit | box | app | first result | hybrid results | bytes before first result | bytes before hybrid | later query, max | total bytes |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    print(f"| {r['catalog'].split(' (')[0]} | {r['transport']} | {r['profile']} | {r['visit']} | {s(r['box_s'])} | {s(r['app_s'])} | {s(r['first_result_s'])} | "
          f"{s(r['complete_s'])} | {b(r['bytes_before_first_result'])} | {b(r['bytes_before_complete'])} | "
          f"{b(r['bytes_per_later_query_max'])} | {b(r['total_bytes'])} |")
PY
