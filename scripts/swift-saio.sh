#!/usr/bin/env bash
# A throwaway one-node OpenStack Swift on loopback for the blob store tests and benchmarks:
# proxy, account, container and object servers (one device, one replica), tempauth for the native
# API, s3api for S3, memcached for tempauth's tokens. Everything lives under DIR.
#
#   scripts/swift-saio.sh start DIR    install what is missing, configure, start, wait until it
#                                      answers; print `export` lines (eval them). When DIR's Swift
#                                      already runs, only print them.
#   scripts/swift-saio.sh stop DIR     stop the processes that `start` recorded in DIR/run
#   scripts/swift-saio.sh status DIR   exit 0 when DIR's Swift answers
#
# Environment: SWIFT_SAIO_PORT     proxy port (default: the one used last time if free, else any free)
#              SWIFT_SAIO_VERSION  PyPI swift release installed in DIR/venv (default 2.38.3)
#
# Exported for the tests: ST_AUTH ST_USER ST_KEY (tempauth v1, admin of account AUTH_test),
# ST_LIMITED_USER ST_LIMITED_KEY (same account, no rights on containers it did not get an ACL for),
# S3_ENDPOINT_URL S3_REGION S3_ACCESS_KEY_ID S3_SECRET_ACCESS_KEY, and SWIFT_SAIO_STARTED (1 when
# this call started the servers, 0 when they were already running).
#
# No background daemons (replicators, updaters, expirer) run: they would read /etc/swift rather
# than DIR/etc, and one replica needs no replication. Account-level usage counters therefore stay
# stale (container listings are exact), expired objects are not reaped, and SLO deletes are
# synchronous.
set -euo pipefail

usage() { echo "usage: $0 start|stop|status DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
ACTION=$1
case $ACTION in start | stop | status) ;; *) usage ;; esac
if [ "$ACTION" != start ] && [ ! -d "$2" ]; then  # nothing was ever started there
  [ "$ACTION" = stop ]
  exit
fi
mkdir -p "$2"
DIR=$(cd "$2" && pwd)
VERSION=${SWIFT_SAIO_VERSION:-2.38.3}
VENV=$DIR/venv ETC=$DIR/etc RUN=$DIR/run LOGS=$DIR/log DEVICES=$DIR/srv
SERVERS="account container object proxy"
USER_NAME=test:tester USER_KEY=testing
LIMITED_NAME=test:reader LIMITED_KEY=reading

log() { echo "swift-saio: $*" >&2; }

# --- processes -----------------------------------------------------------------------------------
# A pid file holds "pid start-time"; the start time (clock ticks after boot, /proc/PID/stat field 22)
# tells our process apart from an unrelated one that got the same pid later.
start_time() { sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f20; }

running() {  # running PIDFILE: the recorded process still runs (zombies awaiting reaping do not)
  local pid since state
  [ -f "$1" ] && read -r pid since <"$1" || return 1
  [ -n "$pid" ] && [ "$(start_time "$pid")" = "$since" ] || return 1
  state=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

launch() {  # launch NAME COMMAND...: detach from our session and files, record pid and start time
  local name=$1
  shift
  setsid "$@" </dev/null >"$LOGS/$name.log" 2>&1 9>&- &
  local pid=$!
  local since=""
  for _ in $(seq 50); do since=$(start_time "$pid") && [ -n "$since" ] && break; sleep 0.01; done
  echo "$pid $since" >"$RUN/$name.pid"
}

stop_all() {
  local f pid since waiting=()
  for f in "$RUN"/*.pid; do
    [ -e "$f" ] || continue
    if running "$f"; then
      read -r pid since <"$f"
      kill -TERM "$pid" 2>/dev/null && waiting+=("$f")
    else
      rm -f "$f"
    fi
  done
  for _ in $(seq 100); do
    local left=()
    for f in ${waiting[@]+"${waiting[@]}"}; do running "$f" && left+=("$f"); done
    [ ${#left[@]} -eq 0 ] && break
    waiting=("${left[@]}")
    sleep 0.05
  done
  for f in ${waiting[@]+"${waiting[@]}"}; do
    if running "$f"; then read -r pid since <"$f"; kill -KILL "$pid" 2>/dev/null || true; fi
  done
  for f in "$RUN"/*.pid; do [ -e "$f" ] && rm -f "$f"; done
  return 0
}

# --- ports ---------------------------------------------------------------------------------------
# DIR/etc/ports: "proxy account container object memcached". The rings name the three backend ports,
# so reusing last time's ports when they are free avoids rebuilding the rings.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_ports() {  # free_ports N: N distinct ports nobody listens on right now
  python3 -c '
import socket, sys
held = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in held:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in held))
' "$1"
}

choose_ports() {
  local previous=() proxy backends="" p
  [ -f "$ETC/ports" ] && read -r -a previous <"$ETC/ports"
  [ ${#previous[@]} -eq 5 ] || previous=()
  if [ -n "${SWIFT_SAIO_PORT:-}" ]; then
    proxy=$SWIFT_SAIO_PORT
    port_open "$proxy" && { log "port $proxy is in use"; exit 1; }
  elif [ ${#previous[@]} -eq 5 ] && ! port_open "${previous[0]}"; then
    proxy=${previous[0]}  # the address tests saw last time
  else
    proxy=$(free_ports 1)
  fi
  if [ ${#previous[@]} -eq 5 ]; then
    backends="${previous[*]:1}"
    for p in $backends; do
      if [ "$p" = "$proxy" ] || port_open "$p"; then backends=""; break; fi
    done
  fi
  while [ -z "$backends" ] || [[ " $backends " == *" $proxy "* ]]; do backends=$(free_ports 4); done
  echo "$proxy $backends"
}

# --- installation --------------------------------------------------------------------------------
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

debian_packages() {  # what apt must bring: memcached, and venv support if python3 lacks it
  command -v memcached >/dev/null || echo memcached
  [ "$(cat "$VENV/.swift-saio" 2>/dev/null)" = "$VERSION" ] || python3 -c 'import ensurepip' 2>/dev/null ||
    echo python3-venv
}

install_debian_packages() {
  [ $# -gt 0 ] || return 0
  log "installing $* (Debian packages)"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get install -y -qq --no-install-recommends "$@" >"$DIR/apt.log" 2>&1 ||
    { as_root apt-get update -qq && as_root apt-get install -y -qq --no-install-recommends "$@"; } \
      >>"$DIR/apt.log" 2>&1
}

install_swift() {
  [ "$(cat "$VENV/.swift-saio" 2>/dev/null)" = "$VERSION" ] && return 0
  log "installing swift $VERSION from PyPI into $VENV"
  rm -rf "$VENV"
  { python3 -m venv "$VENV" && "$VENV/bin/pip" install -q --disable-pip-version-check "swift==$VERSION"; } \
    >"$DIR/pip.log" 2>&1 && echo "$VERSION" >"$VENV/.swift-saio"
}

install_all() {
  local packages apt_status=0 pip_status=0
  read -r -a packages <<<"$(debian_packages | tr '\n' ' ')"
  if [[ " ${packages[*]} " == *" python3-venv "* ]]; then
    install_debian_packages "${packages[@]}" || apt_status=$?  # pip needs it: first
    [ $apt_status -ne 0 ] || install_swift || pip_status=$?
  else  # apt and pip do not depend on each other: side by side
    install_debian_packages ${packages[@]+"${packages[@]}"} &
    local apt_job=$!
    install_swift || pip_status=$?
    wait "$apt_job" || apt_status=$?
  fi
  [ $apt_status -eq 0 ] || { log "apt-get failed:"; tail -n 20 "$DIR/apt.log" >&2; exit 1; }
  [ $pip_status -eq 0 ] || { log "swift install failed:"; tail -n 20 "$DIR/pip.log" >&2; exit 1; }
}

# --- configuration -------------------------------------------------------------------------------
write_server_conf() {  # write_server_conf NAME PORT PIPELINE-AND-SECTIONS
  cat >"$ETC/$1-server.conf" <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $2
workers = 0
user = $(id -un)
swift_dir = $ETC
devices = $DEVICES
mount_check = false
log_name = $1
log_level = WARNING
$3
EOF
}

configure() {  # configure PROXY ACCOUNT CONTAINER OBJECT MEMCACHED
  mkdir -p "$ETC" "$DEVICES/d1"
  cat >"$ETC/swift.conf" <<EOF
[swift-hash]
swift_hash_path_prefix = spyglass-saio
swift_hash_path_suffix = spyglass-saio
[storage-policy:0]
name = Policy-0
default = yes
EOF
  write_server_conf account "$2" $'[pipeline:main]\npipeline = account-server\n[app:account-server]\nuse = egg:swift#account'
  write_server_conf container "$3" $'[pipeline:main]\npipeline = container-server\n[app:container-server]\nuse = egg:swift#container'
  write_server_conf object "$4" $'[pipeline:main]\npipeline = object-server\n[app:object-server]\nuse = egg:swift#object'
  local filters=(catch_errors gatekeeper healthcheck proxy_logging memcache listing_formats bulk s3api
    tempauth copy container_quotas account_quotas slo dlo) f sections=""
  for f in "${filters[@]}"; do
    sections+=$'\n'"[filter:$f]"$'\n'"use = egg:swift#$f"
    case $f in
      memcache) sections+=$'\n'"memcache_servers = 127.0.0.1:$5" ;;
      tempauth) sections+=$'\n'"user_test_tester = $USER_KEY .admin"$'\n'"user_test_reader = $LIMITED_KEY" ;;
      # With no object-expirer running, a deferred SLO delete (what s3api asks for) would never happen.
      slo) sections+=$'\n'"allow_async_delete = false" ;;
    esac
  done
  write_server_conf proxy "$1" "[pipeline:main]
pipeline = ${filters[*]} proxy-server
[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true$sections"
}

build_rings() {  # build_rings ACCOUNT CONTAINER OBJECT: one replica, one device, 64 partitions
  [ "$(cat "$ETC/ring-ports" 2>/dev/null)" = "$*" ] && [ -f "$ETC/object.ring.gz" ] && return 0
  log "building rings"
  "$VENV/bin/python" - "$ETC" "$@" <<'EOF'
import sys
from swift.common.ring import RingBuilder

etc, ports = sys.argv[1], sys.argv[2:]
for kind, port in zip(("account", "container", "object"), ports):
    builder = RingBuilder(6, 1, 1)
    builder.add_dev({"id": 0, "region": 1, "zone": 1, "ip": "127.0.0.1", "port": int(port),
                     "device": "d1", "weight": 100})
    builder.rebalance()
    builder.get_ring().save(f"{etc}/{kind}.ring.gz")
EOF
  echo "$*" >"$ETC/ring-ports"
}

# --- health --------------------------------------------------------------------------------------
proxy_port() { cut -d' ' -f1 "$ETC/ports"; }

answers() {  # a token from tempauth, then a container and an object round trip through every server
  local port=$1 headers url token
  headers=$(curl -fsS -m 2 -D - -o /dev/null -H "X-Auth-User: $USER_NAME" -H "X-Auth-Key: $USER_KEY" \
    "http://127.0.0.1:$port/auth/v1.0" 2>/dev/null) || return 1
  url=$(printf '%s' "$headers" | tr -d '\r' | sed -n 's/^[Xx]-[Ss]torage-[Uu]rl: //p')
  token=$(printf '%s' "$headers" | tr -d '\r' | sed -n 's/^[Xx]-[Aa]uth-[Tt]oken: //p')
  [ -n "$url" ] && [ -n "$token" ] || return 1
  curl -fsS -m 2 -o /dev/null -X PUT -H "X-Auth-Token: $token" "$url/swift-saio-probe" 2>/dev/null &&
    curl -fsS -m 2 -o /dev/null -X PUT -H "X-Auth-Token: $token" --data-binary ok \
      "$url/swift-saio-probe/probe" 2>/dev/null
}

all_running() {
  local s
  for s in $SERVERS memcached; do running "$RUN/$s.pid" || return 1; done
}

print_exports() {
  local port
  port=$(proxy_port)
  cat <<EOF
export ST_AUTH=http://127.0.0.1:$port/auth/v1.0 ST_USER=$USER_NAME ST_KEY=$USER_KEY
export ST_LIMITED_USER=$LIMITED_NAME ST_LIMITED_KEY=$LIMITED_KEY
export S3_ENDPOINT_URL=http://127.0.0.1:$port S3_REGION=us-east-1
export S3_ACCESS_KEY_ID=$USER_NAME S3_SECRET_ACCESS_KEY=$USER_KEY
export SWIFT_SAIO_STARTED=$1
EOF
}

# --- actions -------------------------------------------------------------------------------------
start() {
  mkdir -p "$RUN" "$LOGS"
  if all_running && answers "$(proxy_port)"; then
    print_exports 0
    return
  fi
  stop_all
  install_all
  local ports
  ports=$(choose_ports)
  read -r -a port <<<"$ports"  # proxy account container object memcached
  configure "${port[@]}"
  build_rings "${port[1]}" "${port[2]}" "${port[3]}"
  echo "$ports" >"$ETC/ports"
  local memcached_user=()
  [ "$(id -u)" -eq 0 ] && memcached_user=(-u nobody)
  launch memcached memcached -l 127.0.0.1 -p "${port[4]}" -U 0 -m 64 ${memcached_user[@]+"${memcached_user[@]}"}
  local s
  for s in $SERVERS; do launch "$s" "$VENV/bin/python" "$VENV/bin/swift-$s-server" "$ETC/$s-server.conf" -v; done
  local deadline=$((SECONDS + 60))
  until answers "${port[0]}"; do
    for s in $SERVERS memcached; do
      running "$RUN/$s.pid" || { log "$s exited:"; tail -n 20 "$LOGS/$s.log" >&2; stop_all; exit 1; }
    done
    if [ $SECONDS -ge $deadline ]; then
      log "no answer on port ${port[0]} after 60 s; log tails:"
      tail -n 10 "$LOGS"/*.log >&2
      stop_all
      exit 1
    fi
    sleep 0.1
  done
  print_exports 1
}

exec 9>"$DIR/.lock"
flock 9  # one start/stop at a time per DIR
case $ACTION in
  start) start ;;
  stop) stop_all ;;
  status) all_running && answers "$(proxy_port)" ;;
esac
