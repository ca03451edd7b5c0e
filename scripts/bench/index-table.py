"""Joins what scripts/bench/index.sh wrote for one data set (bench.json from `searchbar
bench-index`, faiss-cpu.jsonl from scripts/bench/faiss-cpu.py, wasm.jsonl from the Chromium run) into
the markdown tables of BENCHMARKS.md.

usage: python3 scripts/bench/index-table.py DIR
"""

import json
import os
import sys


def lines(path):
    if not os.path.exists(path):
        return []
    return [json.loads(l) for l in open(path) if l.strip().startswith("{")]


def main():
    d = sys.argv[1]
    meta = json.load(open(f"{d}/bench.json"))
    peer = {p["config"]: p for p in lines(f"{d}/faiss-cpu.jsonl")}
    wasm = {(w["config"], w.get("nprobe"), w.get("rerank")): w for w in lines(f"{d}/wasm.jsonl")}
    print(f"{meta['data']}: {meta['documents']:,} documents x {meta['dim']}, "
          f"{meta['queries']} queries; exact top-10 by FAISS IndexFlatIP in {meta['exact_s']:.1f} s\n")
    print("| index | bytes/doc | rows file B/doc (fetched KB/query) | nprobe | rerank | recall@10 "
          "| native p50 / p90 ms | Chromium mean ms |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in meta["rows"]:
        b = meta["builds"][r["config"]]
        name = b["factory"] or "flat int8"
        # Older bench.json files have a boolean: true = embedded, false = compact.
        store = {True: "embedded", False: "compact"}.get(r["store"], r["store"])
        if b["kind"] == "ivfpq" and store != "embedded":
            name += f" ({store})"
        rows = "–"
        if r.get("rows_bytes_per_doc"):
            rows = f"{r['rows_bytes_per_doc']:.0f} ({r['fetched_bytes_per_query'] / 1e3:.1f})"
        w = wasm.get((r["config"], r["nprobe"], r["rerank"]))
        wm = f"{w['search_ms_mean']:.3f}" if w and "search_ms_mean" in w else "–"
        if w and "queries" in w:
            wm += f" (range requests, {w['queries']} queries)"
        print(f"| {name} | {r['bytes_per_doc']:.1f} | {rows} | {r['nprobe'] or '–'} | {r['rerank']} | "
              f"{r['recall_at_10']:.4f} | {r['search_ms_p50']:.3f} / {r['search_ms_p90']:.3f} | {wm} |")
    if peer:
        print("\n| build | train sample | ours: FAISS train + add | ours: + export | faiss-cpu "
              f"{next(iter(peer.values()))['faiss_cpu_version']}: train + add | ours / faiss-cpu |")
        print("|---|---:|---:|---:|---:|---:|")
        for i, p in sorted(peer.items()):
            b = meta["builds"][i]
            print(f"| {p['factory']} | {p['train_sample']:,} | {b['faiss_s']:.1f} s | "
                  f"{b['build_s']:.1f} s | {p['faiss_cpu_build_s']:.1f} s | "
                  f"{b['faiss_s'] / p['faiss_cpu_build_s']:.2f}x |")


if __name__ == "__main__":
    main()
