#!/usr/bin/env bash
# Runs every test: lints, native tests, and the browser (WASM) tests in headless Chromium.
# Installs what it needs first (scripts/install.sh) and fetches the pinned model.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/searchbar/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "install"
bash scripts/install.sh

step "format and lints"
cargo fmt --all --check
bash scripts/check-comment-width.sh
cargo clippy -q --workspace --all-targets --locked -- -D warnings
cargo clippy -q -p searchbar-encoder -p searchbar-lexical -p searchbar-web-encoder --target wasm32-unknown-unknown --locked -- -D warnings
# The page's first module alone, as trunk builds it: searchbar-query without its encoder, and
# nothing of tract or the tokenizer in it (that is what keeps it small).
cargo clippy -q -p searchbar-web --target wasm32-unknown-unknown --locked -- -D warnings
if cargo tree -q -p searchbar-web --target wasm32-unknown-unknown -e normal --prefix none --locked |
  grep -E '^(searchbar-encoder|tract-|tokenizers) ' >&2; then
  echo "the page's first module depends on the encoder (above)" >&2
  exit 1
fi
# Nor a stemmer: the release's own comes as a module of its own (web/stem), which is linted
# as build-web.sh builds it, for one language.
if cargo tree -q -p searchbar-web --target wasm32-unknown-unknown -e normal --prefix none --locked |
  grep -E '^rust-stemmers ' >&2; then
  echo "the page's first module links the stemmers (above)" >&2
  exit 1
fi
cargo clippy -q -p searchbar-web-stem --features english --target wasm32-unknown-unknown --locked -- -D warnings
# The index's and the lexical index's tests too: keeps their Chromium search benchmarks
# (tests/wasm_bench.rs) compiling.
cargo clippy -q -p searchbar-index -p searchbar-lexical --target wasm32-unknown-unknown --tests --locked -- -D warnings
# The Jenkinsfile: CodeNarc's Groovy and Jenkinsfile rules (errors fail; warnings are shown).
"${SEARCHBAR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/searchbar}/npm/node_modules/.bin/npm-groovy-lint" \
  --failon error --output txt --loglevel warning --noserver Jenkinsfile

step "web bundle (trunk)"
bash scripts/build-web.sh
export SEARCHBAR_WEB_DIST="$PWD/dist"

step "build"
# One feature set for everything native (tests' dev-dependencies included), so tract and FAISS
# are compiled once; the binary the end-to-end tests drive comes out of this build too.
cargo test -q --workspace --locked --no-run
SEARCHBAR="$CARGO_TARGET_DIR/debug/searchbar"

step "model"
"$SEARCHBAR" model fetch
SEARCHBAR_MODEL_DIR="$("$SEARCHBAR" model path)"
export SEARCHBAR_MODEL_DIR

step "PostgreSQL test server"
if [ "${SEARCHBAR_SKIP_PG:-}" != 1 ] && [ -z "${SEARCHBAR_TEST_PG_URL:-}" ]; then
  SEARCHBAR_TEST_PG_URL="$(bash scripts/pg-test-server.sh)"
  export SEARCHBAR_TEST_PG_URL
  SEARCHBAR_TEST_PG_CA="$(bash scripts/pg-test-server.sh --ca)"
  export SEARCHBAR_TEST_PG_CA
fi

step "SciFact (../shared/datasets/scifact, read in place)"
if [ -z "${SEARCHBAR_SCIFACT:-}" ]; then
  for d in ../shared/datasets/scifact /work/shared/datasets/scifact; do
    if [ -f "$d/corpus.jsonl" ]; then SEARCHBAR_SCIFACT="$(cd "$d" && pwd)"; export SEARCHBAR_SCIFACT; break; fi
  done
fi
if [ -z "${SEARCHBAR_SCIFACT:-}" ]; then
  echo "WARNING: SciFact not found next to the repository: its drift test is skipped" >&2
  export SEARCHBAR_SKIP_SCIFACT=1
fi

step "native and end-to-end tests"
if [ -n "${SEARCHBAR_JUNIT:-}" ] && command -v cargo-nextest >/dev/null; then
  # Jenkins: the same tests through nextest, which writes JUnit XML (.config/nextest.toml).
  cargo nextest run --workspace --locked --profile ci
else
  cargo test -q --workspace --locked --no-fail-fast
fi

step "browser tests (wasm32 in headless Chromium)"
CHROMEDRIVER=/usr/bin/chromedriver \
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
WASM_BINDGEN_TEST_TIMEOUT=600 \
  cargo test -p searchbar-encoder --target wasm32-unknown-unknown --locked --test parity -- --nocapture
# The encoder's unit tests in wasm (under Node): the integer matmul kernel the page runs
# (dot16.rs) against a float64 reference, and the fused ops' vector forms (lanes.rs) against
# golden bits shared with the native build.
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
  cargo test -p searchbar-encoder --target wasm32-unknown-unknown --locked --lib
# The index's int8 kernels in their wasm simd128 form against the portable loops.
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
  cargo test -p searchbar-index --target wasm32-unknown-unknown --locked --lib
