#!/bin/sh
# "Compiles" the app for every architecture a runtime exists for, in one native step.
set -eu
targets=$1
out=$2
for runtime in "$targets"/busybox-*; do
  arch=${runtime##*/busybox-}
  mkdir -p "$out/$arch/bin"
  cp "$runtime" "$out/$arch/bin/busybox"
  sed "s/@ARCH@/$arch/" /src/app.sh.in > "$out/$arch/bin/app"
  chmod 755 "$out/$arch/bin/app"
  ln -s busybox "$out/$arch/bin/sh"
  echo "built $arch"
done
