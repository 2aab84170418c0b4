#!/usr/bin/env bash
# Downloads busybox-static for several architectures into $1 (default .cache/debs) and unpacks
# each into $1/../busybox/<debian-arch>/busybox. Foreign architectures are added only for the
# download and removed again: some indexes break `apt-get update` on this release.
set -uo pipefail
dest=${1:-.cache/debs}
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)
out="$dest/../busybox"
mkdir -p "$out"
native=$(dpkg --print-architecture)
want=(${BALE_FIXTURE_ARCHES:-amd64 arm64 armhf s390x ppc64el i386})

fetch() {
  local arch=$1
  [ -x "$out/$arch/busybox" ] && return 0
  if ! ls "$dest"/busybox-static_*_"$arch".deb >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || { echo "fetch-fixtures: not root, cannot fetch $arch" >&2; return 1; }
    local added=0
    if [ "$arch" != "$native" ] && ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
      dpkg --add-architecture "$arch" && added=1
      timeout 300 apt-get update -qq >/dev/null 2>&1 || true
    fi
    (cd "$dest" && chown _apt "$dest" 2>/dev/null; timeout 120 apt-get download -qq "busybox-static:$arch" >/dev/null 2>&1) \
      || echo "fetch-fixtures: busybox-static:$arch could not be downloaded" >&2
    if [ $added = 1 ]; then
      dpkg --remove-architecture "$arch" 2>/dev/null || true
    fi
  fi
  local deb
  deb=$(ls "$dest"/busybox-static_*_"$arch".deb 2>/dev/null | head -n1)
  [ -n "$deb" ] || return 1
  local tmp
  tmp=$(mktemp -d)
  dpkg-deb -x "$deb" "$tmp"
  mkdir -p "$out/$arch"
  cp "$tmp/bin/busybox" "$out/$arch/busybox"
  rm -rf "$tmp"
}

for a in "${want[@]}"; do fetch "$a" || true; done
ls "$out"
