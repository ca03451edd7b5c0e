#!/usr/bin/env bash
# Encoder diet benchmark (BENCHMARKS.md, "Encoder diet"): the bytes a page needs before its first
# semantic result. Prepares the pinned model as a release ships it (`searchbar model prepare`:
# the graph without its word-embedding table, with the lock's 4-bit plan, and the table as token
# rows; and the same graph with int8 weights), then counts raw and
# brotli bytes of the graph, the token digests and the tokenizer, and the token rows each
# SciFact test query fetches (spans as the page asks for them: ids within 8 rows in one range),
# against the upstream int8 file that transformers.js and onnxruntime-web download whole.
# Needs the model (`searchbar model fetch`), brotli, and `pip install tokenizers`.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/searchbar/target}"
SCIFACT="${SEARCHBAR_SCIFACT:-../shared/datasets/scifact}"
cargo build -q --release --locked --bin searchbar
BIN="$CARGO_TARGET_DIR/release/searchbar"
MODEL_DIR="${SEARCHBAR_MODEL_DIR:-$("$BIN" model path)}"
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
# As shipped (the lock's 4-bit plan), and with int8 weights for comparison.
"$BIN" model prepare --model-dir "$MODEL_DIR" --out "$OUT/encoder.onnx" >&2
"$BIN" model prepare --model-dir "$MODEL_DIR" --weights int8 --out "$OUT/int8.onnx" >&2
br() { brotli -q 11 -w 24 -c "$1" | wc -c; }
python3 - "$OUT" "$MODEL_DIR" "$SCIFACT" "$(br "$MODEL_DIR/model.onnx")" "$(br "$OUT/encoder.onnx")" \
  "$(br "$MODEL_DIR/tokenizer.json")" "$(br "$OUT/int8.onnx")" <<'PY'
import csv, hashlib, json, os, statistics, subprocess, sys
from tokenizers import Tokenizer

out, model_dir, scifact, upstream_br, core_br, tok_br, int8_br = sys.argv[1:8]
rows = open(f"{out}/encoder.onnx.tokens", "rb").read()
dim = 384
row = dim + 4
digests = b"".join(hashlib.sha256(rows[i:i + row]).digest()[:8] for i in range(0, len(rows), row))
open(f"{out}/digests.bin", "wb").write(digests)
digests_br = len(subprocess.run(["brotli", "-q", "11", "-c", f"{out}/digests.bin"],
                                capture_output=True, check=True).stdout)

tok = Tokenizer.from_file(f"{model_dir}/tokenizer.json")
tok.no_padding()
tok.enable_truncation(256)
judged = {r[0] for r in csv.reader(open(f"{scifact}/qrels/test.tsv"), delimiter="\t")}
queries = [json.loads(l) for l in open(f"{scifact}/queries.jsonl")]
queries = [q["text"] for q in queries if q["_id"] in judged]

def spans(ids):
    """The page's range requests for ids not at hand: ids within 8 rows share one."""
    out = []
    for i in sorted(set(ids)):
        if out and i - out[-1][1] <= 8:
            out[-1][1] = i
        else:
            out.append([i, i])
    return out

def fetched(ids):
    s = spans(ids)
    return len(s), sum((b - a + 1) * row for a, b in s)

cold = [fetched(tok.encode(q).ids) for q in queries]
# A session: the queries one after another, each fetching only the rows not yet at hand.
have, session = set(), []
for q in queries:
    ids = [i for i in tok.encode(q).ids if i not in have]
    session.append(fetched(ids))
    have.update(tok.encode(q).ids)

size = lambda p: os.path.getsize(p)
core = size(f"{out}/encoder.onnx")
tokenizer = size(f"{model_dir}/tokenizer.json")
med = statistics.median(b for _, b in cold)
p90 = sorted(b for _, b in cold)[int(0.9 * len(cold))]
fmt = lambda n: f"{int(n):,}"
print(f"| file | raw | brotli -q 11 |")
print(f"|---|---|---|")
print(f"| upstream int8 ONNX (what transformers.js and onnxruntime-web download) | {fmt(size(f'{model_dir}/model.onnx'))} | {fmt(upstream_br)} |")
print(f"| encoder graph without the table, int8 weights | {fmt(size(f'{out}/int8.onnx'))} | {fmt(int8_br)} |")
print(f"| encoder graph without the table, 4-bit weights (shipped) | {fmt(core)} | {fmt(core_br)} |")
print(f"| token digests (8 B a row) | {fmt(len(digests))} | {fmt(digests_br)} |")
print(f"| tokenizer | {fmt(tokenizer)} | {fmt(tok_br)} |")
print(f"| token rows file (never downloaded whole) | {fmt(len(rows))} | — |")
print()
print(f"SciFact test queries: {len(queries)}; token rows a query fetches on its own (raw, range "
      f"requests are not compressed): median {fmt(med)} B, p90 {fmt(p90)} B, max "
      f"{fmt(max(b for _, b in cold))} B, median {statistics.median(n for n, _ in cold):.0f} "
      f"requests; one after another in a session: {fmt(sum(b for _, b in session))} B for all "
      f"{len(queries)}, {statistics.median(b for _, b in session):.0f} B median")
first = int(core_br) + digests_br + med
print(f"Before the first semantic result (graph + digests, brotli, + a median query's rows): "
      f"{fmt(first)} B with 4-bit weights, {fmt(int(int8_br) + digests_br + med)} B with int8 "
      f"weights, against {fmt(upstream_br)} B")
PY
