"""A two-platform image saved by bale is read, pushed and run by the real tools."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from storehelp import (
    bale,
    busybox_path,
    free_port,
    import_platforms,
    require_root,
    require_tool,
    rootfs_tar,
)

from bale.oci.platform import host_platform

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


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def _wait(what: str, ready: object, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited {proc.returncode}:\n{log.read_text()}")
        if ready():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} did not start in 60s:\n{log.read_text()}")


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[str]:
    """A real docker-registry on 127.0.0.1:<free port>; yields host:port."""
    exe = require_tool("docker-registry")
    port = free_port()
    config = tmp_path / "registry.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n"
        "storage:\n"
        f"  filesystem:\n    rootdirectory: {tmp_path / 'registry-data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    log = tmp_path / "registry.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([exe, "serve", str(config)], stdout=out, stderr=out)
    try:
        import socket

        def ready() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return True
            except OSError:
                return False

        _wait("docker-registry", ready, proc, log)
        yield f"127.0.0.1:{port}"
    finally:
        _stop(proc)


@pytest.fixture
def containerd(tmp_path: Path) -> Iterator[list[str]]:
    """A real containerd with its own root, state and socket; yields the ctr command prefix."""
    require_root()
    exe = require_tool("containerd")
    ctr = require_tool("ctr")
    require_tool("runc")
    base = Path(f"/tmp/bale-ctd-{os.getpid()}-{time.monotonic_ns()}")
    # A short path: unix socket names are limited to 108 bytes.
    base.mkdir()
    sock = base / "sock"
    config = base / "config.toml"
    config.write_text(
        "version = 2\n"
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
        "[grpc]\n"
        f'  address = "{sock}"\n'
    )
    log = tmp_path / "containerd.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                exe,
                "--root",
                str(base / "root"),
                "--state",
                str(base / "state"),
                "--address",
                str(sock),
                "--config",
                str(config),
            ],
            stdout=out,
            stderr=out,
        )
    prefix = [ctr, "--address", str(sock)]
    try:

        def ready() -> bool:
            if not sock.exists():
                return False
            return subprocess.run([*prefix, "version"], capture_output=True).returncode == 0

        _wait("containerd", ready, proc, log)
        yield prefix
    finally:
        _stop(proc)
        subprocess.run(["umount", "-R", str(base)], capture_output=True)
        subprocess.run(["rm", "-rf", str(base)], capture_output=True)


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
