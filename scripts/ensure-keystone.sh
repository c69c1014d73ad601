#!/usr/bin/env bash
# Make sure a real Keystone (OpenStack Identity, from PyPI) answers on a loopback port, for the tests
# of `identity = "keystone"`: install it in its own virtualenv, configure it (one process, its
# database on the tests' PostgreSQL server, fernet tokens), bootstrap an admin, start it, and print
# its URL (http://127.0.0.1:PORT/v3).
# Idempotent: a running Keystone is reused. `scripts/ensure-keystone.sh stop` stops it.
#
# The admin is `admin` / $KEYSTONE_ADMIN_PASSWORD in project `admin`, domain Default, region
# RegionOne. Tokens last $KEYSTONE_TOKEN_EXPIRATION seconds (short by default, so that the tests can
# see one expire).
#
# A test that needs a Keystone of its own runs this with KEYSTONE_STATE_DIR set to its own directory
# (and `stop` with the same variable at the end, which also drops its database).
# KEYSTONE_NOTIFICATIONS_URL (a transport URL) turns
# Keystone's notifications on, sent there through oslo.messaging (driver messagingv2), in the format
# of KEYSTONE_NOTIFICATION_FORMAT (cadf, Keystone's default, or basic).
set -euo pipefail
CACHE=${SPYGLASS_CACHE:-$HOME/.cache/spyglass}
VENV=${KEYSTONE_VENV:-$CACHE/keystone-venv}
STATE=${KEYSTONE_STATE_DIR:-$CACHE/keystone}
RELEASE=${KEYSTONE_RELEASE:-30.0.0}
ADMIN_PASSWORD=${KEYSTONE_ADMIN_PASSWORD:-spyglass-keystone-admin}
EXPIRATION=${KEYSTONE_TOKEN_EXPIRATION:-60}
NOTIFICATIONS_URL=${KEYSTONE_NOTIFICATIONS_URL:-}
NOTIFICATION_FORMAT=${KEYSTONE_NOTIFICATION_FORMAT:-cadf}
PID_FILE=$STATE/keystone.pid
PORT_FILE=$STATE/port
LOG=$STATE/keystone.log

say() { echo "ensure-keystone: $*" >&2; }

# One run at a time (parallel test workers all ask for the same Keystone).
mkdir -p "$CACHE" "$STATE"
exec 9>"$CACHE/keystone.lock"
flock 9

running() {
  [ -f "$PID_FILE" ] && [ -f "$PORT_FILE" ] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null
}

answers() {
  "$VENV/bin/python" - "$1" <<'EOF' 2>/dev/null
import sys, urllib.request
with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/v3", timeout=2) as r:
    sys.exit(0 if r.status == 200 else 1)
EOF
}

stop() {
  if running; then
    kill "$(cat "$PID_FILE")"
    for _ in $(seq 1 50); do kill -0 "$(cat "$PID_FILE")" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$PID_FILE"
}

# Keystone's database lives in the PostgreSQL server the tests use (scripts/ensure-postgres.sh), one
# database per state directory: on SQLite, Keystone's read-then-update transactions (a login
# updating last_active_at, a project disabled) failed with "database is locked" under the suite's
# parallel load.
PG_URL=$("$(dirname "$0")/ensure-postgres.sh")
PG_SERVER=${PG_URL#*://}
PG_SERVER=${PG_SERVER%/*}
DB_NAME="keystone_$(echo "$STATE" | cksum | cut -d' ' -f1)"

# Drops this state directory's database, and with "CREATE" creates it afresh.
database() {
  "$VENV/bin/python" - "$PG_SERVER" "$DB_NAME" "${1:-}" <<'EOF' >&2
import sys
import psycopg2
conn = psycopg2.connect(f"postgresql://{sys.argv[1]}/postgres")
conn.autocommit = True
with conn.cursor() as cur:
    cur.execute(f'DROP DATABASE IF EXISTS "{sys.argv[2]}" WITH (FORCE)')
    if sys.argv[3] == "CREATE":
        cur.execute(f'CREATE DATABASE "{sys.argv[2]}"')
EOF
}

if [ "${1:-}" = "stop" ]; then
  stop
  # A Keystone of a test's own leaves nothing behind; the shared one keeps its data for the next run.
  if [ "$STATE" != "$CACHE/keystone" ] && [ -x "$VENV/bin/python" ]; then
    database
    rm -f "$STATE/initialized"
  fi
  exit 0
fi

# The configuration is written on every run; a changed one starts from a fresh database, so that
# every setting (the password hash cost above all) applies to the bootstrapped admin too.
# Test-deployment choices: bcrypt at its lowest cost (4 rounds: Keystone's default of 12 takes
# about 0.3-0.8 s of CPU per password login on this machine kind, and the tests log in hundreds of
# times), and Keystone's own cache in process memory (one Keystone process, so nothing goes stale
# between processes).
CONF=$(cat <<EOF
[DEFAULT]
log_file = $LOG
notification_format = $NOTIFICATION_FORMAT
[database]
connection = postgresql+psycopg2://$PG_SERVER/$DB_NAME
[identity]
password_hash_rounds = 4
[cache]
enabled = true
backend = dogpile.cache.memory
[token]
provider = fernet
expiration = $EXPIRATION
[fernet_tokens]
key_repository = $STATE/fernet-keys
[fernet_receipts]
key_repository = $STATE/fernet-keys
[credential]
key_repository = $STATE/credential-keys
EOF
)
if [ -n "$NOTIFICATIONS_URL" ]; then
  # A bounded retry: with the broker down, a change in Keystone waits at most a few seconds.
  CONF="$CONF
[oslo_messaging_notifications]
driver = messagingv2
transport_url = $NOTIFICATIONS_URL
retry = 3"
fi
# A running Keystone is reused when it runs this configuration.
if running && answers "$(cat "$PORT_FILE")" && [ "$(cat "$STATE/initialized" 2>/dev/null)" = "$(echo "$CONF" | cksum)" ]; then
  echo "http://127.0.0.1:$(cat "$PORT_FILE")/v3"
  exit 0
fi

started=$(date +%s)
if [ ! -x "$VENV/bin/keystone-manage" ] || [ "$(cat "$VENV/.release" 2>/dev/null)" != "$RELEASE" ] ||
  ! "$VENV/bin/python" -c "import psycopg2" 2>/dev/null; then
  say "installing Keystone $RELEASE in $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip >&2
  "$VENV/bin/pip" install -q "keystone==$RELEASE" waitress psycopg2-binary >&2
  echo "$RELEASE" >"$VENV/.release"
  say "installed in $(($(date +%s) - started)) s"
fi

if [ "$(cat "$STATE/initialized" 2>/dev/null)" != "$(echo "$CONF" | cksum)" ]; then
  stop
  rm -rf "$STATE/keystone.db" "$STATE/fernet-keys" "$STATE/credential-keys"
  database CREATE
  echo "$CONF" >"$STATE/keystone.conf"
  manage() { "$VENV/bin/keystone-manage" --config-file "$STATE/keystone.conf" "$@" >&2; }
  manage db_sync
  manage fernet_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)"
  manage credential_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)"
  rm -f "$STATE/bootstrapped"
  echo "$CONF" | cksum >"$STATE/initialized"
fi

stop
free_port() {
  "$VENV/bin/python" - "$@" <<'EOF'
import socket, sys
for port in [*sys.argv[1:], "0"]:
    try:
        with socket.socket() as s:
            s.bind(("127.0.0.1", int(port)))
            print(s.getsockname()[1])
            break
    except OSError:
        pass
EOF
}
# The last port again when it is free, so that the endpoints bootstrap wrote stay right.
PORT=$(free_port $(cat "$PORT_FILE" 2>/dev/null))
echo "$PORT" >"$PORT_FILE"
URL="http://127.0.0.1:$PORT/v3"

if [ "$(cat "$STATE/bootstrapped" 2>/dev/null)" != "$URL" ]; then
  # The admin, its project, the roles and region, and Keystone's own endpoints (at this port).
  "$VENV/bin/keystone-manage" --config-file "$STATE/keystone.conf" bootstrap \
    --bootstrap-password "$ADMIN_PASSWORD" --bootstrap-region-id RegionOne \
    --bootstrap-admin-url "$URL" --bootstrap-internal-url "$URL" --bootstrap-public-url "$URL" >&2
  echo "$URL" >"$STATE/bootstrapped"
fi

# Keystone's configuration reads the command line, so the server is started from Python with none.
OS_KEYSTONE_CONFIG_FILES="$STATE/keystone.conf" setsid "$VENV/bin/python" -c '
import sys
port = int(sys.argv[1])
sys.argv = sys.argv[:1]
import waitress
from keystone.server.wsgi import initialize_public_application
waitress.serve(initialize_public_application(), host="127.0.0.1", port=port, threads=8)
' "$PORT" >>"$LOG" 2>&1 </dev/null 9>&- &
echo $! >"$PID_FILE"
for _ in $(seq 1 120); do
  answers "$PORT" && break
  kill -0 "$(cat "$PID_FILE")" 2>/dev/null || break
  sleep 0.25
done
if ! answers "$PORT"; then
  say "Keystone did not start; the end of $LOG:"
  tail -n 30 "$LOG" >&2
  exit 1
fi
say "ready in $(($(date +%s) - started)) s"
echo "$URL"
