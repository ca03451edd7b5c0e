# Sourced by the SciFact benchmarks (scifact.sh, hybrid.sh, first-visit.sh): the part of a
# SciFact project's searchbar.toml they share, BEIR's corpus.jsonl read as it ships.
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
