#!/usr/bin/env bash
# Make sure Debian's chromium is installed for the dashboard's browser tests (Playwright drives it;
# no browser is downloaded by Playwright). Installs it when missing; prints its path.
set -euo pipefail

if ! command -v chromium >/dev/null 2>&1; then
  echo "ensure-chromium: installing chromium from Debian's packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  if ! $SUDO apt-get install -y -qq chromium >&2; then
    $SUDO apt-get update -qq >&2
    $SUDO apt-get install -y -qq chromium >&2
  fi
fi
command -v chromium >/dev/null 2>&1 || { echo "ensure-chromium: chromium is not installed" >&2; exit 1; }
command -v chromium
