"""Shared fixtures: temp store roots, busybox binaries per architecture, real-tool guards."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(os.environ.get("BALE_FIXTURES", REPO / ".cache" / "busybox"))

# Debian architecture names of the busybox-static fixtures, by OCI platform.
DEBIAN_ARCH = {
    "linux/amd64": "amd64",
    "linux/arm64": "arm64",
    "linux/arm/v7": "armhf",
    "linux/s390x": "s390x",
    "linux/ppc64le": "ppc64el",
    "linux/386": "i386",
}


def busybox_path(platform: str) -> Path | None:
    path = FIXTURES / DEBIAN_ARCH[platform] / "busybox"
    return path if path.exists() else None


@pytest.fixture
def busybox() -> object:
    """busybox(platform) -> Path of a static busybox for it, or skip with the reason."""

    def get(platform: str) -> Path:
        path = busybox_path(platform)
        if path is None:
            pytest.skip(
                f"busybox-static for {platform} not fetched ({FIXTURES}); "
                "run ./scripts/fetch-fixtures.sh as root"
            )
        return path

    return get


def require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (mounts, namespaces or binfmt_misc)")


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (make test installs it as root)")
    return path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """An empty bale state directory."""
    path = tmp_path / "bale-root"
    path.mkdir()
    return path
