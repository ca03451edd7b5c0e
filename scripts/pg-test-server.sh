#!/usr/bin/env bash
# Brings up the local Debian PostgreSQL cluster for the searchbar-store tests, idempotently, and
# prints the URL to export as SEARCHBAR_TEST_PG_URL. Run as root (or with sudo available).
set -euo pipefail

VERSION=${PG_VERSION:-15}
CLUSTER=${PG_CLUSTER:-main}
PORT=${PG_PORT:-5432}
ROLE=searchbar
PASSWORD=searchbar
DB=searchbar_test

SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
log() { printf '\033[1m[pg-test-server]\033[0m %s\n' "$*" >&2; }

if ! pg_lsclusters -h 2>/dev/null | awk '{print $1" "$2}' | grep -qx "$VERSION $CLUSTER"; then
  log "creating cluster $VERSION/$CLUSTER on port $PORT"
  $SUDO pg_createcluster "$VERSION" "$CLUSTER" --port "$PORT" >&2
fi
if ! pg_lsclusters -h | awk -v v="$VERSION" -v c="$CLUSTER" '$1==v && $2==c {print $4}' | grep -q online; then
  log "starting cluster $VERSION/$CLUSTER"
  # Its notes ("Removed stale pid file.") go to stderr: stdout is the URL a caller captures.
  $SUDO pg_ctlcluster "$VERSION" "$CLUSTER" start >&2
fi

psql_admin() { $SUDO runuser -u postgres -- psql -p "$PORT" -v ON_ERROR_STOP=1 -qAt "$@"; }

# Wait for the server to accept connections (start returns before recovery finishes on slow disks).
for _ in $(seq 1 30); do psql_admin -c 'SELECT 1' >/dev/null 2>&1 && break; sleep 1; done

if [ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = '$ROLE'")" != 1 ]; then
  log "creating role $ROLE"
  psql_admin -c "CREATE ROLE $ROLE LOGIN PASSWORD '$PASSWORD'" >&2
fi
if [ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != 1 ]; then
  log "creating database $DB"
  psql_admin -c "CREATE DATABASE $DB OWNER $ROLE" >&2
fi

echo "postgresql://$ROLE:$PASSWORD@127.0.0.1:$PORT/$DB"
