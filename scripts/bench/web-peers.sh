#!/usr/bin/env bash
# Stages bench/web-peers (transformers.js and onnxruntime-web embedding the same queries with the
# same int8 all-MiniLM-L6-v2 file as the app) into DEST, ready for any static server.
# Usage: scripts/bench/web-peers.sh DEST    (a queries.json put into DEST replaces the built-in queries)
set -euo pipefail

# Pinned once, at the releases a user would pick today. transformers.js depends on its own
# onnxruntime-web build (a dev build, 1.31.0-dev for 4.3.1), which npm nests under it: the page
# runs transformers.js on that one, and the onnxruntime-web peer on the release pinned here.
TRANSFORMERS_JS_VERSION=4.3.1
ORT_WEB_VERSION=1.30.0

[ $# -eq 1 ] || { echo "usage: $0 DEST" >&2; exit 2; }
DEST=$(realpath -m "$1")
cd "$(dirname "$0")/../.."
PREFIX="${SEARCHBAR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/searchbar}/npm-peers"
MODEL_DIR="${SEARCHBAR_MODEL_DIR:-${SEARCHBAR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/searchbar}/models/all-MiniLM-L6-v2}"
log() { printf '\033[1m[web-peers]\033[0m %s\n' "$*" >&2; }

installed() { # version of an installed package, empty when absent
  node -p "require('$PREFIX/node_modules/$1/package.json').version" 2>/dev/null || true
}
if [ "$(installed @huggingface/transformers)" != "$TRANSFORMERS_JS_VERSION" ] ||
   [ "$(installed onnxruntime-web)" != "$ORT_WEB_VERSION" ]; then
  log "npm install into $PREFIX"
  rm -rf "$PREFIX/node_modules"
  mkdir -p "$PREFIX"
  # --ignore-scripts: transformers.js also depends on onnxruntime-node and sharp, whose install
  # scripts would fetch native binaries from outside the registry; the page needs neither.
  npm install --silent --no-audit --no-fund --no-package-lock --ignore-scripts --prefix "$PREFIX" \
    "@huggingface/transformers@$TRANSFORMERS_JS_VERSION" "onnxruntime-web@$ORT_WEB_VERSION"
fi
NM="$PREFIX/node_modules"

for f in model.onnx tokenizer.json config.json; do
  [ -f "$MODEL_DIR/$f" ] || { log "missing $MODEL_DIR/$f (run: searchbar model fetch)"; exit 1; }
done

stage() { # SRC DST [copy]: hard link when on the same file system, else copy
  mkdir -p "$(dirname "$2")"
  rm -f "$2"
  if [ "${3:-}" = copy ] || ! ln "$1" "$2" 2>/dev/null; then cp "$1" "$2"; fi
  log "staged $2 ($(stat -c %s "$2") B)"
}

# Page files are copied, so editing the staged page never edits the repository.
stage bench/web-peers/index.html "$DEST/index.html" copy
stage bench/web-peers/peers.js "$DEST/peers.js" copy
# The ESM browser build that imports onnxruntime-web by bare name (index.html maps the name),
# rather than transformers.min.js, which bundles its own ORT and the larger JSEP wasm.
stage "$NM/@huggingface/transformers/dist/transformers.web.min.js" "$DEST/transformers/transformers.web.min.js"
# The wasm-only ORT builds and the two files each loads at run time (SIMD, threads unused):
# the onnxruntime-web peer's release, and the one transformers.js depends on (nested, or the
# same copy where npm could share it).
TJS_ORT="$NM/@huggingface/transformers/node_modules/onnxruntime-web"
[ -d "$TJS_ORT" ] || TJS_ORT="$NM/onnxruntime-web"
for f in ort.wasm.min.mjs ort-wasm-simd-threaded.mjs ort-wasm-simd-threaded.wasm; do
  stage "$NM/onnxruntime-web/dist/$f" "$DEST/ort/$f"
  stage "$TJS_ORT/dist/$f" "$DEST/ort-tjs/$f"
done

# transformers.js resolves a local model as <localModelPath>/<name>/{config,tokenizer,
# tokenizer_config}.json and, for dtype q8, onnx/model_quantized.onnx.
M="$DEST/models/all-MiniLM-L6-v2"
stage "$MODEL_DIR/model.onnx" "$M/onnx/model_quantized.onnx"
stage "$MODEL_DIR/tokenizer.json" "$M/tokenizer.json"
stage "$MODEL_DIR/config.json" "$M/config.json"
# The cache has no tokenizer_config.json. transformers.js ignores tokenizer.json's own
# truncation (128) and padding; model_max_length 256 matches our tokenizer (truncate at 256, no pad).
cat >"$M/tokenizer_config.json" <<'JSON'
{
  "tokenizer_class": "BertTokenizer",
  "do_lower_case": true,
  "tokenize_chinese_chars": true,
  "strip_accents": null,
  "model_max_length": 256,
  "clean_up_tokenization_spaces": true,
  "cls_token": "[CLS]",
  "sep_token": "[SEP]",
  "pad_token": "[PAD]",
  "unk_token": "[UNK]",
  "mask_token": "[MASK]"
}
JSON
log "staged $M/tokenizer_config.json (generated)"
log "done: serve $DEST and open index.html"
