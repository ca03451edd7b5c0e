#!/usr/bin/env bash
# Ingest benchmark: rows/s of `searchbar_store::load` on short CSV and JSONL rows, against Python's
# own csv and json modules reading the same files in the same run (the peer: a parse with no
# validation, no documents built), and the peak memory of a file with one 1 GiB record.
# Prints the table recorded in BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/searchbar/target}"
cargo build -q --release -p searchbar-store --example ingest_bench
bench="$CARGO_TARGET_DIR/release/examples/ingest_bench"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
ROWS=${BENCH_ROWS:-400000}
peer() {
  python3 - "$1" "$2" <<'PY'
import csv, json, sys, time
kind, path = sys.argv[1], sys.argv[2]
start = time.perf_counter()
with open(path, newline="", encoding="utf-8") as f:
    if kind == "csv":
        n = sum(1 for _ in csv.reader(f)) - 1
    else:
        n = sum(1 for line in f if json.loads(line))
s = time.perf_counter() - start
print(f"python {kind} rows {n}: {s:.3f} s, {n / s:.0f} rows/s")
PY
}
echo "| case | ours | Python (csv / json module) |"
echo "|---|---|---|"
for kind in csv jsonl; do
  ours="$("$bench" rows "$kind" "$ROWS" "$dir")"
  theirs="$(peer "$kind" "$dir/rows.$kind")"
  echo "| $ROWS short $kind rows | $(sed -E 's/.*: ([0-9.]+) s, ([0-9]+) rows\/s.*/\2 rows\/s (\1 s)/' <<<"$ours") | $(sed -E 's/.*: ([0-9.]+) s, ([0-9]+) rows\/s.*/\2 rows\/s (\1 s)/' <<<"$theirs") |"
done
"$bench" long-line "${BENCH_LONG_MIB:-1024}" "$dir"
