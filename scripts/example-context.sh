#!/usr/bin/env bash
# Puts the static busybox fixtures into an example's context as bin/busybox-<TARGETARCH+VARIANT>.
set -euo pipefail
dir=$1
fixtures=${BALE_FIXTURES:-$(cd "$(dirname "$0")/.." && pwd)/.cache/busybox}
mkdir -p "$dir/bin"
for pair in amd64:amd64 arm64:arm64 armhf:armv7 i386:386 ppc64el:ppc64le s390x:s390x; do
  deb=${pair%%:*}; name=${pair##*:}
  if [ -x "$fixtures/$deb/busybox" ]; then
    cp "$fixtures/$deb/busybox" "$dir/bin/busybox-$name"
  fi
done
