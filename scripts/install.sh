#!/usr/bin/env bash
# Installs everything the build and the tests need, idempotently. The one list of tools and
# versions: .ci/run, scripts/test.sh, scripts/demo.sh and the agent image all run this script.
set -euo pipefail
cd "$(dirname "$0")/.."

# Pinned tool versions (wasm-bindgen-cli must equal the wasm-bindgen crate in Cargo.lock).
TRUNK_VERSION=0.22.1
BINARYEN_VERSION=132
GROOVY_LINT_VERSION=15.2.2
MOTO_VERSION=5.2.1
APT_PACKAGES=(brotli chromium chromium-driver cmake libopenblas-dev libssl-dev openssl pkg-config postgresql)

log() { printf '\033[1m[install]\033[0m %s\n' "$*"; }

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# npm (for wasm-opt, below) may come with a Node.js installed outside apt.
command -v npm >/dev/null || missing+=(npm)
# The Jenkinsfile's linter (below) runs CodeNarc on a Java runtime, which may also come from
# outside apt.
command -v java >/dev/null || missing+=(default-jre-headless)
if ((${#missing[@]})); then
  log "apt: ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! rustup target list --installed | grep -q '^wasm32-unknown-unknown$'; then
  log "rustup target wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

if [ -f Cargo.lock ]; then
  WASM_BINDGEN_VERSION=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/[^0-9.]/, ""); print; exit}' Cargo.lock)
  if [ -n "$WASM_BINDGEN_VERSION" ] && [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WASM_BINDGEN_VERSION" ]; then
    log "cargo install wasm-bindgen-cli $WASM_BINDGEN_VERSION"
    cargo install -q wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
  fi
fi

# trunk builds the web app; it never downloads tools (Trunk.toml: offline), so wasm-opt comes
# from the binaryen npm package, installed into the cache and put on PATH by scripts/build-web.sh.
if [ "$(trunk --version 2>/dev/null | awk '{print $2}')" != "$TRUNK_VERSION" ]; then
  log "cargo install trunk $TRUNK_VERSION"
  cargo install -q trunk --version "$TRUNK_VERSION" --locked --ignore-rust-version
fi

NPM_PREFIX="${SEARCHBAR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/searchbar}/npm"
if [ "$("$NPM_PREFIX/node_modules/.bin/wasm-opt" --version 2>/dev/null | awk '{print $3}')" != "$BINARYEN_VERSION" ]; then
  log "npm install binaryen@$BINARYEN_VERSION into $NPM_PREFIX"
  npm install --silent --no-audit --no-fund --prefix "$NPM_PREFIX" "binaryen@$BINARYEN_VERSION"
fi
# The Jenkinsfile cannot run here; scripts/test.sh lints it with npm-groovy-lint (CodeNarc with
# its Jenkinsfile rules), into the same prefix.
if [ "$(node -p "require('$NPM_PREFIX/node_modules/npm-groovy-lint/package.json').version" 2>/dev/null)" != "$GROOVY_LINT_VERSION" ]; then
  log "npm install npm-groovy-lint@$GROOVY_LINT_VERSION into $NPM_PREFIX"
  npm install --silent --no-audit --no-fund --prefix "$NPM_PREFIX" "npm-groovy-lint@$GROOVY_LINT_VERSION"
fi

# The S3-compatible server the bucket-target tests deploy to (moto's standalone server, on
# loopback; tests/s3.rs starts it).
if [ "$(python3 -c 'import importlib.metadata as m; print(m.version("moto"))' 2>/dev/null)" != "$MOTO_VERSION" ] \
  || ! python3 -c 'import flask, flask_cors' 2>/dev/null || ! command -v moto_server >/dev/null; then
  log "pip install moto[server]==$MOTO_VERSION"
  python3 -m pip install -q "moto[server]==$MOTO_VERSION"
fi

export TRUNK_VERSION BINARYEN_VERSION GROOVY_LINT_VERSION MOTO_VERSION
