#!/usr/bin/env bash
# Make sure axe-core (the accessibility checker, from the npm registry) is in the cache for the
# dashboard's browser tests, which inject it into each page. Prints the path of axe.min.js.
set -euo pipefail

dir="${XDG_CACHE_HOME:-$HOME/.cache}/spyglass/axe"
script="$dir/node_modules/axe-core/axe.min.js"
if [ ! -f "$script" ]; then
  command -v npm >/dev/null 2>&1 || { echo "ensure-axe: npm is needed (Debian's nodejs/npm)" >&2; exit 1; }
  mkdir -p "$dir"
  echo "ensure-axe: installing axe-core from the npm registry into $dir" >&2
  (cd "$dir" && npm install --silent --no-audit --no-fund axe-core@4 >&2)
fi
echo "$script"
