# Sourced by the SciFact benchmarks (scifact.sh, hybrid.sh, rerank.sh, first-visit.sh) and
# million.sh: the parts of a benchmark project's searchbar.toml they share, and how a SciFact
# benchmark starts.

# Sets $data (SciFact, read in place: non-commercial research data, never copied into the
# repository), $sb (SEARCHBAR_BIN, else a release build made here) and $work
# (SEARCHBAR_BENCH_DIR, else $1 in the target directory).
scifact_bench() {
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/searchbar/target}"
  data="${SEARCHBAR_SCIFACT:-$(cd .. && pwd)/shared/datasets/scifact}"
  [ -f "$data/corpus.jsonl" ] || { echo "SciFact not found at $data (set SEARCHBAR_SCIFACT)" >&2; exit 1; }
  if [ -z "${SEARCHBAR_BIN:-}" ]; then
    cargo build -q --release --locked -p searchbar
  fi
  sb="${SEARCHBAR_BIN:-$CARGO_TARGET_DIR/release/searchbar}"
  work="${SEARCHBAR_BENCH_DIR:-$CARGO_TARGET_DIR/$1}"
}
scifact_documents_toml() {
  cat <<'TOML'
[source]
kind = "jsonl"
path = "corpus.jsonl"
[documents]
id = "_id"
template = "{title}. {text}"
title = "title"
url = ""
snippet = "text"
TOML
}

# A first-visit project: a hybrid release judged by $1 (queries.jsonl) and $2 (qrels), whatever
# its quality (no gate), deployed to its own `stage`, with the web bundle at $3.
first_visit_toml() {
  cat <<TOML
[search]
mode = "hybrid"
[web]
dist = "$3"
[evaluation]
queries = "$1"
qrels = "$2"
recall_queries = 20
[gate]
min_recall_at_10 = 0.0
max_ndcg_drop = 1.0
[deploy.targets]
stage = "deploy/stage"
TOML
}
