#!/usr/bin/env bash
# One comment width across the workspace: comment lines in Rust sources end by column 100, the
# width rustfmt gives code (rustfmt's own comment wrapping is a nightly-only option). Prints each
# line past it and fails if there is one.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 - "${1:-100}" <<'PY'
import re, subprocess, sys
width = int(sys.argv[1])
files = subprocess.run(["git", "ls-files", "-z", "*.rs"], check=True, capture_output=True, text=True).stdout.split("\0")
over = 0
for path in filter(None, files):
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if re.match(r"\s*//", line) and len(line) > width:
                over += 1
                print(f"{path}:{number}: comment line of {len(line)} characters (at most {width})")
sys.exit(1 if over else 0)
PY
