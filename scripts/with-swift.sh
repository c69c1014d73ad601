#!/usr/bin/env bash
# with-swift.sh COMMAND...: run COMMAND with the tests' one-node Swift up (scripts/swift-saio.sh),
# then stop Swift again if this script started it. Parallel test workers (pytest-xdist) then share
# one Swift that none of them stops while another still uses it.
set -euo pipefail
DIR=${SPYGLASS_SWIFT_SAIO_DIR:-$HOME/.cache/spyglass/swift-saio}
SCRIPT=$(dirname "$0")/swift-saio.sh
exports=$(bash "$SCRIPT" start "$DIR")
started=0
[[ $exports == *"SWIFT_SAIO_STARTED=1"* ]] && started=1
status=0
"$@" || status=$?
if [ "$started" = 1 ]; then
  bash "$SCRIPT" stop "$DIR" >/dev/null
fi
exit "$status"
