#!/usr/bin/env bash
# A Debian bookworm base with python3 per platform, made with mmdebstrap and imported into
# the store as bale-examples/debian-python:bookworm. The rootfs tarballs are cached.
set -euo pipefail
cd "$(dirname "$0")/.."
BALE=${BALE:-.venv/bin/bale}
cache=${CACHE:-$PWD/.cache}/rootfs
mkdir -p "$cache"
for arch in ${PYTHON_BASE_ARCHES:-amd64 arm64}; do
  tarball="$cache/bookworm-python-$arch.tar"
  if [ ! -s "$tarball" ]; then
    # mmdebstrap picks the output format from the name: keep the .tar suffix.
    partial="$cache/partial-bookworm-python-$arch.tar"
    mmdebstrap --quiet --variant=minbase --include=python3-minimal,python3 \
      --architectures="$arch" bookworm "$partial"
    mv "$partial" "$tarball"
  fi
  $BALE import --platform "linux/$arch" "$tarball" bale-examples/debian-python:bookworm >/dev/null
done
