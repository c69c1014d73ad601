#!/usr/bin/env bash
# Make sure a RabbitMQ broker answers on 127.0.0.1:5672 (guest/guest, loopback only) for the message
# bus tests: use the running one, start the installed server, or install Debian's rabbitmq-server
# and start it. Prints the transport URL to use.
set -euo pipefail
HOST=${RABBITMQ_HOST_FOR_TESTS:-127.0.0.1}
PORT=${RABBITMQ_PORT_FOR_TESTS:-5672}
URL="rabbit://guest:guest@${HOST}:${PORT}/"

ready() {
  (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null || return 1
  # The port opens before the broker accepts work: ask the node itself when rabbitmqctl is here.
  if command -v rabbitmqctl >/dev/null 2>&1; then
    rabbitmqctl -q status >/dev/null 2>&1
  fi
}

SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
if ! ready; then
  if ! command -v rabbitmq-server >/dev/null 2>&1; then
    echo "ensure-rabbitmq: installing RabbitMQ from Debian's packages" >&2
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq >&2
    $SUDO apt-get install -y -qq rabbitmq-server >&2
  fi
  if ! (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null; then
    echo "ensure-rabbitmq: starting rabbitmq-server" >&2
    # Detached, as the rabbitmq user where the package made one (no systemd in containers).
    if id rabbitmq >/dev/null 2>&1; then
      $SUDO -u rabbitmq -H sh -c 'RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 rabbitmq-server -detached' >&2 \
        || $SUDO env RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 rabbitmq-server -detached >&2
    else
      $SUDO env RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 rabbitmq-server -detached >&2
    fi
  fi
  for _ in $(seq 1 120); do ready && break; sleep 0.5; done
fi
ready || { echo "ensure-rabbitmq: RabbitMQ is not reachable on $HOST:$PORT" >&2; exit 1; }
echo "$URL"
