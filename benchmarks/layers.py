#!/usr/bin/env python3
"""Layer export and RUN overhead, against the tools a user would compare with.

1. diff + compress a tree of mixed files (BALE_BENCH_SIZE_MB, default 1024) with bale's
   layer writer (gzip and zstd, diff id and digest included) vs `tar -c | gzip` and
   `tar -c | pigz` on the same tree;
2. `RUN true` through the executor (runc, unshare) vs `chroot DIR /bin/true`, natively and
   emulated (arm64 through binfmt and through proot), BALE_BENCH_RUNS times each (default 20).

Needs root for the executor half. Usage: sudo .venv/bin/python benchmarks/layers.py
"""

from __future__ import annotations

import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bale.builder.executor import CollectingOutput, RunSpec, SandboxExecutor
from bale.emulation import binfmt
from bale.mounts import Mount
from bale.oci import Platform
from bale.store.layers import DiffOptions, diff_trees

REPO = Path(__file__).resolve().parent.parent
BUSYBOX = REPO / ".cache" / "busybox"
SIZE_MB = int(os.environ.get("BALE_BENCH_SIZE_MB", "1024"))
RUNS = int(os.environ.get("BALE_BENCH_RUNS", "20"))
WORDS = (
    b"the",
    b"quick",
    b"brown",
    b"fox",
    b"import",
    b"def",
    b"return",
    b"class",
    b"self",
    b"value",
    b"int",
    b"main",
    b"printf",
    b"include",
    b"static",
    b"const",
    b"void",
    b"struct",
    b"if",
    b"else",
    b"for",
    b"while",
)


def make_tree(root: Path, size_mb: int) -> int:
    """Source-like text, binaries (half random, half structured) and a few big files."""
    rng = random.Random(42)
    budget = size_mb << 20
    total = 0
    n = 0
    while total < budget:
        kind = rng.random()
        directory = root / f"d{n % 37}" / f"s{n % 11}"
        directory.mkdir(parents=True, exist_ok=True)
        if kind < 0.80:  # small text files
            lines = [
                b" ".join(rng.choices(WORDS, k=rng.randint(3, 12)))
                for _ in range(rng.randint(5, 200))
            ]
            data = b"\n".join(lines) + b"\n"
        elif kind < 0.98:  # medium binaries
            size = rng.randint(20_000, 400_000)
            data = rng.randbytes(size // 2) + bytes(size // 4) + b"\x90\x48\x89" * (size // 12)
        else:  # large, partly compressible
            size = rng.randint(1 << 20, 8 << 20)
            block = rng.randbytes(1 << 16)
            data = (block + bytes(1 << 16)) * (size // (2 << 16))
        (directory / f"f{n}").write_bytes(data)
        total += len(data)
        n += 1
    return n


def timed(fn: object) -> tuple[float, object]:
    assert callable(fn)
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def shell_pipeline(cmd: str) -> tuple[float, int]:
    start = time.perf_counter()
    out = subprocess.run(
        ["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True, check=True
    )
    return time.perf_counter() - start, int(out.stdout.strip())


def bench_layers(base: Path) -> None:
    tree = base / "tree"
    tree.mkdir()
    print(f"building a {SIZE_MB} MiB tree of mixed files in {tree} ...", flush=True)
    files = make_tree(tree, SIZE_MB)
    raw = int(
        subprocess.run(
            ["du", "-sb", str(tree)], capture_output=True, text=True, check=True
        ).stdout.split()[0]
    )
    print(f"{files} files, {raw / 2**20:.0f} MiB\n")
    subprocess.run(f"tar -C {tree} -cf - . | cat > /dev/null", shell=True, check=True)  # warm

    rows: list[tuple[str, float, int]] = []
    for compression in ("gzip", "zstd"):
        with open(os.devnull, "wb") as sink:
            seconds, blob = timed(
                lambda c=compression, s=sink: diff_trees(  # type: ignore[misc]
                    None, tree, s, DiffOptions(compression=c)
                )
            )
        rows.append((f"bale diff ({compression}, digests)", seconds, blob.size))  # type: ignore[attr-defined]
    rows.append(("tar -c | gzip", *shell_pipeline(f"tar -C {tree} -cf - . | gzip | wc -c")))
    if shutil.which("pigz"):
        rows.append(("tar -c | pigz", *shell_pipeline(f"tar -C {tree} -cf - . | pigz | wc -c")))
    else:
        print("pigz is not installed: skipping tar | pigz")
    ref = rows[2][1]
    print(
        f"{'layer export':<30}{'seconds':>9}{'MiB/s':>9}{'out MiB':>9}{'ratio':>8}"
        f"{'vs tar|gzip':>13}"
    )
    for name, seconds, size in rows:
        print(
            f"{name:<30}{seconds:>9.2f}{raw / 2**20 / seconds:>9.0f}{size / 2**20:>9.0f}"
            f"{size / raw:>8.2f}{ref / seconds:>12.1f}x"
        )
    print()


def rootfs_for(base: Path, arch: str) -> Path | None:
    busybox = BUSYBOX / arch / "busybox"
    if not busybox.exists():
        return None
    root = base / f"rootfs-{arch}"
    (root / "bin").mkdir(parents=True)
    # What every image rootfs has, so no mount point is created (and removed) per step.
    for name in ("proc", "dev", "sys", "etc"):
        (root / name).mkdir()
    for name in ("hosts", "resolv.conf", "hostname"):
        (root / "etc" / name).touch()
    shutil.copy2(busybox, root / "bin" / "busybox")
    os.symlink("busybox", root / "bin" / "true")
    return root


def median_ms(fn: object, runs: int) -> float:
    assert callable(fn)
    fn()  # warm caches, the first runc start loads its binary
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


def bench_run(base: Path) -> None:
    if os.geteuid() != 0:
        print("RUN overhead: skipped (needs root)")
        return
    print(f"RUN true, median of {RUNS} runs")
    print(f"{'how':<44}{'ms':>8}{'over chroot':>14}")
    cases = [("amd64", "linux/amd64", ["auto"]), ("arm64", "linux/arm64", ["binfmt", "proot"])]
    for arch, platform, modes in cases:
        rootfs = rootfs_for(base, arch)
        if rootfs is None:
            print(f"{platform}: no busybox fixture, skipped")
            continue
        emulated = arch != "amd64"
        if emulated and (binfmt.handler_for(Platform.parse(platform)) is None):
            print(f"{platform}: no binfmt handler; chroot baseline impossible, skipped")
            continue

        def chroot(r: Path = rootfs) -> None:
            subprocess.run(["chroot", str(r), "/bin/true"], check=True)

        base_ms = median_ms(chroot, RUNS)
        print(f"{'chroot ' + platform + ' /bin/true':<44}{base_ms:>8.1f}{'':>14}")
        for runtime in ("runc", "unshare"):
            executor = SandboxExecutor(base / f"ex-{runtime}", runtime=runtime)  # type: ignore[arg-type]
            for mode in modes:
                if mode == "proot" and runtime == "runc":
                    continue  # proot always runs under unshare
                spec = RunSpec(
                    argv=("/bin/true",), platform=Platform.parse(platform), emulation=mode
                )
                mounts = (Mount("bind", str(rootfs), ("rbind", "rw")),)

                def step(
                    s: RunSpec = spec, e: SandboxExecutor = executor, m: tuple[Mount, ...] = mounts
                ) -> None:
                    assert e.run(s, m, CollectingOutput()) == 0

                ms = median_ms(step, RUNS)
                label = f"bale {runtime} {platform} ({mode})"
                print(f"{label:<44}{ms:>8.1f}{ms - base_ms:>+12.1f}ms")
    print()


def main() -> int:
    parent = os.environ.get("BALE_BENCH_DIR", "/var/tmp")
    with tempfile.TemporaryDirectory(prefix="bale-bench-", dir=parent) as tmp:
        base = Path(tmp)
        bench_layers(base)
        bench_run(base)
    return 0


if __name__ == "__main__":
    sys.exit(main())
