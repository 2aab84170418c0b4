#!/usr/bin/env python3
"""A cache carried between fresh runners, against buildah and against the floor, in one run.

A release pipeline's runner starts empty: what saves it is a build cache another runner
exported to a registry. The scenario: a two-platform build (busybox on scratch; a
`--platform=$BUILDPLATFORM` stage doing native CPU work; a ~50 MB COPY; per-target steps,
arm64 under QEMU). Each tool, on fresh stores:

1. cold, no cache                                  (what a runner without a cache pays)
2. cold, exporting its cache to a local registry   (`--cache-to`, mode=max)
3. a fresh store importing that cache              (`--cache-from`): nothing should run
4. the same after editing one file the last steps read

The floor for 3 is fetching the image's layers from the registry; the figures print next to
the heavy step alone. buildah 1.28 takes `--cache-to/--cache-from REPO` (its layers as
images in a repository); it rebuilds per platform what it cannot find.

Usage: sudo .venv/bin/python benchmarks/cache.py   (BALE_BENCH_RUNS=N: best of N)
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RUNS = int(os.environ.get("BALE_BENCH_RUNS", "1"))
FIXTURES = Path(os.environ.get("BALE_FIXTURES", REPO / ".cache" / "busybox"))
TWO = "linux/amd64,linux/arm64"
HEAVY = "i=0; while [ $i -lt 600000 ]; do i=$((i+1)); done"  # ~1.5 s of shell arithmetic

DOCKERFILE = f"""\
FROM --platform=$BUILDPLATFORM scratch AS build
ARG BUILDARCH
COPY bin/busybox-${{BUILDARCH}} /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN {HEAVY}; echo built > /artifact
FROM scratch
ARG TARGETARCH
COPY bin/busybox-${{TARGETARCH}} /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
COPY data /data
COPY --from=build /artifact /artifact
COPY app.txt /app.txt
RUN cat /app.txt /artifact > /summary; uname -m >> /summary
"""


def run(argv: list[str], cwd: Path | None = None) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    took = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return took


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Registry:
    """A docker-registry on 127.0.0.1 with its own storage."""

    def __init__(self, work: Path) -> None:
        port = free_port()
        config = work / "registry.yml"
        config.write_text(
            "version: 0.1\nlog:\n  level: error\nstorage:\n"
            f"  filesystem:\n    rootdirectory: {work / 'registry-data'}\n"
            f"http:\n  addr: 127.0.0.1:{port}\n"
        )
        self.address = f"127.0.0.1:{port}"
        self.proc = subprocess.Popen(
            ["docker-registry", "serve", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.1)
        sys.exit("docker-registry did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()


def make_context(ctx: Path) -> None:
    (ctx / "bin").mkdir(parents=True)
    for deb, arch in (("amd64", "amd64"), ("arm64", "arm64")):
        src = FIXTURES / deb / "busybox"
        if not src.is_file():
            sys.exit(f"no busybox fixture at {src}: run make fixtures")
        shutil.copy(src, ctx / "bin" / f"busybox-{arch}")
    rng = random.Random(3)
    data = ctx / "data"
    for i in range(500):
        (data / f"d{i % 20}").mkdir(parents=True, exist_ok=True)
        (data / f"d{i % 20}" / f"f{i}.bin").write_bytes(rng.randbytes(100_000))
    (ctx / "app.txt").write_text("version 1\n")
    (ctx / "Dockerfile").write_text(DOCKERFILE)


def bale(work: Path, name: str, ctx: Path, *args: str) -> float:
    root = work / f"bale-{name}"
    argv = [sys.executable, "-m", "bale", "--root", str(root), "build", "--progress", "quiet"]
    return run([*argv, "--platform", TWO, "-t", "bench/cache:1", *args, "."], cwd=ctx)


def buildah(work: Path, name: str, ctx: Path, *args: str) -> float:
    base = ["buildah", "--storage-driver", "overlay", "--root", str(work / f"bh-{name}")]
    base += ["--runroot", str(work / f"bh-{name}-run")]
    try:
        argv = [*base, "build", "--isolation", "chroot", "--layers", "--platform", TWO]
        argv += ["--manifest", f"bench-{name}", "--quiet", "--tls-verify=false"]
        return run([*argv, *args, "."], cwd=ctx)
    finally:
        subprocess.run([*base, "rm", "--all"], capture_output=True)
        subprocess.run(["umount", "-R", str(work / f"bh-{name}" / "overlay")], capture_output=True)


def scenario(tool: str, work: Path, ctx: Path, registry: str) -> dict[str, float]:
    out: dict[str, float] = {}
    (ctx / "app.txt").write_text("version 1\n")
    if tool == "bale":
        ref = f"{registry}/cache/bale:main"
        out["cold, no cache"] = bale(work, "plain", ctx)
        out["cold, exporting"] = bale(
            work, "a", ctx, "--cache-to", f"type=registry,ref={ref},mode=max"
        )
        out["fresh, cache imported"] = bale(
            work, "b", ctx, "--cache-from", f"type=registry,ref={ref}"
        )
        (ctx / "app.txt").write_text("version 2\n")
        out["fresh, imported, 1 edit"] = bale(
            work, "c", ctx, "--cache-from", f"type=registry,ref={ref}"
        )
    else:
        repo = f"{registry}/cache/buildah"
        out["cold, no cache"] = buildah(work, "plain", ctx)
        out["cold, exporting"] = buildah(work, "a", ctx, "--cache-to", repo)
        out["fresh, cache imported"] = buildah(work, "b", ctx, "--cache-from", repo)
        (ctx / "app.txt").write_text("version 2\n")
        out["fresh, imported, 1 edit"] = buildah(work, "c", ctx, "--cache-from", repo)
    return out


def main() -> int:
    if os.geteuid() != 0:
        sys.exit("run as root: builds mount overlays and run steps in containers")
    for tool in ("docker-registry", "buildah"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is missing (scripts/setup-host.sh installs it)")
    best: dict[str, dict[str, float]] = {"bale": {}, "buildah": {}}
    floor = min(run(["busybox", "sh", "-c", HEAVY]) for _ in range(RUNS))
    for _ in range(RUNS):
        for tool in ("bale", "buildah"):
            with tempfile.TemporaryDirectory(prefix=f"bench-cache-{tool}-") as tmp:
                work = Path(tmp)
                ctx = work / "ctx"
                make_context(ctx)
                registry = Registry(work)
                try:
                    for name, took in scenario(tool, work, ctx, registry.address).items():
                        best[tool][name] = min(took, best[tool].get(name, took))
                finally:
                    registry.stop()
    print(f"build cache through a registry, {TWO}, best of {RUNS}")
    print(f"  floor: the heavy step alone, natively: {floor:.2f} s")
    print(f"  {'scenario':<26} {'bale s':>8} {'buildah s':>10} {'ratio':>7}")
    for name, b in best["bale"].items():
        p = best["buildah"][name]
        print(f"  {name:<26} {b:>8.2f} {p:>10.2f} {b / p:>6.2f}x")
    saved = best["bale"]["cold, no cache"] - best["bale"]["fresh, cache imported"]
    print(f"  bale: a fresh runner with the cache saves {saved:.2f} s of a cold build")
    return 0


if __name__ == "__main__":
    sys.exit(main())
