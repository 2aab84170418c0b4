"""Fixtures for execution tests: busybox rootfs trees, snapshotters, executors."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from exechelp import MakeRootfs, require_root

from bale.builder.executor import SandboxExecutor
from bale.store.snapshots import Snapshotter, overlay_supported
from support import DEBIAN_ARCH, FIXTURES, REPO  # noqa: F401 - shared

APPLETS = (
    "sh",
    "uname",
    "cat",
    "ls",
    "true",
    "false",
    "echo",
    "id",
    "ps",
    "sleep",
    "mkdir",
    "rm",
    "grep",
    "touch",
    "wc",
    "ln",
    "chmod",
    "test",
    "stat",
    "hostname",
    "env",
    "pwd",
)


def populate_busybox(rootfs: Path, busybox: Path) -> None:
    (rootfs / "bin").mkdir(parents=True, exist_ok=True)
    shutil.copy2(busybox, rootfs / "bin" / "busybox")
    for applet in APPLETS:
        link = rootfs / "bin" / applet
        if not link.exists():
            os.symlink("busybox", link)


@pytest.fixture
def make_rootfs(tmp_path: Path) -> MakeRootfs:
    """make_rootfs(platform) -> a directory with that platform's busybox, or skip."""
    counter = iter(range(1000))

    def make(platform: str) -> Path:
        path = FIXTURES / DEBIAN_ARCH[platform] / "busybox"
        if not path.exists():
            pytest.skip(
                f"busybox-static for {platform} is not fetched: run "
                f'BALE_FIXTURE_ARCHES="armhf s390x ppc64el i386" ./scripts/fetch-fixtures.sh'
            )
        rootfs = tmp_path / f"rootfs-{next(counter)}"
        populate_busybox(rootfs, path)
        return rootfs

    return make


@pytest.fixture
def executor(tmp_path: Path) -> SandboxExecutor:
    require_root()
    return SandboxExecutor(tmp_path / "executor")


@pytest.fixture(params=["overlay", "copy"])
def snapshotter(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Snapshotter]:
    require_root()
    root = tmp_path / "snapshots"
    root.mkdir()
    if request.param == "overlay" and not overlay_supported(root):
        pytest.skip(f"overlayfs does not mount under {root}")
    snap = Snapshotter(root, driver=request.param)
    yield snap
    snap.close()
