#!/usr/bin/env python3
"""`bale build` against `buildah build` on the same contexts, in one run.

For the hello and cross-compile examples, each tool does, on a fresh store:
1. a cold two-platform build (linux/amd64,linux/arm64; arm64 steps under QEMU);
2. a fully cached rebuild of the unchanged context;
3. a rebuild after editing one file that a COPY reads.

buildah runs as `buildah --storage-driver overlay --root T --runroot T2 build --isolation chroot
--layers --platform ... --manifest NAME` (BALE_BENCH_BUILDAH_DRIVER=vfs to compare with vfs).
Each figure is the best of BALE_BENCH_RUNS runs (default 3), each run on fresh stores.
Targets: cold <= 1.0x buildah; cached rebuild <= 0.5 s and <= 0.5x buildah.

Needs root, runc, binfmt_misc handlers for arm64 and the busybox fixtures
(scripts/fetch-fixtures.sh). Installs buildah with apt-get when it is missing.
Usage: sudo .venv/bin/python benchmarks/build.py
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PLATFORMS = "linux/amd64,linux/arm64"
RUNS = int(os.environ.get("BALE_BENCH_RUNS", "3"))
DRIVER = os.environ.get("BALE_BENCH_BUILDAH_DRIVER", "overlay")
# The file each example's one-file edit touches: read by a COPY, followed by more steps.
EDITED = {"hello": "hello.sh", "cross-compile": "src/app.sh.in"}
SCENARIOS = ("cold", "cached", "one edit")


def ensure_buildah() -> str:
    path = shutil.which("buildah")
    if path is None:
        print("buildah is missing: apt-get install -y buildah", file=sys.stderr)
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "buildah"], check=True, stdout=subprocess.DEVNULL
        )
        path = shutil.which("buildah")
    if path is None:
        sys.exit("buildah could not be installed")
    return path


def context(example: str, dest: Path) -> Path:
    shutil.copytree(REPO / "examples" / example, dest, ignore=shutil.ignore_patterns("bin"))
    subprocess.run([str(REPO / "scripts" / "example-context.sh"), str(dest)], check=True)
    return dest


def timed(argv: list[str], cwd: Path) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    took = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return took


def bale_tool(work: Path) -> Callable[[Path, int], list[str]]:
    root = work / "bale-root"

    def argv(_ctx: Path, _n: int) -> list[str]:
        return [
            sys.executable,
            "-m",
            "bale",
            "--root",
            str(root),
            "build",
            "--platform",
            PLATFORMS,
            "--progress",
            "quiet",
            "-t",
            "bench/app:1",
            ".",
        ]

    return argv


def buildah_tool(work: Path, buildah: str) -> Callable[[Path, int], list[str]]:
    def argv(_ctx: Path, n: int) -> list[str]:
        return [
            buildah,
            "--storage-driver",
            DRIVER,
            "--root",
            str(work / "buildah-root"),
            "--runroot",
            str(work / "buildah-runroot"),
            "build",
            "--isolation",
            "chroot",
            "--layers",
            "--platform",
            PLATFORMS,
            "--manifest",
            f"bench-{n}",
            "--quiet",
            ".",
        ]

    return argv


def scenario_times(example: str, tool: str, buildah: str) -> dict[str, float]:
    """Seconds for each scenario, on a fresh store and context."""
    with tempfile.TemporaryDirectory(prefix=f"bale-bench-{tool}-") as tmp:
        work = Path(tmp)
        ctx = context(example, work / "ctx")
        argv = bale_tool(work) if tool == "bale" else buildah_tool(work, buildah)
        out = {"cold": timed(argv(ctx, 1), ctx), "cached": timed(argv(ctx, 2), ctx)}
        with open(ctx / EDITED[example], "a") as f:
            f.write("# edited\n")
        out["one edit"] = timed(argv(ctx, 3), ctx)
        if tool == "buildah":
            subprocess.run(
                [
                    buildah,
                    "--storage-driver",
                    DRIVER,
                    "--root",
                    str(work / "buildah-root"),
                    "--runroot",
                    str(work / "buildah-runroot"),
                    "rm",
                    "--all",
                ],
                capture_output=True,
            )
            # Overlay mounts of buildah's store would keep the directory busy.
            subprocess.run(
                ["umount", "-R", str(work / "buildah-root" / "overlay")], capture_output=True
            )
        return out


def main() -> int:
    if os.geteuid() != 0:
        sys.exit("run as root: builds mount overlays and run steps in containers")
    buildah = ensure_buildah()
    print(f"bale build vs buildah build ({DRIVER}, chroot isolation), {PLATFORMS}, best of {RUNS}")
    print(f"{'example':<14} {'scenario':<9} {'bale s':>8} {'buildah s':>10} {'ratio':>7}")
    worst_cached = 0.0
    for example in EDITED:
        best: dict[str, dict[str, float]] = {"bale": {}, "buildah": {}}
        for _ in range(RUNS):
            for tool in ("bale", "buildah"):
                for name, took in scenario_times(example, tool, buildah).items():
                    best[tool][name] = min(took, best[tool].get(name, took))
        for name in SCENARIOS:
            b, p = best["bale"][name], best["buildah"][name]
            print(f"{example:<14} {name:<9} {b:>8.2f} {p:>10.2f} {b / p:>6.2f}x")
        worst_cached = max(worst_cached, best["bale"]["cached"])
    print(
        f"targets: cold <= 1.0x, cached <= 0.5x and <= 0.5 s "
        f"(slowest bale cached rebuild: {worst_cached:.2f} s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
