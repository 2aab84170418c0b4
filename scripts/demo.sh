#!/usr/bin/env bash
# The main job on a fresh machine: a two-platform image in the store, shown as a tree.
set -euo pipefail
cd "$(dirname "$0")/.."
BALE=${BALE:-.venv/bin/bale}
export BALE_ROOT=${BALE_ROOT:-$PWD/.cache/demo-root}
fixtures=${BALE_FIXTURES:-$PWD/.cache/busybox}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A busybox root filesystem per platform, from Debian's busybox-static packages.
for pair in linux/amd64:amd64 linux/arm64:arm64; do
  platform=${pair%%:*}; arch=${pair##*:}
  mkdir -p "$work/$arch/bin"
  cp "$fixtures/$arch/busybox" "$work/$arch/bin/busybox"
  ln -s busybox "$work/$arch/bin/sh"
  tar -C "$work/$arch" -cf "$work/$arch.tar" .
  $BALE import --platform "$platform" "$work/$arch.tar" demo/busybox:1 >/dev/null
done
$BALE images --tree demo/busybox:1
