"""Peer for `searchbar-bench-index`: builds the same IVF-PQ indexes with Python faiss-cpu
(same FAISS version as our vendored build, same data, same training sample size, same
coarse k-means settings) and times train + add, then searches them with FAISS itself for a
recall cross-check. Reads the directory written by `searchbar-bench-index --dump DIR` and
prints one JSON object per build.

usage: python3 scripts/bench/faiss-cpu.py DIR
"""

import json
import sys
import time

import faiss
import numpy as np


def main():
    d = sys.argv[1]
    meta = json.load(open(f"{d}/bench.json"))
    dim, n, nq = meta["dim"], meta["documents"], meta["queries"]
    base = np.fromfile(f"{d}/base.f32", dtype="<f4").reshape(n, dim)
    queries = np.fromfile(f"{d}/queries.f32", dtype="<f4").reshape(nq, dim)
    truth = np.fromfile(f"{d}/truth.u32", dtype="<u4").reshape(nq, 10)
    rng = np.random.default_rng(meta["seed"])
    for i, b in enumerate(meta["builds"]):
        if not b["factory"]:
            continue
        sample = b["train_sample"]
        train = base if sample >= n else base[np.sort(rng.choice(n, sample, replace=False))]
        index = faiss.index_factory(dim, b["factory"], faiss.METRIC_INNER_PRODUCT)
        ivf = faiss.extract_index_ivf(index)
        ivf.cp.niter = 10  # what our trainer uses (Level1Quantizer's default)
        ivf.cp.spherical = True
        t = time.perf_counter()
        index.train(np.ascontiguousarray(train))
        index.add(base)
        build_s = time.perf_counter() - t
        rows = []
        for nprobe in sorted({r["nprobe"] for r in meta["rows"] if r["config"] == i}):
            ivf.nprobe = nprobe
            _, got = index.search(queries, 10)
            hit = sum(len(set(g) & set(t)) for g, t in zip(got.tolist(), truth.tolist()))
            rows.append({"nprobe": nprobe, "recall_at_10_no_rerank": hit / (10 * nq)})
        print(json.dumps({
            "config": i,
            "factory": b["factory"],
            "train_sample": sample,
            "faiss_cpu_version": faiss.__version__,
            "faiss_cpu_build_s": build_s,
            "ours_faiss_s": b["faiss_s"],
            "ours_build_s": b["build_s"],
            "faiss_cpu_search": rows,
            "omp_threads": faiss.omp_get_max_threads(),
        }), flush=True)


if __name__ == "__main__":
    main()
