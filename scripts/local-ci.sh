#!/usr/bin/env bash
# The Jenkinsfile's stage sequence on this machine, with the same gates, for one branch kind:
#   local-ci.sh pr     lint-free path: status, drift, ingest, embed, train, evaluate against
#                      prod (no deploy)
#   local-ci.sh stage  ... then export and deploy to stage
#   local-ci.sh prod   promote stage's live release to prod (no rebuild)
# Expects `searchbar` on PATH and runs in the project directory (where searchbar.toml is).
set -euo pipefail
kind="${1:-stage}"
step() { printf '== %s\n' "$*" >&2; }
case "$kind" in
  pr|stage)
    step "Detect changes"
    mkdir -p reports
    searchbar status --env stage | tee reports/status.txt
    searchbar drift --against prod --json > reports/drift.json || test $? -eq 4
    step "Embed"
    searchbar ingest
    searchbar embed
    step "Train"
    searchbar train
    step "Evaluate"
    # A pull request is judged against prod, stage against stage (as in the Jenkinsfile).
    searchbar evaluate --env "$([ "$kind" = pr ] && echo prod || echo stage)"
    if [ "$kind" = stage ]; then
      step "Export"
      searchbar export
      step "Deploy to stage"
      searchbar deploy --env stage
      searchbar releases --env stage
    fi
    ;;
  prod)
    step "Promote to prod"
    searchbar promote --from stage --to prod
    searchbar releases --env prod
    ;;
  *) echo "usage: local-ci.sh pr|stage|prod" >&2; exit 2 ;;
esac
