#!/usr/bin/env bash
# Make sure a PostgreSQL server answers on 127.0.0.1:5432 for the test suite: use the running one,
# start an installed cluster, or install Debian's package and start it. Prints the URL to use.
set -euo pipefail
HOST=${PGHOST_FOR_TESTS:-127.0.0.1}
PORT=${PGPORT_FOR_TESTS:-5432}
URL="postgresql+psycopg://postgres@${HOST}:${PORT}/postgres"

ready() {
  if command -v pg_isready >/dev/null 2>&1; then
    pg_isready -q -h "$HOST" -p "$PORT"
  else
    (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null
  fi
}

start_cluster() {
  local version
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
  [ -n "$version" ] || return 1
  pg_ctlcluster --skip-systemctl-redirect "$version" main start >&2 || true
}

if ! ready; then
  if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
    echo "ensure-postgres: installing PostgreSQL from Debian's packages" >&2
    export DEBIAN_FRONTEND=noninteractive
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq >&2
    $SUDO apt-get install -y -qq postgresql >&2
    conf=$(ls -d /etc/postgresql/*/main | sort -V | tail -n 1)
    # Tests connect as postgres without a password on loopback only.
    echo "host all postgres 127.0.0.1/32 trust" | $SUDO tee -a "$conf/pg_hba.conf" >/dev/null
  fi
  start_cluster
  for _ in $(seq 1 60); do ready && break; sleep 0.5; done
fi
ready || { echo "ensure-postgres: PostgreSQL is not reachable on $HOST:$PORT" >&2; exit 1; }
echo "$URL"
