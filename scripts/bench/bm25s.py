#!/usr/bin/env python3
"""The lexical peer for BENCHMARKS.md: BM25 with Python's bm25s over a BEIR dataset (title and
text, English stop words, Snowball stemmer), nDCG@10 with the same formula as
crates/searchbar-index/src/metrics.rs (linear gains, log2 discount). Needs `pip install bm25s
PyStemmer`. Usage: scripts/bench/bm25s.py DATASET_DIR QRELS_TSV [k1] [b]"""
import json
import math
import sys
import time

import bm25s
import Stemmer


def ndcg10(ranked, judged):
    dcg = sum(judged.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:10]))
    ideal = sorted((g for g in judged.values() if g > 0), reverse=True)[:10]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def main():
    data, qrels_path = sys.argv[1], sys.argv[2]
    k1 = float(sys.argv[3]) if len(sys.argv) > 3 else 0.9
    b = float(sys.argv[4]) if len(sys.argv) > 4 else 0.4
    docs = [json.loads(l) for l in open(f"{data}/corpus.jsonl")]
    ids = [d["_id"] for d in docs]
    texts = [f"{d.get('title', '')} {d.get('text', '')}" for d in docs]
    qrels = {}
    for i, line in enumerate(open(qrels_path)):
        parts = line.split()
        if i == 0 and not parts[-1].lstrip("-").isdigit():
            continue
        qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    queries = [q for q in map(json.loads, open(f"{data}/queries.jsonl")) if q["_id"] in qrels]
    stemmer = Stemmer.Stemmer("english")
    started = time.time()
    retriever = bm25s.BM25(k1=k1, b=b)
    retriever.index(bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False),
                    show_progress=False)
    built = time.time() - started
    tokens = bm25s.tokenize([q["text"] for q in queries], stopwords="en", stemmer=stemmer,
                            show_progress=False)
    started = time.time()
    results, _ = retriever.retrieve(tokens, k=10, show_progress=False)
    searched = time.time() - started
    score = sum(ndcg10([ids[j] for j in row], qrels[q["_id"]])
                for q, row in zip(queries, results)) / len(queries)
    print(f"bm25s {bm25s.__version__} (k1 {k1}, b {b}): nDCG@10 {score:.4f} over "
          f"{len(queries)} queries; index {built:.2f} s, {len(queries)} queries {searched:.2f} s")


if __name__ == "__main__":
    main()
