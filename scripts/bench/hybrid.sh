#!/usr/bin/env bash
# Hybrid search on BEIR SciFact (../shared/datasets/scifact, read in place): the pipeline's
# lexical, dense and hybrid rankings side by side on the 300 judged test queries, alpha and the
# floor tuned on the 809 training queries only (qrels/train.tsv), convex fusion and RRF; then
# the lexical peer, Python's bm25s with the same k1 and b, on the same test queries. Prints the
# numbers for BENCHMARKS.md, with the encoder's int8 weights and as shipped (4-bit). The embedding
# cache is shared with scripts/bench/scifact.sh.
# SEARCHBAR_BIN picks the binary (default: a release build); the figures are quality, not
# speed, so any build gives the same ones.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/bench/scifact-documents.sh
repo="$PWD"
scifact_bench bench-scifact
mkdir -p "$work"
cp "$data/corpus.jsonl" "$work/corpus.jsonl"
write_config() {
  { scifact_documents_toml; cat <<TOML
[index]
kind = "flat"
[search]
$1
[evaluation]
queries = "$data/queries.jsonl"
qrels = "$data/qrels/test.tsv"
tune_qrels = "$data/qrels/train.tsv"
recall_queries = 100
[gate]
min_recall_at_10 = 0.0
max_ndcg_drop = 1.0
[model]
weights = "$2"
TOML
  } > "$work/searchbar.toml"
}
cd "$work"
# The encoder with int8 weights, then as shipped (4-bit, the model lock's plan).
for run in 'int8|mode = "hybrid"' 'auto|mode = "hybrid"' 'auto|fusion = "rrf"'; do
  weights="${run%%|*}" search="${run#*|}"
  echo "== weights = $weights; $search"
  write_config "$search" "$weights"
  "$sb" run --env stage --until evaluate | grep -E "^(train|evaluate): " | grep -v running
  python3 - <<'PY'
import json
r = json.load(open(".searchbar/candidate/report.json"))
if r.get("tuning") and r["tuning"]["sweep"]:
    print("alpha sweep on the tuning queries (nDCG@10):",
          ", ".join(f"{a:.2f} {s:.4f}" for a, s in r["tuning"]["sweep"]))
for m in r["modes"]:
    print(f"{m['mode']:>8}: nDCG@10 {m['ndcg_at_10']:.4f}  MRR@10 {m['mrr_at_10']:.4f}  recall@100 {m['recall_at_100']:.4f}")
PY
done
echo "== peer: bm25s on the same test queries"
python3 "$repo/scripts/bench/bm25s.py" "$data" "$data/qrels/test.tsv" 0.9 0.4
