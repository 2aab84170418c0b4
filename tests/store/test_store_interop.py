"""A two-platform image saved by bale is read, pushed and run by the real tools."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from storehelp import (
    bale,
    busybox_path,
    import_platforms,
    require_tool,
    rootfs_tar,
)

from bale.oci.platform import host_platform
from support import start_containerd, start_registry

pytestmark = pytest.mark.slow

PLATFORMS = ("linux/amd64", "linux/arm64")
REF = "demo/busybox:1"
QEMU = {"linux/amd64": "qemu-x86_64", "linux/arm64": "qemu-aarch64"}
UNAME = {"linux/amd64": "x86_64", "linux/arm64": "aarch64"}


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """(store root, `bale save` archive, index digest) of busybox for amd64 + arm64."""
    tmp = tmp_path_factory.mktemp("saved")
    tars = {}
    for platform in PLATFORMS:
        path = busybox_path(platform)
        if path is None:
            pytest.skip(f"busybox-static for {platform} not fetched; run scripts/fetch-fixtures.sh")
        tars[platform] = rootfs_tar(path)
    root = tmp / "root"
    digests = import_platforms(root, tmp, REF, tars)
    index_digest = digests[-1]
    archive = tmp / "busybox.oci.tar"
    bale(root, "save", "-o", str(archive), REF)
    return root, archive, index_digest


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[str]:
    """A real docker-registry on 127.0.0.1:<free port>; yields host:port."""
    server = start_registry(tmp_path / "registry")
    try:
        yield server.host
    finally:
        server.stop()


@pytest.fixture
def containerd(tmp_path: Path) -> Iterator[list[str]]:
    """A real containerd with its own root, state and socket; yields the ctr command prefix."""
    service = start_containerd(tmp_path)
    try:
        yield service.ctr
    finally:
        service.stop()


def test_skopeo_reads_the_saved_index(saved: tuple[Path, Path, str]) -> None:
    skopeo = require_tool("skopeo")
    root, archive, index_digest = saved
    raw = subprocess.run(
        [skopeo, "inspect", "--raw", f"oci-archive:{archive}"], capture_output=True, check=True
    ).stdout
    assert f"sha256:{hashlib.sha256(raw).hexdigest()}" == index_digest
    doc = json.loads(raw)
    assert doc["mediaType"] == "application/vnd.oci.image.index.v1+json"
    platforms = sorted(
        f"{m['platform']['os']}/{m['platform']['architecture']}" for m in doc["manifests"]
    )
    assert platforms == sorted(PLATFORMS)
    # The store names the same index.
    listed = json.loads(bale(root, "images", "--format", "json").stdout.splitlines()[0])
    assert listed["Digest"] == index_digest


def test_skopeo_copies_all_platforms_to_a_registry(
    saved: tuple[Path, Path, str], registry: str
) -> None:
    skopeo = require_tool("skopeo")
    _, archive, index_digest = saved
    dest = f"docker://{registry}/x:1"
    subprocess.run(
        [skopeo, "copy", "--all", f"oci-archive:{archive}", dest, "--dest-tls-verify=false"],
        capture_output=True,
        check=True,
        timeout=300,
    )
    raw = subprocess.run(
        [skopeo, "inspect", "--raw", "--tls-verify=false", dest],
        capture_output=True,
        check=True,
    ).stdout
    assert f"sha256:{hashlib.sha256(raw).hexdigest()}" == index_digest
    # Each platform's manifest arrived too.
    for m in json.loads(raw)["manifests"]:
        one = subprocess.run(
            [
                skopeo,
                "inspect",
                "--raw",
                "--tls-verify=false",
                f"docker://{registry}/x@{m['digest']}",
            ],
            capture_output=True,
            check=True,
        ).stdout
        assert f"sha256:{hashlib.sha256(one).hexdigest()}" == m["digest"]


@pytest.mark.root
def test_containerd_imports_and_runs_each_platform(
    saved: tuple[Path, Path, str], containerd: list[str]
) -> None:
    _, archive, index_digest = saved
    host = str(host_platform())
    for platform in PLATFORMS:
        if platform != host and not Path(f"/proc/sys/fs/binfmt_misc/{QEMU[platform]}").exists():
            pytest.skip(f"no binfmt_misc handler {QEMU[platform]} to run {platform}")
    subprocess.run(
        [*containerd, "images", "import", "--all-platforms", str(archive)],
        capture_output=True,
        check=True,
        timeout=300,
    )
    listing = subprocess.run(
        [*containerd, "images", "ls"], capture_output=True, text=True, check=True
    ).stdout
    image = "docker.io/demo/busybox:1"
    line = next(x for x in listing.splitlines() if x.startswith(image + " "))
    assert index_digest in line
    for i, platform in enumerate(PLATFORMS):
        run = subprocess.run(
            [
                *containerd,
                "run",
                "--rm",
                "--platform",
                platform,
                image,
                f"bale-test-{os.getpid()}-{i}",
                "/bin/busybox",
                "uname",
                "-m",
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip() == UNAME[platform]


@pytest.mark.root
def test_containerd_export_loads_back_unchanged(
    saved: tuple[Path, Path, str], containerd: list[str], tmp_path: Path
) -> None:
    _, archive, index_digest = saved
    subprocess.run(
        [*containerd, "images", "import", "--all-platforms", str(archive)],
        capture_output=True,
        check=True,
        timeout=300,
    )
    exported = tmp_path / "exported.tar"
    subprocess.run(
        [
            *containerd,
            "images",
            "export",
            "--all-platforms",
            str(exported),
            "docker.io/demo/busybox:1",
        ],
        capture_output=True,
        check=True,
        timeout=300,
    )
    other = tmp_path / "other-root"
    assert bale(other, "load", "-i", str(exported)).stdout.strip() == "Loaded image: demo/busybox:1"
    assert bale(other, "images", "-q", "--no-trunc").stdout.split() == [index_digest]
    row = json.loads(bale(other, "images", "--format", "json").stdout)
    assert row["Platforms"] == list(PLATFORMS)
    assert bale(other, "store", "check").stdout.startswith("ok:")
