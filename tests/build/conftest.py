"""Real services for the build tests: docker-registry, containerd, the Debian python base."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from buildhelp import PYTHON_BASE, REPO, bale, env, require_root, require_tool

from support import CACHE, busybox_rootfs_tar, start_containerd, start_registry


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real docker-registry on 127.0.0.1:<free port>; yields host:port."""
    server = start_registry(tmp_path_factory.mktemp("registry"))
    try:
        yield server.host
    finally:
        server.stop()


@pytest.fixture(scope="session")
def containerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """A real containerd with its own root, state and socket; yields the ctr command prefix."""
    service = start_containerd(tmp_path_factory.mktemp("containerd"))
    try:
        yield service.ctr
    finally:
        service.stop()


@pytest.fixture(scope="session")
def python_base_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bale root holding the python-app example's Debian base for amd64 and arm64, made by
    scripts/python-base.sh (mmdebstrap, rootfs tarballs cached under the repo's .cache)."""
    require_root()
    require_tool("mmdebstrap")
    cache = CACHE
    missing = [
        arch
        for arch in ("amd64", "arm64")
        if not (cache / "rootfs" / f"bookworm-python-{arch}.tar").is_file()
    ]
    if missing:
        try:
            socket.create_connection(("deb.debian.org", 80), timeout=10).close()
        except OSError as exc:
            pytest.skip(f"mmdebstrap cannot reach the Debian mirror deb.debian.org: {exc}")
    root = tmp_path_factory.mktemp("python-base") / "root"
    proc = subprocess.run(
        [str(REPO / "scripts" / "python-base.sh")],
        cwd=REPO,
        env={
            **env(),
            "BALE": f"{REPO / '.venv' / 'bin' / 'bale'} --root {root}",
            "CACHE": str(cache),
        },
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if proc.returncode != 0:
        text = proc.stderr + proc.stdout
        if "deb.debian.org" in text or "Temporary failure" in text or "Could not" in text:
            pytest.skip(f"mmdebstrap could not fetch from the Debian mirror:\n{text[-2000:]}")
        raise AssertionError(f"scripts/python-base.sh failed:\n{text}")
    assert PYTHON_BASE.split(":")[0] in bale(root, "images").stdout
    return root


@pytest.fixture(scope="module")
def store_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_root()
    tmp = tmp_path_factory.mktemp("sources")
    root = tmp / "root"
    for platform in ("linux/amd64", "linux/arm64"):
        tar = busybox_rootfs_tar(tmp, platform)
        bale(root, "import", "--platform", platform, str(tar), "base:1")
    return root
