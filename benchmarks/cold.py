#!/usr/bin/env python3
"""Cold builds against buildah and against the physical floor, in one run.

Scenarios (each tool on fresh stores; bases imported beforehand, as a runner pulls them):
1. `FROM scratch` + `COPY . /data` of a ~300 MB / 20,000-file context, for one platform and
   for two (the layer is the same for both), then a cached two-platform rebuild. Floor:
   `tar -c | pigz` of the same tree, and `sha256sum` of its files.
2. A Debian base (the cached mmdebstrap rootfs, imported) with a `--platform=$BUILDPLATFORM`
   stage doing ~5 s of native CPU work, then per-target packaging, for linux/amd64 and
   linux/arm64. Floor: the heavy step alone, run natively.
3. A cached rebuild against `python -c pass`.
4. Unpacking the 216 MB Debian rootfs: bale's layer apply against `tar -x`, wall and CPU.

Usage: sudo .venv/bin/python benchmarks/cold.py   (BALE_BENCH_RUNS=N, default 1;
BALE_BENCH_MB=300 and BALE_BENCH_FILES=20000 size the context).
Prints figures and ratios; the targets it prints are what docs/performance.md states.
"""

from __future__ import annotations

import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RUNS = int(os.environ.get("BALE_BENCH_RUNS", "1"))
MEGABYTES = int(os.environ.get("BALE_BENCH_MB", "300"))
FILES = int(os.environ.get("BALE_BENCH_FILES", "20000"))
TWO = "linux/amd64,linux/arm64"
ROOTFS = Path(os.environ.get("CACHE", "/var/cache/bale-dev")) / "rootfs"
HEAVY = "i=0; while [ $i -lt 2000000 ]; do i=$((i+1)); done"  # ~5 s of shell arithmetic


def run(argv: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, env=env)
    took = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return took


def shell(command: str) -> float:
    return run(["bash", "-c", command])


def make_context(root: Path) -> None:
    """FILES files, MEGABYTES in all: half random bytes, half repetitive text, in 200 dirs."""
    rng = random.Random(7)
    size = MEGABYTES * (1 << 20) // FILES
    text = (b"the quick brown fox jumps over the lazy dog %d\n" * 400)[:size]
    for i in range(FILES):
        directory = root / f"d{i % 200:03d}"
        directory.mkdir(parents=True, exist_ok=True)
        data = rng.randbytes(size) if i % 2 else text
        (directory / f"f{i:05d}.bin").write_bytes(data)


class Bale:
    def __init__(self, work: Path) -> None:
        self.root = work / "bale-root"

    def __call__(self, *args: str, cwd: Path | None = None) -> float:
        return run([sys.executable, "-m", "bale", "--root", str(self.root), *args], cwd=cwd)


class Buildah:
    def __init__(self, work: Path) -> None:
        self.base = [
            "buildah",
            "--storage-driver",
            "overlay",
            "--root",
            str(work / "bh-root"),
            "--runroot",
            str(work / "bh-run"),
        ]
        self.work = work

    def __call__(self, *args: str, cwd: Path | None = None) -> float:
        return run([*self.base, *args], cwd=cwd)

    def output(self, *args: str) -> str:
        proc = subprocess.run([*self.base, *args], capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(f"buildah {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
        return proc.stdout.strip().splitlines()[-1]

    def build(self, platforms: str, tag: str, cwd: Path) -> float:
        return self(
            "build",
            "--isolation",
            "chroot",
            "--layers",
            "--platform",
            platforms,
            "--manifest",
            tag,
            "--quiet",
            ".",
            cwd=cwd,
        )

    def clean(self) -> None:
        subprocess.run([*self.base, "rm", "--all"], capture_output=True)
        subprocess.run(
            ["umount", "-R", str(self.work / "bh-root" / "overlay")], capture_output=True
        )


def copy_scenario(ctx: Path) -> dict[str, float]:
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY . /data\n")
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-tar-") as tmp:
        out["floor tar|pigz"] = shell(f"tar -C {ctx} -cf - . | pigz -1 > {tmp}/x.tgz")
        out["floor sha256sum"] = shell(
            f"cd {ctx} && find . -type f -print0 | xargs -0 -P2 -n500 sha256sum > /dev/null"
        )
    for tool in ("bale", "buildah"):
        for label, platforms in (("1 platform", "linux/amd64"), ("2 platforms", TWO)):
            with tempfile.TemporaryDirectory(prefix=f"bench-{tool}-") as tmp:
                work = Path(tmp)
                if tool == "bale":
                    b = Bale(work)
                    out[f"{tool} {label} cold"] = b(
                        "build",
                        "--progress",
                        "quiet",
                        "--platform",
                        platforms,
                        "-t",
                        "c:1",
                        ".",
                        cwd=ctx,
                    )
                    if platforms == TWO:
                        out[f"{tool} {label} cached"] = b(
                            "build",
                            "--progress",
                            "quiet",
                            "--platform",
                            platforms,
                            "-t",
                            "c:1",
                            ".",
                            cwd=ctx,
                        )
                else:
                    h = Buildah(work)
                    out[f"{tool} {label} cold"] = h.build(platforms, "c1", ctx)
                    if platforms == TWO:
                        out[f"{tool} {label} cached"] = h.build(platforms, "c2", ctx)
                    h.clean()
    return out


DEBIAN_DOCKERFILE = f"""\
FROM --platform=$BUILDPLATFORM debian:bookworm AS build
RUN {HEAVY}; echo built > /artifact
FROM debian:bookworm
COPY --from=build /artifact /usr/local/share/artifact
RUN cat /usr/local/share/artifact > /dev/null
"""


def debian_scenario(work: Path) -> dict[str, float] | None:
    tars = {a: ROOTFS / f"bookworm-python-{a}.tar" for a in ("amd64", "arm64")}
    if not all(t.is_file() for t in tars.values()):
        print(
            f"(skipping the Debian scenario: no rootfs tarballs in {ROOTFS}; "
            "scripts/python-base.sh makes them)"
        )
        return None
    ctx = work / "debian-ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DEBIAN_DOCKERFILE)
    # With sh (dash on Debian), the shell the image's RUN uses: bash loops several times slower.
    out: dict[str, float] = {"floor heavy step": run(["sh", "-c", HEAVY])}
    b = Bale(work / "bale")
    # Imports unpack the rootfs as they store it (as buildah's pull below does), so the build
    # starts from unpacked bases on both sides.
    out["bale import, 2 platforms"] = sum(
        b("import", "--platform", f"linux/{arch}", str(tar), "debian:bookworm")
        for arch, tar in tars.items()
    )
    out["bale cold"] = b(
        "build", "--progress", "quiet", "--platform", TWO, "-t", "d:1", ".", cwd=ctx
    )
    out["bale cached"] = b(
        "build", "--progress", "quiet", "--platform", TWO, "-t", "d:1", ".", cwd=ctx
    )
    archive = work / "debian.oci.tar"
    b("save", "-o", str(archive), "debian:bookworm")
    h = Buildah(work / "bh")
    # One image per platform, by ID, then a local manifest list under the name the Dockerfile
    # uses (buildah picks the instance per build platform). Each pull names its image after the
    # archive's ref annotation: that name is dropped first, the images keep per-arch tags.
    ids = []
    for arch in ("amd64", "arm64"):
        image = h.output("pull", "--quiet", "--platform", f"linux/{arch}", f"oci-archive:{archive}")
        h("tag", image, f"debian-base:{arch}")
        ids.append(image)
    h("rmi", "docker.io/library/debian:bookworm")
    h("manifest", "create", "docker.io/library/debian:bookworm", *ids)
    try:
        out["buildah cold"] = h.build(TWO, "d1", ctx)
    except SystemExit as exc:  # buildah cannot always take a two-platform archive: say so
        print(f"(buildah on the Debian scenario failed: {str(exc).splitlines()[0]})")
    h.clean()
    return out


_APPLY = (
    "import sys; from bale.store.layers.apply import apply_layer; "
    "apply_layer(open(sys.argv[1], 'rb'), sys.argv[2])"
)


def _timed(argv: list[str]) -> tuple[float, float]:
    """(wall seconds, user+sys CPU seconds) of a command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = run(argv)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu


def unpack_scenario(work: Path) -> dict[str, tuple[float, float]] | None:
    """The 216 MB Debian rootfs applied by bale (a fresh interpreter, start-up included)
    and by `tar -x`, alternately, onto the same filesystem; best of RUNS (at least 3)."""
    tar = ROOTFS / "bookworm-python-amd64.tar"
    if not tar.is_file():
        return None
    best: dict[str, tuple[float, float]] = {}
    for i in range(max(RUNS, 3)):
        for name, argv in (
            ("tar -x", ["tar", "-xf", str(tar), "--numeric-owner", "-p", "-C"]),
            ("bale", [sys.executable, "-c", _APPLY, str(tar)]),
        ):
            target = work / f"unpack-{i}-{name.replace(' ', '')}"
            target.mkdir()
            took = _timed([*argv, str(target)])
            shutil.rmtree(target)
            if name not in best or took[0] < best[name][0]:
                best[name] = took
    return best


def main() -> int:
    if os.geteuid() != 0:
        sys.exit("run as root: builds mount overlays and run steps in containers")
    if shutil.which("buildah") is None or shutil.which("pigz") is None:
        sys.exit("needs buildah and pigz (scripts/setup-host.sh installs them)")
    with tempfile.TemporaryDirectory(prefix="bench-cold-") as tmp:
        work = Path(tmp)
        ctx = work / "ctx"
        make_context(ctx)
        unpack = unpack_scenario(work)
        if unpack is not None:
            (tw, tc), (bw, bc) = unpack["tar -x"], unpack["bale"]
            print(
                f"unpack 216 MB rootfs: tar -x {tw:.2f} s (cpu {tc:.2f} s), bale {bw:.2f} s "
                f"(cpu {bc:.2f} s): {bw / tw:.2f}x wall, {bc / tc:.2f}x cpu (target <= 1.5x)"
            )
        print(f"context: {FILES} files, {MEGABYTES} MB; best of {RUNS}")
        best: dict[str, float] = {}
        for _ in range(RUNS):
            for name, took in copy_scenario(ctx).items():
                best[name] = min(took, best.get(name, took))
        for name, took in best.items():
            print(f"  {name:<32} {took:8.2f} s")
        floor = best["floor tar|pigz"]
        one, two = best["bale 1 platform cold"], best["bale 2 platforms cold"]
        print(
            f"  bale cold / tar|pigz: {one / floor:.2f}x (target <= 2.0x); two platforms / "
            f"one: {two / one:.2f}x (target <= 1.2x); vs buildah 1 platform: "
            f"{one / best['buildah 1 platform cold']:.2f}x, 2: "
            f"{two / best['buildah 2 platforms cold']:.2f}x"
        )
        startup = shell(f"{sys.executable} -c pass")
        cached = best["bale 2 platforms cached"]
        print(
            f"  cached two-platform rebuild: {cached:.2f} s, python -c pass: {startup:.2f} s, "
            f"above it: {cached - startup:.2f} s (target <= 0.15 s)"
        )
        deb = debian_scenario(work)
        if deb is not None:
            for name, took in deb.items():
                print(f"  debian {name:<25} {took:8.2f} s")
            ratio = deb["bale cold"] / deb["floor heavy step"]
            print(
                f"  debian cold / heavy step alone: {ratio:.2f}x"
                " (target <= 1.4x)"
                + (
                    f"; vs buildah: {deb['bale cold'] / deb['buildah cold']:.2f}x"
                    if "buildah cold" in deb
                    else ""
                )
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
