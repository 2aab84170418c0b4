"""Real nodes for the node tests: two sshd nodes (declared linux/amd64 and linux/arm64) on
127.0.0.1, a docker-registry holding a two-platform busybox base, and a coordinator root
with the builder `two` over both nodes."""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from nodehelp import PLATFORMS, Cluster

from sshnodes import BALE, sshd_available, start_nodes
from support import busybox_path, start_containerd, start_registry


def _rootfs(tmp: Path, platform: str) -> Path:
    busybox = busybox_path(platform)
    if busybox is None:
        pytest.skip(f"busybox-static for {platform} not fetched; run scripts/fetch-fixtures.sh")
    root = tmp / platform.replace("/", "_")
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "busybox").write_bytes(busybox.read_bytes())
    (root / "bin" / "busybox").chmod(0o755)
    (root / "bin" / "sh").symlink_to("busybox")
    out = tmp / f"{root.name}.tar"
    with tarfile.open(out, "w") as tar:
        tar.add(root, arcname=".")
    return out


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    why = sshd_available()
    if why:
        pytest.skip(why)
    tmp = tmp_path_factory.mktemp("nodes")
    server = start_registry(tmp / "registry")
    nodes = start_nodes(tmp / "ssh", ["amd", "arm"])
    try:
        c = Cluster(nodes, server.host, tmp / "coordinator", f"{server.host}/base:1")
        seed = tmp / "seed"
        for platform in PLATFORMS:
            c.bale("import", "--platform", platform, str(_rootfs(tmp, platform)), c.base, root=seed)
        c.bale("push", c.base, root=seed)
        for node, platform in zip(("amd", "arm"), PLATFORMS, strict=True):
            opts = f"bale={BALE},root={nodes.nodes[node].root}"
            c.bale(
                "builder",
                "create",
                "--name",
                "two",
                *(["--append"] if node == "arm" else []),
                "--node",
                node,
                "--platform",
                platform,
                "--driver-opt",
                opts,
                nodes.nodes[node].endpoint,
            )
        yield c
    finally:
        nodes.stop()
        server.stop()


@pytest.fixture(scope="module")
def containerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """A real containerd with its own root, state and socket; yields the ctr prefix."""
    service = start_containerd(tmp_path_factory.mktemp("containerd"))
    try:
        yield service.ctr
    finally:
        service.stop()
