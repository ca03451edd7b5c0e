#!/usr/bin/env python3
"""Serves a staged peer page (scripts/bench/web-peers.sh DEST) on 127.0.0.1, cross-origin isolated.

The same isolation headers `searchbar serve` gives our page (COOP same-origin, COEP
require-corp), so a peer may use threads (SharedArrayBuffer) exactly when our page may. Standard
library only; logs each request as http.server does (run.py reads that log).

Usage: bench/web-peers/serve.py PORT DEST
"""
import functools
import http.server
import sys


class Isolated(http.server.SimpleHTTPRequestHandler):
    def end_headers(self):
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        super().end_headers()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    handler = functools.partial(Isolated, directory=sys.argv[2])
    http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), handler).serve_forever()
