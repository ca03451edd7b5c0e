#!/usr/bin/env python3
"""Runs a staged bench/web-peers page (scripts/bench/web-peers.sh DEST) in headless Chromium.

Standard library only: serves DEST with serve.py (http.server, cross-origin isolated) on 127.0.0.1, drives chromedriver over its
W3C HTTP API, prints window.__peers as JSON on stdout, and fails (exit 1) on an error state,
cosine_min < 0.999, a failed request in the server log (a 404 for queries.json is fine: it selects
the built-in queries) or any request the page made to a host other than 127.0.0.1 (from Chromium's
net log; Chromium's own background requests are listed, not failed).

Usage: bench/web-peers/run.py DEST [--query 'runs=30&warmup=3'] [--timeout 600]
"""
import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

CHROME_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wd(base, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.load(r)["value"]


def wait_until(pred, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if pred():
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError(what)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dest")
    ap.add_argument("--query", default="", help="page query string, e.g. runs=30&warmup=3")
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    a = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="web-peers-")
    server_log, net_log = os.path.join(tmp, "server.log"), os.path.join(tmp, "netlog.json")
    hport, dport = free_port(), free_port()
    procs = []
    try:
        with open(server_log, "w") as log:
            procs.append(subprocess.Popen(
                [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                              "serve.py"), str(hport), a.dest],
                stdout=log, stderr=log))
        procs.append(subprocess.Popen([a.chromedriver, f"--port={dport}"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        base = f"http://127.0.0.1:{dport}"
        wait_until(lambda: wd(base, "GET", "/status")["ready"], 30, "chromedriver not ready")
        wait_until(lambda: socket.create_connection(("127.0.0.1", hport)).close() is None, 30,
                   "http.server not listening")
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": a.chromium, "args": CHROME_ARGS + [f"--log-net-log={net_log}"]}}}}
        sid = wd(base, "POST", "/session", caps)["sessionId"]
        s = f"/session/{sid}"
        try:
            wd(base, "POST", s + "/timeouts", {"script": 30000})
            url = f"http://127.0.0.1:{hport}/index.html" + (f"?{a.query}" if a.query else "")
            wd(base, "POST", s + "/url", {"url": url})
            state, end = None, time.monotonic() + a.timeout
            while time.monotonic() < end:
                state = wd(base, "POST", s + "/execute/sync",
                           {"script": "return document.body.dataset.state", "args": []})
                if state in ("done", "error"):
                    break
                time.sleep(0.5)
            peers = wd(base, "POST", s + "/execute/sync",
                       {"script": "return window.__peers ?? null", "args": []})
        finally:
            wd(base, "DELETE", s)  # closes Chromium, which completes the net log
    finally:
        for p in reversed(procs):
            p.terminate()
            p.wait(timeout=10)

    print(json.dumps(peers, indent=2))
    problems = []
    if state != "done":
        problems.append(f"page state {state!r}: {(peers or {}).get('error')}")
    elif peers["cosine_min"] < 0.999:
        problems.append(f"cosine_min {peers['cosine_min']} < 0.999")
    log_text = open(server_log).read()
    for m in re.finditer(r'"(\w+) (\S+) HTTP/[\d.]+" (\d{3})', log_text):
        if int(m[3]) >= 400 and not m[2].startswith("/queries.json"):
            problems.append(f"server: {m[1]} {m[2]} -> {m[3]}")
    requests = len(re.findall(r'"\w+ \S+ HTTP/[\d.]+" \d{3}', log_text))
    # Page requests carry the page's origin as initiator or isolation key; Chromium's own
    # background fetches (component updater, accounts, time) carry neither and are only listed.
    page_ext, browser_ext = set(), set()
    events = json.load(open(net_log)).get("events", []) if os.path.exists(net_log) else []
    for e in events:
        p = e.get("params") or {}
        u = p.get("url", "")
        if not re.match(r"(?:https?|wss?)://", u) or re.match(r"\w+://(?:127\.0\.0\.1|localhost)[:/]", u):
            continue
        if "127.0.0.1" in p.get("initiator", "") + p.get("network_isolation_key", ""):
            page_ext.add(u)
        else:
            browser_ext.add(u)
    browser_ext = {u.split("?")[0] for u in browser_ext - page_ext}
    problems += [f"external request from the page: {u}" for u in sorted(page_ext)]
    if not events:
        problems.append("no net log written")
    print(f"[run.py] {requests} requests served; net log: {len(events)} events, "
          f"{len(page_ext)} external requests from the page, Chromium's own: "
          f"{', '.join(sorted(browser_ext)) or 'none'}; logs in {tmp}", file=sys.stderr)
    for p in problems:
        print(f"[run.py] FAIL {p}", file=sys.stderr)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
