#!/usr/bin/env bash
# Search latency in headless Chromium for the index files `searchbar bench-index --dump DIR`
# wrote (crates/searchbar-index/tests/wasm_bench.rs, wasm32 + simd128): writes DIR/wasm.jsonl.
# The files are served with CORS and HTTP range requests from a local port (the test page lives
# on the runner's own port); indexes with a separate rows file fetch their candidates' records
# from it one range request each, as a page would from a CDN.
set -euo pipefail
cd "$(dirname "$0")/.."
d="$(realpath "$1")"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/searchbar/target}"
log() { printf '\033[1m[bench-index-browser]\033[0m %s\n' "$*" >&2; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# Node's http module (keep-alive, TCP_NODELAY, no global lock) answers a range request in well
# under a millisecond; Python's http.server took about 1.8 ms each, which is what it measured.
node - "$d" "$port" <<'JS' &
const http = require("http"), fs = require("fs"), path = require("path");
const [dir, port] = process.argv.slice(2);
http.createServer((req, res) => {
  const head = { "Access-Control-Allow-Origin": "*", "Content-Type": "application/octet-stream" };
  const file = path.join(dir, decodeURIComponent(new URL(req.url, "http://x").pathname));
  fs.stat(file, (err, st) => {
    if (err || !st.isFile() || !file.startsWith(dir + path.sep)) {
      res.writeHead(404, head);
      return res.end();
    }
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range || "");
    let [a, b] = [0, st.size - 1];
    if (m) {
      [a, b] = [Number(m[1]), Math.min(Number(m[2]), st.size - 1)];
      if (a > b) {
        res.writeHead(416, head);
        return res.end();
      }
      head["Content-Range"] = `bytes ${a}-${b}/${st.size}`;
    }
    head["Content-Length"] = b - a + 1;
    res.writeHead(m ? 206 : 200, head);
    fs.createReadStream(file, { start: a, end: b }).pipe(res);
  });
}).listen(Number(port), "127.0.0.1");
JS
server=$!
trap 'kill $server' EXIT
log "Chromium (wasm32 + simd128) on $d"
SEARCHBAR_WASM_BENCH_URL="http://127.0.0.1:$port" \
CHROMEDRIVER=/usr/bin/chromedriver \
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
WASM_BINDGEN_TEST_TIMEOUT=1200 \
  cargo test --release -p searchbar-index --target wasm32-unknown-unknown --locked \
    --test wasm_bench -- --nocapture 2>&1 | grep WASMBENCH | sed 's/^.*WASMBENCH //' \
    | tee "$d/wasm.jsonl" || true
