"""BuildKit's lint warnings a build prints (dockerfile_check_test.go, progress side)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from buildhelp import bale

from support import busybox_rootfs_tar


@pytest.mark.root
def test_base_image_platform_mismatch(store_root: Path, tmp_path: Path) -> None:
    # testBaseImagePlatformMismatch: a base that has only another platform is used, with
    # BuildKit's warning at its FROM line.
    # A plain manifest (no index), as a docker archive holds one.
    tar, archive = busybox_rootfs_tar(tmp_path, "linux/arm64"), tmp_path / "armonly.tar"
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


def _plain(root: Path, ctx: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    return bale(
        root,
        "build",
        "--platform",
        "linux/amd64,linux/arm64",
        "--progress",
        "plain",
        ".",
        cwd=ctx,
        check=check,
    )


@pytest.mark.root
def test_a_build_prints_the_checks_of_the_stages_it_builds(
    store_root: Path, tmp_path: Path
) -> None:
    # The progress half of testLegacyKeyValueFormat (an unbuilt stage is not reported) and of
    # testStageName (every stage is), each once for two platforms.
    (tmp_path / "Dockerfile").write_text(
        "\nFROM scratch AS a\n\nFROM a AS b\nENV testkey value\n\nFROM a AS Cee\nENV k=v\n"
    )
    out = _plain(store_root, tmp_path).stderr
    assert out.count("WARNING: ") == 1, out
    assert "WARNING: StageNameCasing: Stage name 'Cee' should be lowercase (line 7)" in out


@pytest.mark.root
def test_check_error_fails_the_build(store_root: Path, tmp_path: Path) -> None:
    # The progress half of testRuleCheckOption.
    (tmp_path / "Dockerfile").write_text(
        "#check=skip=ConsistentInstructionCasing;error=true\nFROM scratch as base\n"
        "copy Dockerfile .\n"
    )
    failed = _plain(store_root, tmp_path, check=False)
    assert failed.returncode == 1
    assert "WARNING: FromAsCasing: 'as' and 'FROM' keywords' casing do not match (line 2)" in (
        failed.stderr
    )
    assert failed.stderr.rstrip().endswith("ERROR: lint violation found for rules: FromAsCasing")
    (tmp_path / "Dockerfile").write_text(
        "#check=skip=all;error=true\nFROM scratch as base\ncopy Dockerfile .\n"
    )
    assert "WARNING" not in _plain(store_root, tmp_path).stderr
