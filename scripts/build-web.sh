#!/usr/bin/env bash
# Builds the web app into dist/: the page and its first wasm module with trunk (index.html for
# releases/<id>/, the hashed bundle for files/), then the encoder's module (web/encoder) and
# the stemmer modules (web/stem) beside them; precompresses them all (.br, .gz) and prints the
# raw, gzip and brotli sizes. Never downloads: tools come from scripts/install.sh (trunk,
# wasm-bindgen-cli and wasm-opt at pinned versions).
set -euo pipefail
shopt -s nullglob
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/searchbar/target}"
export TRUNK_SKIP_VERSION_CHECK=true
log() { printf '\033[1m[build-web]\033[0m %s\n' "$*"; }

bash scripts/install.sh
export PATH="${SEARCHBAR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/searchbar}/npm/node_modules/.bin:$PATH"

# Trunk.toml pins the tools; a mismatch would make trunk fail offline, so say which one early.
want_bindgen=$(awk -F'"' '/^wasm_bindgen/{print $2}' Trunk.toml)
want_opt=$(awk -F'"' '/^wasm_opt/{print $2}' Trunk.toml)
lock_bindgen=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/[^0-9.]/, ""); print; exit}' Cargo.lock)
[ "$want_bindgen" = "$lock_bindgen" ] || { log "Trunk.toml wasm_bindgen=$want_bindgen but Cargo.lock has $lock_bindgen"; exit 1; }
[ "$(wasm-opt --version | awk '{print $4}' | tr -d '()')" = "$want_opt" ] || { log "wasm-opt is not $want_opt"; exit 1; }

log "trunk build --release --offline"
trunk build --release --offline "$@"

# The query encoder's own module (web/encoder), which the page loads once words are searchable:
# built as trunk builds the page's (profile web, the same wasm-opt passes), named by its
# content's hash like trunk's files. The page finds it in the manifest's list of its files.
log "encoder module (searchbar-web-encoder)"
cargo build -q --profile web --target wasm32-unknown-unknown -p searchbar-web-encoder --locked \
  --offline
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
wasm-bindgen --target web --no-typescript --out-dir "$out" --out-name searchbar-encoder \
  "$CARGO_TARGET_DIR/wasm32-unknown-unknown/web/searchbar-web-encoder.wasm"
# JS snippets (`#[wasm_bindgen(inline_js)]`) would live in a folder the release does not carry.
[ ! -e "$out/snippets" ] || { log "the encoder module has JS snippets: not supported"; exit 1; }
read -r -a opt_params <<< "$(grep -o 'data-wasm-opt-params="[^"]*"' index.html | cut -d'"' -f2)"
wasm-opt -O3 "${opt_params[@]}" -o "$out/opt.wasm" "$out/searchbar-encoder_bg.wasm"
hash=$(cat "$out/opt.wasm" "$out/searchbar-encoder.js" | sha256sum | cut -c1-16)
cp "$out/searchbar-encoder.js" "dist/searchbar-encoder-$hash.js"
cp "$out/opt.wasm" "dist/searchbar-encoder-${hash}_bg.wasm"

# The stemmer modules (web/stem), one a language, each built with its language's feature
# alone so that the linker leaves the other algorithms out; export puts the release's own in
# the release, and the page loads it beside its first module.
log "stemmer modules (searchbar-web-stem)"
for lang in $(sed -n '/^\[features\]/,$p' web/stem/Cargo.toml | awk '/ = \[\]$/{print $1}'); do
  cargo build -q --profile web-page --target wasm32-unknown-unknown -p searchbar-web-stem \
    --features "$lang" --locked --offline
  wasm-opt -Oz "${opt_params[@]}" --strip-debug --strip-producers -o "$out/stem.wasm" \
    "$CARGO_TARGET_DIR/wasm32-unknown-unknown/web-page/searchbar_web_stem.wasm"
  hash=$(sha256sum < "$out/stem.wasm" | cut -c1-16)
  cp "$out/stem.wasm" "dist/searchbar-stem-$lang-$hash.wasm"
done

# The bundle's precompressed variants, at the strongest settings once here rather than at every
# export (brotli 11 takes about 25 s for the wasm); export checks that each decodes to its file.
for f in dist/*.wasm dist/*.js dist/*.css; do
  brotli -q 11 -f -k -o "$f.br" "$f"
  gzip -9 -n -f -k "$f"
done
# The first module is on the first result's path, and brotli's size at one window moves by up
# to 3 KB between nearly equal builds of it (BENCHMARKS.md, "Web bundle size"): the smallest
# of three windows is kept (a few seconds each at its size).
for f in dist/searchbar-web-*_bg.wasm; do
  for w in 18 19; do
    brotli -q 11 -w "$w" -f -o "$out/try.br" "$f"
    if [ "$(stat -c %s "$out/try.br")" -lt "$(stat -c %s "$f.br")" ]; then
      mv "$out/try.br" "$f.br"
    fi
  done
done
for f in dist/*.wasm dist/*.js; do
  log "$(basename "$f"): raw $(stat -c %s "$f") B, gzip -9 $(stat -c %s "$f.gz") B, brotli -q 11 $(stat -c %s "$f.br") B"
done
