#!/usr/bin/env bash
# The main job on the embedded default: the sample catalog (SQLite, created from
# data/catalog/*.csv) -> ingest -> embed -> train -> evaluate (gate) -> export -> deploy to the
# local `stage` target -> serve the search bar on http://127.0.0.1:8080 (Ctrl-C stops it).
# Installs what it needs first. SEARCHBAR_DEMO_NO_SERVE=1 stops after the deploy.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/searchbar/target}"
bash scripts/install.sh
bash scripts/build-web.sh
cargo build -q --release --locked -p searchbar
sb="$CARGO_TARGET_DIR/release/searchbar"
"$sb" model fetch
"$sb" run --env stage
"$sb" releases --env stage
echo
echo "Try it from the command line too:  $sb query --env stage \"monitor air quality at home\""
if [ "${SEARCHBAR_DEMO_NO_SERVE:-}" = 1 ]; then
  exit 0
fi
echo "Open the search bar at the URL below (Ctrl-C to stop):"
exec "$sb" serve --env stage
