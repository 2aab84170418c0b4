"""BuildKit's lint warnings a build prints (dockerfile_check_test.go, progress side)."""

from __future__ import annotations

from pathlib import Path

import pytest
from buildhelp import bale

from conftest import _rootfs_tar


@pytest.mark.root
def test_base_image_platform_mismatch(store_root: Path, tmp_path: Path) -> None:
    # testBaseImagePlatformMismatch: a base that has only another platform is used, with
    # BuildKit's warning at its FROM line.
    # A plain manifest (no index), as a docker archive holds one.
    tar, archive = _rootfs_tar(tmp_path, "linux/arm64"), tmp_path / "armonly.tar"
    bale(store_root, "import", "--platform", "linux/arm64", str(tar), "armonly:1")
    bale(
        store_root,
        "save",
        "--format",
        "docker",
        "--platform",
        "linux/arm64",
        "-o",
        str(archive),
        "armonly:1",
    )
    bale(store_root, "rmi", "armonly:1")
    bale(store_root, "load", "-i", str(archive))
    (tmp_path / "Dockerfile").write_text("\nFROM armonly:1\nENV foo=bar\n")
    proc = bale(
        store_root, "build", "--platform", "linux/amd64", "--progress", "plain", ".", cwd=tmp_path
    )
    assert (
        'InvalidBaseImagePlatform: Base image armonly:1 was pulled with platform "linux/arm64", '
        'expected "linux/amd64" for current build (line 2)'
    ) in proc.stderr
