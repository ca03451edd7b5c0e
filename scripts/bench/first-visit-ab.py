#!/usr/bin/env python3
"""A/B of two release pages' cold first result (BENCHMARKS.md, "First visit").

    scripts/bench/first-visit-ab.py QUERY URL_A URL_B [--runs N] [--spki KEY]

Opens URL_A and URL_B alternately (A B, B A, ...), N times each (default 6), each in a new headless Chromium
profile through chromedriver with DevTools throttling at 9 Mbit/s / 40 ms, the query put in the
box as soon as it exists: the first-visit benchmark's probe, read from its source
(tests/tests/e2e/browser_lexical.rs), so both measure the same marks. Alternating spreads the
machine's drift over both. Prints, for each URL, the first results' times and the medians of
the first result, of the first module's end and of the gap from it to the first query's first
request. `--spki`: the base64 sha256 of a self-signed certificate's key, for an HTTPS server
(`searchbar serve --tls-cert`), trusted as the benchmark trusts it.
"""
import argparse
import json
import pathlib
import re
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[2]
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-quic", "--window-size=1200,900"]


def probe(query):
    src = (ROOT / "tests/tests/e2e/browser_lexical.rs").read_text()
    body = re.search(r'const FIRST_VISIT_PROBE: &str = r##"(.*?)"##;', src, re.S).group(1)
    return body.replace("__QUERY__", json.dumps(query))


def visit(url, query, spki):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    driver = subprocess.Popen(["chromedriver", f"--port={port}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    profile = tempfile.mkdtemp()

    def call(method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method, data=data,
                                     headers={"Content-Type": "application/json"})
        for _ in range(200):
            try:
                return json.load(urllib.request.urlopen(req))["value"]
            except urllib.error.URLError as e:
                if not isinstance(e.reason, ConnectionRefusedError):
                    raise
                time.sleep(0.1)
        raise RuntimeError("chromedriver did not answer")

    try:
        args = ARGS + [f"--user-data-dir={profile}"]
        if spki:
            args.append(f"--ignore-certificate-errors-spki-list={spki}")
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": shutil.which("chromium") or "/usr/bin/chromium", "args": args}}}}
        sid = call("POST", "/session", caps)["sessionId"]

        def cdp(cmd, params):
            return call("POST", f"/session/{sid}/goog/cdp/execute", {"cmd": cmd, "params": params})

        cdp("Network.enable", {})
        cdp("Network.emulateNetworkConditions", {"offline": False, "latency": 40,
            "downloadThroughput": 1_125_000, "uploadThroughput": 1_125_000})
        cdp("Page.addScriptToEvaluateOnNewDocument", {"source": probe(query)})
        call("POST", f"/session/{sid}/url", {"url": url})
        for _ in range(600):
            rec = call("POST", f"/session/{sid}/execute/sync",
                       {"script": "return sessionStorage.getItem('searchbar:bench')", "args": []})
            rec = json.loads(rec) if rec else None
            if rec and rec.get("first"):
                break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"{url}: no result in 60 s")
        call("DELETE", f"/session/{sid}")
    finally:
        driver.kill()
        shutil.rmtree(profile, ignore_errors=True)
    files = rec["firstFiles"]
    wasm_end = next(f[4] for f in files if f[0].endswith(".wasm"))
    first_ask = min(f[2] for f in files if re.match(r"lexical-\d+-", f[0]))
    return {"first": rec["first"] - rec["start"], "wasm_end": wasm_end,
            "gap": first_ask - wasm_end}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("query")
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--runs", type=int, default=6)
    ap.add_argument("--spki")
    o = ap.parse_args()
    runs = {o.a: [], o.b: []}
    for r in range(o.runs):
        # A then B, then B then A: whichever page goes first in a pair measured 30 ms slower
        # to its first module's end here, so each goes first as often as the other.
        for url in list(runs)[:: 1 if r % 2 == 0 else -1]:
            runs[url].append(visit(url, o.query, o.spki))
    for url, rs in runs.items():
        med = lambda k: statistics.median(r[k] for r in rs)
        print(f"{url}\n  first result, ms: {sorted(round(r['first']) for r in rs)}; median "
              f"{med('first'):.0f}; first module's end {med('wasm_end'):.0f}; "
              f"to the query's first request {med('gap'):.0f}")


if __name__ == "__main__":
    main()
