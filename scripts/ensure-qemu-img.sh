#!/usr/bin/env bash
# Make sure qemu-img (Debian's qemu-utils) is installed for the disk format inspection tests, and
# xorriso for their ISO images. Installs what is missing; does nothing when both are present.
# Prints the path of qemu-img.
set -euo pipefail

missing=()
command -v qemu-img >/dev/null 2>&1 || missing+=(qemu-utils)
command -v xorriso >/dev/null 2>&1 || missing+=(xorriso)

if [ "${#missing[@]}" -gt 0 ]; then
  echo "ensure-qemu-img: installing ${missing[*]} from Debian's packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  if ! $SUDO apt-get install -y -qq "${missing[@]}" >&2; then
    $SUDO apt-get update -qq >&2
    $SUDO apt-get install -y -qq "${missing[@]}" >&2
  fi
fi
command -v qemu-img >/dev/null 2>&1 || { echo "ensure-qemu-img: qemu-img is not installed" >&2; exit 1; }
command -v qemu-img
