"""Images are unpacked when they arrive (import, load), so a build from them applies nothing."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from storehelp import (
    bale,
    bale_bytes,
    busybox_path,
    import_platforms,
    require_root,
    require_tool,
    rootfs_tar,
    small_rootfs,
)

from bale.store.snapshots import Snapshotter

pytestmark = pytest.mark.slow


def unpacked(root: Path) -> dict[str, float]:
    """Committed snapshots made from a layer: chain id -> creation time."""
    snapshots = Snapshotter(root / "snapshots")
    try:
        return {
            s.key: s.created
            for s in snapshots.all()
            if s.kind == "committed" and "bale.diff-id" in s.labels
        }
    finally:
        snapshots.close()


@pytest.mark.root
def test_import_unpacks_and_a_build_from_it_applies_nothing(root: Path, tmp_path: Path) -> None:
    require_root()
    require_tool("runc")
    busybox = busybox_path("linux/amd64")
    if busybox is None:
        pytest.skip("busybox fixture missing; run scripts/fetch-fixtures.sh")
    tar = rootfs_tar(busybox)
    import_platforms(root, tmp_path, "demo/base:1", {"linux/amd64": tar})
    # One layer: its chain id is its diff id, the sha256 of the tar.
    chain_id = f"sha256:{hashlib.sha256(tar).hexdigest()}"
    before = unpacked(root)
    assert list(before) == [chain_id]
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM demo/base:1\nRUN echo hi > /x\n")
    bale(root, "build", "--progress=plain", "--platform", "linux/amd64", str(ctx))
    # The build found the base's snapshot: it made no snapshot from a layer of its own.
    assert unpacked(root) == before


def test_load_unpacks_each_platform_unless_told_not_to(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tars = {"linux/amd64": small_rootfs("amd64"), "linux/arm64": small_rootfs("arm64")}
    import_platforms(root, tmp_path, "demo/two:1", tars)
    chains = {f"sha256:{hashlib.sha256(t).hexdigest()}" for t in tars.values()}
    assert set(unpacked(root)) == chains
    saved = bale_bytes(root, "save", "demo/two:1").stdout

    loaded = tmp_path / "loaded"
    assert bale_bytes(loaded, "load", input=saved).returncode == 0
    assert set(unpacked(loaded)) == chains

    off = tmp_path / "off"
    assert bale_bytes(off, "load", "--unpack=false", input=saved).returncode == 0
    assert unpacked(off) == {}
    monkeypatch.setenv("BALE_UNPACK", "0")
    path = tmp_path / "rootfs.tar"
    path.write_bytes(tars["linux/amd64"])
    bale(off, "import", str(path), "demo/one:1")
    assert unpacked(off) == {}
    bale(off, "import", "--unpack=true", str(path), "demo/one:2")  # the flag wins over the env
    assert set(unpacked(off)) <= chains and len(unpacked(off)) == 1
