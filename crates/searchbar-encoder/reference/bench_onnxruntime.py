#!/usr/bin/env python3
"""onnxruntime peer for benches/encode.rs: same model file, same texts, same measurements.

Usage: python3 bench_onnxruntime.py MODEL_ONNX TOKENIZER_JSON [--quick]
Prints one JSON object per measurement.
"""
import json
import statistics
import sys
import time

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

WORDS = ["the", "time", "people", "water", "study", "small", "house", "world", "light", "music",
         "paper", "green", "river", "table", "energy", "market", "school", "animal", "cell", "data"]
QUERY = "how do i reset my password"


def document(i, tokens):
    return " ".join(WORDS[(i * 7 + j * 3 + j // 5) % len(WORDS)] for j in range(tokens - 2))


def feeds(tok, texts):
    encs = tok.encode_batch(texts)
    return {
        "input_ids": np.array([e.ids for e in encs], dtype=np.int64),
        "attention_mask": np.array([e.attention_mask for e in encs], dtype=np.int64),
        "token_type_ids": np.array([e.type_ids for e in encs], dtype=np.int64),
    }


def embed(sess, tok, texts):
    f = feeds(tok, texts)
    hidden = sess.run(None, f)[0]
    mask = f["attention_mask"][..., None].astype(np.float32)
    pooled = (hidden * mask).sum(1) / np.maximum(mask.sum(1), 1e-9)
    return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)


def main():
    model, tok_path = sys.argv[1], sys.argv[2]
    quick = "--quick" in sys.argv
    tok = Tokenizer.from_file(tok_path)
    tok.enable_truncation(max_length=256)
    tok.enable_padding()  # pads to the longest in each batch, like the Rust side
    for threads in (1, 2):
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
        assert len(tok.encode(QUERY).ids) == 8
        for _ in range(20):
            embed(sess, tok, [QUERY])
        times = []
        for _ in range(50 if quick else 300):
            t = time.perf_counter()
            embed(sess, tok, [QUERY])
            times.append((time.perf_counter() - t) * 1e3)
        print(json.dumps({"runtime": "onnxruntime", "threads": threads, "case": "query_8_tokens",
                          "median_ms": round(statistics.median(times), 3)}))
        for tokens in (128, 256):
            n = 32 if quick else 128
            docs = [document(i, tokens) for i in range(n)]
            assert len(tok.encode(docs[0]).ids) == tokens
            embed(sess, tok, docs[:8])
            t = time.perf_counter()
            for k in range(0, n, 16):
                embed(sess, tok, docs[k:k + 16])
            secs = time.perf_counter() - t
            print(json.dumps({"runtime": "onnxruntime", "threads": threads,
                              "case": f"docs_{tokens}_tokens", "docs_per_s": round(n / secs, 2)}))


if __name__ == "__main__":
    main()
