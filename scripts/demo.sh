#!/usr/bin/env bash
# The main job on a fresh machine: a real two-platform build of examples/hello into the store,
# shown as a tree, then each platform's image run from its root filesystem.
set -euo pipefail
cd "$(dirname "$0")/.."
BALE=${BALE:-.venv/bin/bale}
export BALE_ROOT=${BALE_ROOT:-$PWD/.cache/demo-root}

./scripts/example-context.sh examples/hello
$BALE build --platform linux/amd64,linux/arm64 -t demo/hello:1 --progress plain examples/hello
echo
$BALE images --tree demo/hello:1
echo
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
$BALE build --platform linux/amd64,linux/arm64 -o "type=local,dest=$out" --progress quiet \
  examples/hello
[ "$(id -u)" = 0 ] || { echo "(run as root to start each platform's filesystem)"; exit 0; }
for platform in linux_amd64 linux_arm64; do
  printf '%s: ' "$platform"
  chroot "$out/$platform" /bin/sh /usr/local/bin/hello
done
