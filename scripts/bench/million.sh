#!/usr/bin/env bash
# The 1,000,000-document release of the first-visit benchmark (BENCHMARKS.md, "First visit";
# scripts/bench/first-visit.sh runs this where SEARCHBAR_FIRST_VISIT_MILLION=1): the lexical
# benchmark's synthetic corpus (crates/searchbar-lexical/examples/lexical_bench.rs: 20 to 80
# words a document from a Zipfian vocabulary of 200,000 made-up words, titles of 5, two-word
# queries), made into a hybrid release by `searchbar run` as any project is. Embedding a million
# documents on 2 cores takes about 12 hours, so the embedding cache is filled with synthetic
# vectors first (unit vectors around 2,500 random centres; the cache format is
# pipeline/src/stages/cache.rs's): `run` then embeds nothing and trains, evaluates, exports and
# deploys as usual. The queries are embedded by the real model, so the dense half ranks noise;
# this release measures bytes and time, not quality. Prints the project's directory.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/bench/scifact-documents.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/searchbar/target}"
docs="${MILLION_DOCS:-1000000}"
work="$CARGO_TARGET_DIR/first-visit-million"
log() { printf '\033[1m[million]\033[0m %s\n' "$*" >&2; }
# A release build: training a million vectors in a debug one would take hours.
cargo build -q --release --locked -p searchbar
sb="$CARGO_TARGET_DIR/release/searchbar"
mkdir -p "$work"
if [ "$(cat "$work/documents" 2>/dev/null)" != "$docs" ]; then
  log "writing $docs synthetic documents"
  cargo run -q --release --locked -p searchbar-lexical --example lexical_bench -- \
    synthetic "$docs" --corpus "$work"
  echo "$docs" > "$work/documents"
fi
config() {
  { scifact_documents_toml | sed "s|^path = \"corpus.jsonl\"|path = \"$1\"|"; cat <<TOML
[index]
kind = "ivfpq"
nlist = 4096
m = 16
rerank_store = "external"
lists_file = true
train_sample = 262144
TOML
    # A hybrid query ranks 100 dense candidates and re-scores the best 15 with their rows
    # (15 range requests, not 100): on SciFact with an IVF-PQ index of PQ16 codes and
    # external rows, the training judgments cannot tell hybrid rankings that re-score 10 to
    # 100 apart (scripts/bench/rerank.sh). Shards of 4 documents: a query shows 10 results
    # from 10 shards at this size, and fetches half as many other documents with them
    # (BENCHMARKS.md, "First visit").
    first_visit_toml queries.jsonl qrels/test.tsv "${SEARCHBAR_WEB_DIST:-$PWD/dist}" |
      sed 's/^mode = "hybrid"$/&\nnprobe = 8\nrerank = 15/; s/^dist = .*/&\ndocs_per_shard = 4/'
  } > "$work/searchbar.toml"
}
# The cache is named by the model's fingerprint: embedding one document makes it.
cache="$(ls -t "$work"/.searchbar/embeddings/*.bin 2>/dev/null | head -1 || true)"
if [ -z "$cache" ]; then
  head -1 "$work/corpus.jsonl" > "$work/one.jsonl"
  config one.jsonl
  (cd "$work" && "$sb" run --until embed >/dev/null)
  cache="$(ls -t "$work"/.searchbar/embeddings/*.bin | head -1)"
fi
config corpus.jsonl
(cd "$work" && "$sb" run --until ingest | grep -E "^ingest: " >&2)
py=python3
if ! python3 -c 'import numpy' 2>/dev/null; then
  venv="$HOME/.cache/searchbar/venv-million"
  [ -x "$venv/bin/python" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q "numpy<3"; }
  py="$venv/bin/python"
fi
log "synthetic vectors into $cache"
"$py" - "$work/.searchbar/snapshot" "$cache" <<'PY'
import json, os, sys
import numpy as np
snapshot, cache = sys.argv[1], sys.argv[2]
meta = json.load(open(f"{snapshot}/snapshot.json"))
hashes = [json.loads(line)["content_hash"] for line in open(f"{snapshot}/{meta['documents']}")]
dim, n = 384, len(hashes)
have = np.fromfile(cache, dtype=np.uint8, count=20)
assert bytes(have[:8]) == b"SBEMB001" and int.from_bytes(bytes(have[8:12]), "little") == dim
if int.from_bytes(bytes(have[12:20]), "little") == n and os.path.getsize(cache) == 20 + n * (32 + 4 * dim):
    sys.exit(0)  # written by an earlier run, for these documents
rng = np.random.default_rng(42)
centres = rng.standard_normal((2500, dim)).astype(np.float32)
entry = np.dtype([("hash", np.uint8, 32), ("vector", "<f4", dim)])
out = np.empty(n, dtype=entry)
out["hash"] = np.frombuffer(bytes.fromhex("".join(hashes)), dtype=np.uint8).reshape(n, 32)
for start in range(0, n, 100_000):
    end = min(n, start + 100_000)
    v = centres[rng.integers(0, len(centres), end - start)]
    v = v + 0.6 * rng.standard_normal(v.shape).astype(np.float32)
    out["vector"][start:end] = v / np.linalg.norm(v, axis=1, keepdims=True)
with open(cache + ".tmp", "wb") as f:
    f.write(b"SBEMB001" + dim.to_bytes(4, "little") + n.to_bytes(8, "little"))
    out.tofile(f)
os.replace(cache + ".tmp", cache)
PY
(cd "$work" && "$sb" run --env stage | grep -E "^(embed|train|evaluate|export|deploy): " >&2)
echo "$work"
