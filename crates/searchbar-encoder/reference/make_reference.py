#!/usr/bin/env python3
"""Independent reference embeddings for the encoder parity test.

Produces tests/fixtures/reference.json from two references that share no code with the Rust encoder:
  * onnxruntime running the same int8 ONNX file (the Rust side must agree to cosine >= 0.99999);
  * a float64 numpy forward pass of BERT from the fp32 model.safetensors (cosine >= 0.999).
Tokenization uses the Python `tokenizers` binding with the sentence-transformers settings for
all-MiniLM-L6-v2 (truncate at 256 tokens, no padding), and the token ids are stored too.

Usage: python3 make_reference.py MODEL_DIR [OUT_JSON]
MODEL_DIR is the cache directory written by `searchbar model fetch` (model.onnx, tokenizer.json,
model.safetensors). Needs: pip install numpy scipy onnxruntime safetensors tokenizers
"""
import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
from safetensors.numpy import load_file
from scipy.special import erf
from tokenizers import Tokenizer

MAX_TOKENS = 256
HEADS = 12
EPS = 1e-12

# Ordinary sentences, near-duplicates, and the edge inputs the encoder must survive.
SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The new movie is awesome.",
    "The cat sits outside.",
    "How do I reset my password?",
    "Semantic search ranks documents by meaning rather than exact keywords.",
    "Predict hospital readmissions with gradient boosting on tabular health records.",
    "Build a weather-station dashboard that streams sensor readings over MQTT.",
    "Quantum entanglement allows correlations that no local hidden variable theory explains.",
    "Vitamin D supplementation did not reduce the risk of fractures in older adults.",
    "0-dimensional biomaterials show inductive properties.",
]

# Inputs with little or no language in them; the int8 model itself drifts further from fp32 here.
EDGE_CASES = [
    "",
    "   \t\n  ",
    "a",
    "?!?...;;",
    "I love this 😀🚀🔥 so much!!",
    "東京は日本の首都です。",
    "机器学习模型需要大量的数据。",
    "Привет, как дела?",
    "Ünïcödé àccents and ligatures: ﬁ ﬂ straße",
    "control\u0000chars\u0007and\u001bescapes\u200bhere",
    "Mixed: naïve café — résumé, coöperate; 1,234.56 € and 50% off!",
    # Over-long input: truncated at 256 tokens, as sentence-transformers does.
    " ".join(f"token{i % 97} word{i % 13}" for i in range(1000))[:10000],
]

SENTENCES = SENTENCES + EDGE_CASES


def tokenize(tokenizer_path):
    tok = Tokenizer.from_file(str(tokenizer_path))
    tok.no_padding()
    tok.enable_truncation(max_length=MAX_TOKENS)
    return [tok.encode(s) for s in SENTENCES]


def normalize(v):
    return v / max(np.linalg.norm(v), 1e-12)


def mean_pool(hidden, mask):
    m = np.asarray(mask, dtype=hidden.dtype)[:, None]
    return (hidden * m).sum(axis=0) / max(m.sum(), 1e-9)


def run_onnxruntime(model_path, encodings):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(model_path), opts, providers=["CPUExecutionProvider"])
    out = []
    for enc in encodings:
        feeds = {
            "input_ids": np.array([enc.ids], dtype=np.int64),
            "attention_mask": np.array([enc.attention_mask], dtype=np.int64),
            "token_type_ids": np.array([enc.type_ids], dtype=np.int64),
        }
        hidden = sess.run(None, feeds)[0][0].astype(np.float64)
        out.append(normalize(mean_pool(hidden, enc.attention_mask)))
    return out


def layer_norm(x, w, b):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + EPS) * w + b


def bert_forward(w, ids, type_ids):
    """float64 BERT encoder (post-LN, exact erf GELU), as in the original MiniLM."""
    n = len(ids)
    x = w["embeddings.word_embeddings.weight"][ids]
    x = x + w["embeddings.position_embeddings.weight"][:n]
    x = x + w["embeddings.token_type_embeddings.weight"][type_ids]
    x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
    d = x.shape[1]
    hd = d // HEADS
    for layer in range(6):
        p = f"encoder.layer.{layer}."

        def dense(h, name):
            return h @ w[p + name + ".weight"].T + w[p + name + ".bias"]

        q = dense(x, "attention.self.query").reshape(n, HEADS, hd).transpose(1, 0, 2)
        k = dense(x, "attention.self.key").reshape(n, HEADS, hd).transpose(1, 0, 2)
        v = dense(x, "attention.self.value").reshape(n, HEADS, hd).transpose(1, 0, 2)
        scores = q @ k.transpose(0, 2, 1) / np.sqrt(hd)
        scores = scores - scores.max(-1, keepdims=True)
        probs = np.exp(scores)
        probs /= probs.sum(-1, keepdims=True)
        ctx = (probs @ v).transpose(1, 0, 2).reshape(n, d)
        x = layer_norm(
            dense(ctx, "attention.output.dense") + x,
            w[p + "attention.output.LayerNorm.weight"],
            w[p + "attention.output.LayerNorm.bias"],
        )
        h = dense(x, "intermediate.dense")
        h = 0.5 * h * (1.0 + erf(h / np.sqrt(2.0)))
        x = layer_norm(
            dense(h, "output.dense") + x,
            w[p + "output.LayerNorm.weight"],
            w[p + "output.LayerNorm.bias"],
        )
    return x


def run_fp64(safetensors_path, encodings):
    w = {k: v.astype(np.float64) for k, v in load_file(str(safetensors_path)).items()}
    out = []
    for enc in encodings:
        hidden = bert_forward(w, np.array(enc.ids), np.array(enc.type_ids))
        out.append(normalize(mean_pool(hidden, enc.attention_mask)))
    return out


def main():
    model_dir = Path(sys.argv[1])
    out_path = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(__file__).parent.parent / "tests/fixtures/reference.json"
    encodings = tokenize(model_dir / "tokenizer.json")
    ort_vecs = run_onnxruntime(model_dir / "model.onnx", encodings)
    fp_vecs = run_fp64(model_dir / "model.safetensors", encodings)
    cos = [float(a @ b) for a, b in zip(ort_vecs, fp_vecs)]
    print(f"int8 (onnxruntime) vs fp64 reference: min cosine {min(cos):.6f}")
    fixture = {
        "about": "Made by reference/make_reference.py; see its docstring.",
        "max_tokens": MAX_TOKENS,
        "cases": [
            {
                "text": s,
                "edge": s in EDGE_CASES,
                "ids": enc.ids,
                "onnxruntime_int8": [round(float(x), 8) for x in a],
                "fp64_safetensors": [round(float(x), 8) for x in b],
            }
            for s, enc, a, b in zip(SENTENCES, encodings, ort_vecs, fp_vecs)
        ],
    }
    out_path.write_text(json.dumps(fixture, ensure_ascii=True, separators=(",", ":")) + "\n")
    print(f"wrote {len(SENTENCES)} cases to {out_path}")


if __name__ == "__main__":
    main()
