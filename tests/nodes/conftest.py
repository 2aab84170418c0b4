"""Real nodes for the node tests: two sshd nodes (declared linux/amd64 and linux/arm64) on
127.0.0.1, a docker-registry holding a two-platform busybox base, and a coordinator root
with the builder `two` over both nodes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from nodehelp import PLATFORMS, Cluster

from sshnodes import BALE, sshd_available, start_nodes
from support import busybox_rootfs_tar, start_containerd, start_registry


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
            c.bale(
                "import",
                "--platform",
                platform,
                str(busybox_rootfs_tar(tmp, platform)),
                c.base,
                root=seed,
            )
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
