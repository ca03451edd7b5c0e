// A static file server for the Chromium benchmarks (scripts/bench/index-browser.sh,
// scripts/bench/lexical.sh): node scripts/bench/server.js DIR PORT. CORS for the test runner's page,
// HTTP range requests for the index's re-ranking rows.
// Node's http module (keep-alive, TCP_NODELAY, no global lock) answers a range request in well
// under a millisecond; Python's http.server took about 1.8 ms each, which is what it measured.
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
