#!/usr/bin/env bash
# End-to-end benchmark on BEIR SciFact (../shared/datasets/scifact, 5,183 docs, 300 judged test
# queries): full ingest + embed + train + evaluate + export + deploy, then an incremental run after
# 1 % of the documents changed, then the IVF-PQ configurations. Prints the numbers for
# BENCHMARKS.md. The dataset is read in place (non-commercial research data: never copied into
# the repository). Needs a release build: cargo build --release -p searchbar.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/bench/scifact-documents.sh
scifact_bench bench-scifact
rm -rf "$work/deploy" "$work/.searchbar/stages" "$work/.searchbar/candidate" "$work/.searchbar/export"
mkdir -p "$work"
cp "$data/corpus.jsonl" "$work/corpus.jsonl"
write_config() {
  { scifact_documents_toml; cat <<TOML
[index]
$1
[search]
$2
[evaluation]
queries = "$data/queries.jsonl"
qrels = "$data/qrels/test.tsv"
recall_queries = 500
[gate]
min_recall_at_10 = 0.0
max_ndcg_drop = 1.0
TOML
  } > "$work/searchbar.toml"
}
secs() { python3 -c "import sys; print(f'{float(sys.argv[2])-float(sys.argv[1]):.1f}')" "$1" "$2"; }

cd "$work"
write_config 'kind = "flat"' 'k = 10'
echo "== full run (flat int8); the embedding cache is kept between runs of this script"
s=$(date +%s.%N); "$sb" run --env stage; e=$(date +%s.%N)
echo "full run: $(secs "$s" "$e") s"

echo "== incremental run after changing 1 % of the documents (52)"
python3 - <<'PY'
import json
lines = open("corpus.jsonl").read().splitlines()
out = []
for i, l in enumerate(lines):
    d = json.loads(l)
    if i % 100 == 7:
        d["text"] = d["text"] + " (Revised abstract.)"
    out.append(json.dumps(d))
open("corpus.jsonl", "w").write("\n".join(out) + "\n")
PY
s=$(date +%s.%N); "$sb" run --env stage; e=$(date +%s.%N)
echo "incremental run: $(secs "$s" "$e") s"
cp "$data/corpus.jsonl" corpus.jsonl

for cfg in 'nlist = 64|m = 48|nprobe = 16|rerank = 100' 'nlist = 64|m = 48|nprobe = 8|rerank = 0' 'nlist = 64|m = 24|nprobe = 16|rerank = 100' 'nlist = 64|m = 96|nprobe = 16|rerank = 0'; do
  IFS='|' read -r nlist m nprobe rerank <<<"$cfg"
  echo "== IVF-PQ: $nlist, $m, $nprobe, $rerank"
  write_config "kind = \"ivfpq\"
$nlist
$m" "$nprobe
$rerank"
  "$sb" run --env stage --until evaluate | grep -E "^(train|evaluate|gate):"
done
