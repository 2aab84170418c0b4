#!/usr/bin/env bash
# Installs the Debian packages bale's tests and demo use, and registers QEMU with binfmt_misc.
# Idempotent: only what is missing is installed. Needs root; without it, says what is missing.
set -euo pipefail

PACKAGES=(qemu-user-static binfmt-support skopeo umoci containerd runc docker-registry
          proot busybox-static pigz iproute2 apache2-utils mmdebstrap arch-test buildah
          stargz-snapshotter  # ctr-remote: reads eStargz layers as stargz-snapshotter does
          chromium  # chromium: headless, renders the build report in tests
          openssh-server openssh-client)  # sshd nodes in tests, ssh to reach nodes

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ "$(id -u)" != 0 ]; then
  [ ${#missing[@]} -eq 0 ] || echo "setup-host: not root; missing packages: ${missing[*]}" >&2
  exit 0
fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup-host: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# binfmt_misc: mount it when absent, and enable the QEMU handlers (F flag, as Debian ships them).
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null || true
fi
if [ -e /proc/sys/fs/binfmt_misc/register ] && [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
  update-binfmts --enable >/dev/null 2>&1 || true
fi
