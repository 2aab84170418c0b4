#!/usr/bin/env python3
"""The overhead of fanning a build out over nodes: a two-platform build on two sshd nodes
(one declared linux/amd64, one linux/arm64) against the same build on one node, and
against the in-process default builder, all on this machine.

The work is the same in every case (arm64 steps run under QEMU here either way), so the
differences are what nodes cost: SSH sessions and the node's bale start-up, the context
sent (once per node), the OCI layouts streamed back, verified and assembled into one index.

Scenarios, each on fresh node roots: `cold` (nothing cached) and `cached` (the same build
again: every step a cache hit, the context not re-sent), plus `edit` (one file the COPY
reads changed: the context is sent again). Best of BALE_BENCH_RUNS runs (default 3).

Needs root, sshd (openssh-server), binfmt_misc for arm64 and the busybox fixtures
(scripts/fetch-fixtures.sh). Usage: sudo .venv/bin/python benchmarks/nodes.py
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "tests")]

from sshnodes import BALE, sshd_available, start_nodes  # noqa: E402
from support import busybox_path  # noqa: E402

PLATFORMS = ("linux/amd64", "linux/arm64")
RUNS = int(os.environ.get("BALE_BENCH_RUNS", "3"))
SCENARIOS = ("cold", "cached", "edit")
SETUPS = ("local", "one node", "two nodes")


def _base(tmp: Path) -> list[Path]:
    tars = []
    for platform in PLATFORMS:
        busybox = busybox_path(platform)
        if busybox is None:
            sys.exit(f"busybox for {platform} is missing: run scripts/fetch-fixtures.sh")
        root = tmp / platform.replace("/", "_")
        (root / "bin").mkdir(parents=True)
        shutil.copy(busybox, root / "bin" / "busybox")
        (root / "bin" / "sh").symlink_to("busybox")
        out = tmp / f"{root.name}.tar"
        with tarfile.open(out, "w") as tar:
            tar.add(root, arcname=".")
        tars.append(out)
    return tars


def _bale(root: Path, *args: str, env: dict[str, str]) -> None:
    proc = subprocess.run(
        [str(BALE), "--root", str(root), *args], capture_output=True, text=True, env=env
    )
    if proc.returncode != 0:
        sys.exit(f"bale {' '.join(args)} failed:\n{proc.stderr}")


def _context(directory: Path) -> Path:
    ctx = directory / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        "FROM base:1\nCOPY data /data\nRUN uname -m > /arch && wc -c /data/* > /sizes\n"
    )
    (ctx / "data").mkdir()
    for i in range(50):  # a small app's worth of files: 50 x 20 KiB
        (ctx / "data" / f"f{i}").write_bytes(os.urandom(20 << 10))
    return ctx


def one_run(setup: str, tars: list[Path]) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bale-bench-nodes-") as tmp_name:
        tmp = Path(tmp_name)
        env = {k: v for k, v in os.environ.items() if k not in ("BALE_ROOT", "BALE_BUILDER")}
        coordinator = tmp / "coordinator"
        names = {"one node": ["solo"], "two nodes": ["amd", "arm"]}.get(setup, [])
        nodes = start_nodes(tmp / "ssh", names) if names else None
        try:
            roots = [n.root for n in nodes.nodes.values()] if nodes else [coordinator]
            for root in roots:
                for platform, tar in zip(PLATFORMS, tars, strict=True):
                    _bale(root, "import", "--platform", platform, str(tar), "base:1", env=env)
            builder = "default"
            if nodes is not None:
                env["BALE_SSH_CONFIG"] = str(nodes.config)
                builder = "bench"
                for i, node in enumerate(nodes.nodes.values()):
                    declared = ",".join(PLATFORMS) if len(names) == 1 else PLATFORMS[i]
                    _bale(
                        coordinator,
                        "builder",
                        "create",
                        "--name",
                        builder,
                        *(["--append"] if i else []),
                        "--node",
                        node.name,
                        "--platform",
                        declared,
                        "--driver-opt",
                        f"bale={BALE},root={node.root}",
                        node.endpoint,
                        env=env,
                    )
            ctx = _context(tmp)

            def build() -> float:
                start = time.perf_counter()
                _bale(
                    coordinator,
                    "build",
                    "--builder",
                    builder,
                    "--platform",
                    ",".join(PLATFORMS),
                    "--progress",
                    "quiet",
                    "-t",
                    "bench:1",
                    str(ctx),
                    env=env,
                )
                return time.perf_counter() - start

            out = {"cold": build(), "cached": build()}
            (ctx / "data" / "f0").write_bytes(os.urandom(20 << 10))
            out["edit"] = build()
            return out
        finally:
            if nodes is not None:
                nodes.stop()


def main() -> int:
    why = sshd_available()
    if why:
        sys.exit(why)
    with tempfile.TemporaryDirectory(prefix="bale-bench-base-") as tmp:
        tars = _base(Path(tmp))
        best: dict[str, dict[str, float]] = {s: {} for s in SETUPS}
        for _ in range(RUNS):
            for setup in SETUPS:
                for name, took in one_run(setup, tars).items():
                    best[setup][name] = min(took, best[setup].get(name, took))
    print(f"two-platform build ({', '.join(PLATFORMS)}), best of {RUNS}, seconds")
    print(f"{'scenario':<9} {'local':>8} {'one node':>9} {'two nodes':>10} {'2 vs 1 node':>12}")
    fmt: Callable[[float], str] = lambda d: f"{d:+.2f}"  # noqa: E731
    for name in SCENARIOS:
        local, one, two = (best[s][name] for s in SETUPS)
        print(f"{name:<9} {local:>8.2f} {one:>9.2f} {two:>10.2f} {fmt(two - one):>12}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
