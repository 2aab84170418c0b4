"""Snapshotter lifecycle on both drivers, and image layers unpacked once per chain id."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from pathlib import Path
from typing import BinaryIO

import pytest
from exechelp import mounts_under

from bale.errors import AlreadyExists, DigestMismatch, FailedPrecondition, NotFound
from bale.mounts import mounted
from bale.oci import Digest
from bale.store.layers import DiffOptions, diff_trees, diff_upperdir
from bale.store.layers.unpack import LayerSource, chain_ids, unpack_chain
from bale.store.snapshots import Snapshotter


def layer_of(files: dict[str, bytes], tmp: Path, deletions: tuple[str, ...] = ()) -> bytes:
    """A gzip layer adding `files` (and whiteouts for `deletions`)."""
    lower = tmp / f"lower-{len(os.listdir(tmp))}"
    upper = tmp / f"upper-{len(os.listdir(tmp))}"
    lower.mkdir()
    upper.mkdir()
    for name in deletions:
        (lower / name).write_text("was here")
    for name, data in files.items():
        (upper / name).parent.mkdir(parents=True, exist_ok=True)
        (upper / name).write_bytes(data)
    sink = io.BytesIO()
    diff_trees(lower, upper, sink, DiffOptions())
    return sink.getvalue()


def diff_id(blob: bytes) -> Digest:
    import gzip

    return Digest.of(gzip.decompress(blob))


@pytest.mark.root
def test_prepare_commit_view_chain(snapshotter: Snapshotter) -> None:
    base = snapshotter.prepare("build-1")
    with mounted(base.mounts, snapshotter.root / "mnt") as root:
        Path(root, "a").write_text("from base")
        Path(root, "gone").write_text("to be deleted")
    snapshotter.commit("base", "build-1")
    assert snapshotter.lookup("base") is not None
    with pytest.raises(NotFound):
        snapshotter.stat("build-1")

    top = snapshotter.prepare("build-2", "base")
    with mounted(top.mounts, snapshotter.root / "mnt") as root:
        assert Path(root, "a").read_text() == "from base"
        Path(root, "b").write_text("from top")
        os.unlink(Path(root, "gone"))
    snapshotter.commit("top", "build-2")

    view = snapshotter.view("look", "top")
    assert view.readonly
    with mounted(view.mounts, snapshotter.root / "mnt") as root:
        assert sorted(os.listdir(root)) == ["a", "b"]
        with pytest.raises(OSError):
            Path(root, "c").write_text("read-only")
    snapshotter.remove("look")
    # The base snapshot is unchanged by its child.
    base_view = snapshotter.view("look-base", "base")
    with mounted(base_view.mounts, snapshotter.root / "mnt") as root:
        assert sorted(os.listdir(root)) == ["a", "gone"]
    snapshotter.remove("look-base")
    assert mounts_under(snapshotter.root) == []


@pytest.mark.root
def test_active_snapshot_cannot_be_parent(snapshotter: Snapshotter) -> None:
    snapshotter.prepare("active-1")
    with pytest.raises(FailedPrecondition, match="only committed"):
        snapshotter.prepare("child", "active-1")
    with pytest.raises(FailedPrecondition):
        snapshotter.view("v", "active-1")
    with pytest.raises(AlreadyExists):
        snapshotter.prepare("active-1")
    with pytest.raises(NotFound):
        snapshotter.prepare("x", "no-such-parent")


@pytest.mark.root
def test_remove_refuses_parents_and_cleans_directories(snapshotter: Snapshotter) -> None:
    snapshotter.prepare("k1")
    snapshotter.commit("parent", "k1")
    snapshotter.prepare("k2", "parent")
    with pytest.raises(FailedPrecondition, match="parent"):
        snapshotter.remove("parent")
    before = set(os.listdir(snapshotter.root))
    snapshotter.remove("k2")
    snapshotter.remove("parent")
    after = set(os.listdir(snapshotter.root))
    assert len(before - after) == 2  # both snapshot directories are gone
    assert snapshotter.all() == []


@pytest.mark.root
def test_prepared_context_removes_on_failure(snapshotter: Snapshotter) -> None:
    with pytest.raises(RuntimeError), snapshotter.prepared("doomed"):
        raise RuntimeError("step failed")
    assert snapshotter.all() == []
    with snapshotter.prepared("kept") as active:
        snapshotter.commit("done", active.key)
    assert [s.key for s in snapshotter.all()] == ["done"]


@pytest.mark.root
def test_metadata_survives_reopen(snapshotter: Snapshotter) -> None:
    snapshotter.prepare("k")
    snapshotter.commit("c", "k", labels={"x": "1"})
    again = Snapshotter(snapshotter.root)
    assert again.driver == snapshotter.driver
    info = again.lookup("c")
    assert info is not None and info.labels == {"x": "1"}
    journal = subprocess.run(
        ["sqlite3", str(snapshotter.root / "metadata.db"), "PRAGMA journal_mode"],
        capture_output=True,
        text=True,
        check=False,
    )
    if journal.returncode == 0:
        assert journal.stdout.strip() == "wal"
    again.close()


@pytest.mark.root
def test_diff_of_active_snapshot(snapshotter: Snapshotter) -> None:
    snapshotter.prepare("k0")
    with mounted(snapshotter.mounts("k0"), snapshotter.root / "mnt") as root:
        Path(root, "keep").write_text("1")
        Path(root, "drop").write_text("2")
    snapshotter.commit("p", "k0")
    active = snapshotter.prepare("k1", "p")
    with mounted(active.mounts, snapshotter.root / "mnt") as root:
        Path(root, "new").write_text("3")
        os.unlink(Path(root, "drop"))
    source = snapshotter.diff_source("k1")
    sink = io.BytesIO()
    if source.kind == "upperdir":
        diff_upperdir(source.upper, sink, DiffOptions(compression=""))
    else:
        diff_trees(source.lower, source.upper, sink, DiffOptions(compression=""))
    with tarfile.open(fileobj=io.BytesIO(sink.getvalue())) as tar:
        names = sorted(tar.getnames())
    assert names == [".wh.drop", "new"]


class CountingOpener:
    def __init__(self, blob: bytes) -> None:
        self.blob = blob
        self.opened = 0

    def __call__(self) -> BinaryIO:
        self.opened += 1
        return io.BytesIO(self.blob)


@pytest.mark.root
def test_unpack_chain_once_per_chain_id(snapshotter: Snapshotter, tmp_path: Path) -> None:
    work = tmp_path / "layers"
    work.mkdir()
    l1 = layer_of({"etc/os": b"base\n", "bin/tool": b"v1"}, work)
    l2 = layer_of({"bin/tool": b"v2"}, work, deletions=("etc",))
    openers = [CountingOpener(l1), CountingOpener(l2)]
    layers = [LayerSource(diff_id(b), o) for b, o in zip((l1, l2), openers, strict=True)]
    top = unpack_chain(snapshotter, layers)
    assert top == str(chain_ids([la.diff_id for la in layers])[-1])
    assert [o.opened for o in openers] == [1, 1]
    view = snapshotter.view("check", top)
    with mounted(view.mounts, snapshotter.root / "mnt") as root:
        assert sorted(os.listdir(root)) == ["bin"]
        assert Path(root, "bin", "tool").read_bytes() == b"v2"
    snapshotter.remove("check")
    # A second build, and a third image sharing only the first layer: nothing re-applied.
    assert unpack_chain(snapshotter, layers) == top
    assert unpack_chain(snapshotter, layers[:1]) == str(layers[0].diff_id)
    assert [o.opened for o in openers] == [1, 1]
    # Reopening the store (a later build) still finds them.
    assert unpack_chain(Snapshotter(snapshotter.root), layers) == top
    assert [o.opened for o in openers] == [1, 1]
    assert mounts_under(snapshotter.root) == []


@pytest.mark.root
def test_unpack_rejects_wrong_diff_id_and_leaves_nothing(
    snapshotter: Snapshotter, tmp_path: Path
) -> None:
    work = tmp_path / "layers"
    work.mkdir()
    blob = layer_of({"f": b"x"}, work)
    with pytest.raises(DigestMismatch):
        unpack_chain(snapshotter, [LayerSource(Digest.of(b"lie"), lambda: io.BytesIO(blob))])
    assert snapshotter.all() == []
    assert mounts_under(snapshotter.root) == []


def test_chain_ids_follow_the_oci_formula() -> None:
    a, b = Digest.of(b"a"), Digest.of(b"b")
    ids = chain_ids([a, b])
    assert ids[0] == a
    assert ids[1] == Digest.of(f"{a} {b}".encode())
