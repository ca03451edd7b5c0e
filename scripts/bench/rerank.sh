#!/usr/bin/env bash
# What re-scoring fewer dense candidates costs a hybrid ranking (BENCHMARKS.md, "First visit"):
# BEIR SciFact (../shared/datasets/scifact, read in place) in an IVF-PQ index with PQ16 codes,
# external re-ranking rows and a lists file, as the 1,000,000-document release is built
# (scripts/bench/million.sh), searched with `search.rerank` from 100 down to 10. A hybrid query
# ranks 100 dense candidates and re-scores the best `rerank` of them, each with one range
# request for its row. First on the 809 training queries (alpha chosen by cross-validation
# over them): what a setting is chosen by. Then on the 300 test queries, alpha tuned on the
# training ones: what it is reported by. The embedding cache is scripts/bench/scifact.sh's
# or first-visit.sh's where there is one. SEARCHBAR_BIN picks the binary (default: a release
# build).
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/bench/scifact-documents.sh
scifact_bench bench-scifact-rerank
mkdir -p "$work/.searchbar"
cp "$data/corpus.jsonl" "$work/corpus.jsonl"
for cache in bench-scifact first-visit-scifact; do
  cache="$CARGO_TARGET_DIR/$cache/.searchbar/embeddings"
  [ -d "$work/.searchbar/embeddings" ] || [ ! -d "$cache" ] || cp -r "$cache" "$work/.searchbar/"
done
write_config() {
  { scifact_documents_toml; cat <<TOML
[index]
kind = "ivfpq"
nlist = 64
m = 16
rerank_store = "external"
lists_file = true
[search]
mode = "hybrid"
nprobe = 8
rerank = $1
[evaluation]
queries = "$data/queries.jsonl"
$2
recall_queries = 20
[gate]
min_recall_at_10 = 0.0
max_ndcg_drop = 1.0
TOML
  } > "$work/searchbar.toml"
}
cd "$work"
for judged in train test; do
  case $judged in
    train) qrels="qrels = \"$data/qrels/train.tsv\"" ;;
    test) qrels="qrels = \"$data/qrels/test.tsv\"
tune_qrels = \"$data/qrels/train.tsv\"" ;;
  esac
  echo "== judged by qrels/$judged.tsv"
  echo "| rerank | rows a query fetches | hybrid nDCG@10 | dense nDCG@10 | dense recall@10 vs exact | alpha |"
  echo "|---:|---:|---:|---:|---:|---:|"
  for rerank in 100 50 30 20 15 10; do
    write_config "$rerank" "$qrels"
    "$sb" run --env stage --until evaluate > /dev/null 2> evaluate.log || { cat evaluate.log >&2; exit 1; }
    python3 - "$rerank" <<'PY'
import json, sys
r = json.load(open(".searchbar/candidate/report.json"))
modes = {m["mode"]: m["ndcg_at_10"] for m in r["modes"]}
rerank = int(sys.argv[1])
print(f"| {rerank} | {rerank} x 388 B | {modes['hybrid']:.4f} | {modes['dense']:.4f} | "
      f"{r['recall_at_10']:.4f} | {r['search']['alpha']:.2f} |")
PY
  done
done
