"""Shared fixtures: temp store roots, busybox binaries per architecture, real-tool guards."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from support import (  # noqa: F401 - re-exported for tests that import them from here
    DEBIAN_ARCH,
    FIXTURES,
    REPO,
    busybox_path,
    require_root,
    require_tool,
)


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


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """An empty bale state directory."""
    path = tmp_path / "bale-root"
    path.mkdir()
    return path


ROOT_REASON = "needs root (mounts, namespaces, binfmt_misc): run `make test` as root"


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Tests marked `root` are skipped when not running as root, all from here: the summary
    folds them into one line with one reason."""
    if item.get_closest_marker("root") is not None and os.geteuid() != 0:
        pytest.skip(ROOT_REASON)


def pytest_report_header(config: pytest.Config) -> str:
    if os.geteuid() == 0:
        return "root tests: run (running as root)"
    return f"root tests: skipped, {ROOT_REASON}"
