# Sourced by the SciFact benchmarks (scifact.sh, hybrid.sh, first-visit.sh) and million.sh: the
# parts of a benchmark project's searchbar.toml they share.
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
