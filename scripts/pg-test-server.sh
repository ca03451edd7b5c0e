#!/usr/bin/env bash
# Brings up the local Debian PostgreSQL cluster for the searchbar-store tests, idempotently, and
# prints the URL to export as SEARCHBAR_TEST_PG_URL. Run as root (or with sudo available).
# The server talks TLS with a certificate for localhost signed by a test CA made here; with
# `--ca` the script prints that CA's path instead (export it as SEARCHBAR_TEST_PG_CA).
set -euo pipefail
PRINT=url; [ "${1:-}" = --ca ] && PRINT=ca

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

# A test CA and a server certificate for localhost / 127.0.0.1, made once.
TLS_DIR=${PG_TLS_DIR:-/etc/postgresql/$VERSION/$CLUSTER/searchbar-tls}
if [ ! -f "$TLS_DIR/server.crt" ]; then
  log "making a test CA and a server certificate for localhost in $TLS_DIR"
  $SUDO mkdir -p "$TLS_DIR"
  $SUDO openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=searchbar test CA" \
    -keyout "$TLS_DIR/ca.key" -out "$TLS_DIR/ca.crt" 2>/dev/null
  $SUDO openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
    -keyout "$TLS_DIR/server.key" -out "$TLS_DIR/server.csr" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' | $SUDO tee "$TLS_DIR/ext.cnf" >/dev/null
  $SUDO openssl x509 -req -in "$TLS_DIR/server.csr" -CA "$TLS_DIR/ca.crt" -CAkey "$TLS_DIR/ca.key" \
    -CAcreateserial -days 3650 -extfile "$TLS_DIR/ext.cnf" -out "$TLS_DIR/server.crt" 2>/dev/null
  $SUDO chown postgres:postgres "$TLS_DIR/server.key" "$TLS_DIR/server.crt"
  $SUDO chmod 600 "$TLS_DIR/server.key"
  $SUDO chmod 644 "$TLS_DIR/ca.crt"
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

if [ "$(psql_admin -c 'SHOW ssl_cert_file')" != "$TLS_DIR/server.crt" ]; then
  log "serving TLS with the test certificate"
  psql_admin -c "ALTER SYSTEM SET ssl = on" >&2
  psql_admin -c "ALTER SYSTEM SET ssl_cert_file = '$TLS_DIR/server.crt'" >&2
  psql_admin -c "ALTER SYSTEM SET ssl_key_file = '$TLS_DIR/server.key'" >&2
  psql_admin -c "SELECT pg_reload_conf()" >/dev/null
  sleep 1
fi

if [ "$PRINT" = ca ]; then
  echo "$TLS_DIR/ca.crt"
else
  echo "postgresql://$ROLE:$PASSWORD@127.0.0.1:$PORT/$DB"
fi
