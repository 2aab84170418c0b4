"""apply(diff(a -> b)) onto a reproduces b exactly; the diff is the same bytes every time."""

from __future__ import annotations

import gzip
import io
import os
import shutil
import subprocess
import tarfile
import uuid
from pathlib import Path

import pytest
import zstandard
from exechelp import tree_state
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bale.mounts import mount, unmount
from bale.oci import Digest
from bale.oci.mediatype import OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD
from bale.store.compression import sniff as detect
from bale.store.layers import DiffOptions, apply_layer, diff_trees, diff_upperdir

# Few names, so edits often meet what the base tree already has.
NAMES = st.sampled_from(["a", "b", "c.txt"])
PATHS = st.one_of(
    NAMES,
    st.tuples(NAMES, NAMES).map("/".join),
    st.tuples(NAMES, NAMES, NAMES).map("/".join),
)
CONTENT = st.sampled_from([b"", b"x", b"hello\n", b"\0" * 700, bytes(range(256)) * 9])
OPS = st.one_of(
    st.tuples(st.just("write"), PATHS, CONTENT),
    st.tuples(st.just("mkdir"), PATHS),
    st.tuples(st.just("symlink"), PATHS, st.sampled_from(["a", "../b", "/a/c.txt", "nowhere"])),
    st.tuples(st.just("link"), PATHS, PATHS),
    st.tuples(st.just("rm"), PATHS),
    st.tuples(st.just("chmod"), PATHS, st.sampled_from([0o600, 0o755, 0o4755, 0o1777, 0o400])),
    st.tuples(st.just("chown"), PATHS, st.sampled_from([0, 1000, 65534]), st.sampled_from([0, 50])),
    st.tuples(st.just("xattr"), PATHS, st.sampled_from([b"1", b"two", b"\xff\x00bin"])),
)
OP_LISTS = st.lists(OPS, max_size=25)
FIXTURE_CHECK = HealthCheck.function_scoped_fixture  # tmp_path is shared; each example mkdirs


def apply_ops(root: Path, ops: list[tuple[object, ...]]) -> None:
    """Apply random edits, skipping the ones that make no sense for the tree at hand."""
    for op in ops:
        kind, rel = op[0], str(op[1])
        path = root / rel
        try:
            if kind == "write":
                assert isinstance(op[2], bytes)
                if path.is_symlink() or path.is_dir():
                    continue
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(op[2])
            elif kind == "mkdir":
                path.mkdir(parents=True, exist_ok=True)
            elif kind == "symlink":
                if os.path.lexists(path):
                    continue
                path.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(str(op[2]), path)
            elif kind == "link":
                source = root / str(op[2])
                if os.path.lexists(path) or not source.is_file() or source.is_symlink():
                    continue
                path.parent.mkdir(parents=True, exist_ok=True)
                os.link(source, path)
            elif kind == "rm":
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                elif os.path.lexists(path):
                    path.unlink()
            elif kind == "chmod":
                if os.path.lexists(path) and not path.is_symlink():
                    os.chmod(path, int(str(op[2])))
            elif kind == "chown":
                if os.path.lexists(path):
                    os.lchown(path, int(str(op[2])), int(str(op[3])))
            elif kind == "xattr" and os.path.lexists(path) and not path.is_symlink():
                assert isinstance(op[2], bytes)
                os.setxattr(path, "user.test", op[2])
        except OSError:  # edits that make no sense here (loops, files as parents)
            continue


def copy_tree(source: Path, dest: Path) -> None:
    subprocess.run(["cp", "-a", str(source), str(dest)], check=True)


def require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (owners, overlay mounts)")


@pytest.mark.root
@settings(max_examples=50, deadline=None, suppress_health_check=[FIXTURE_CHECK])
@given(base=OP_LISTS, edits=OP_LISTS)
def test_tree_diff_round_trip(
    tmp_path: Path, base: list[tuple[object, ...]], edits: list[tuple[object, ...]]
) -> None:
    require_root()
    work = tmp_path / uuid.uuid4().hex
    a, b, target = work / "a", work / "b", work / "target"
    a.mkdir(parents=True)
    apply_ops(a, base)
    copy_tree(a, b)
    apply_ops(b, edits)
    copy_tree(a, target)
    sink = io.BytesIO()
    blob = diff_trees(a, b, sink, DiffOptions())
    sink.seek(0)
    result = apply_layer(sink, target, expect_diff_id=blob.diff_id)
    assert result.compression == "gzip"
    assert tree_state(target) == tree_state(b)
    # Same trees, same bytes.
    again = io.BytesIO()
    assert diff_trees(a, b, again, DiffOptions()) == blob
    assert again.getvalue() == sink.getvalue()
    shutil.rmtree(work)


@pytest.mark.root
@settings(max_examples=50, deadline=None, suppress_health_check=[FIXTURE_CHECK])
@given(base=OP_LISTS, edits=OP_LISTS)
def test_overlay_upperdir_round_trip(
    tmp_path: Path, base: list[tuple[object, ...]], edits: list[tuple[object, ...]]
) -> None:
    """Edits made through a real overlay mount; its upperdir alone gives the layer."""
    require_root()
    work = tmp_path / uuid.uuid4().hex
    lower, upper, wdir, merged, target = (work / n for n in ("l", "u", "w", "m", "t"))
    for d in (lower, upper, wdir, merged):
        d.mkdir(parents=True)
    apply_ops(lower, base)
    copy_tree(lower, target)
    mount(
        "overlay",
        str(merged),
        "overlay",
        0,
        f"lowerdir={lower},upperdir={upper},workdir={wdir},index=off",
    )
    try:
        apply_ops(merged, edits)
        expected = tree_state(merged)
    finally:
        unmount(str(merged))
    sink = io.BytesIO()
    blob = diff_upperdir(upper, sink, DiffOptions(compression="zstd"))
    sink.seek(0)
    apply_layer(sink, target, expect_diff_id=blob.diff_id)
    assert tree_state(target) == expected
    shutil.rmtree(work)


@pytest.mark.root
def test_overlay_opaque_directory_becomes_oci_opaque_marker(tmp_path: Path) -> None:
    require_root()
    lower, upper, wdir, merged = (tmp_path / n for n in ("l", "u", "w", "m"))
    for d in (lower, upper, wdir, merged):
        d.mkdir()
    (lower / "dir").mkdir()
    (lower / "dir" / "old").write_text("old")
    (lower / "gone").write_text("x")
    mount(
        "overlay",
        str(merged),
        "overlay",
        0,
        f"lowerdir={lower},upperdir={upper},workdir={wdir},index=off",
    )
    try:
        shutil.rmtree(merged / "dir")
        (merged / "dir").mkdir()
        (merged / "dir" / "new").write_text("new")
        (merged / "gone").unlink()
    finally:
        unmount(str(merged))
    sink = io.BytesIO()
    diff_upperdir(upper, sink, DiffOptions(compression=""))
    with tarfile.open(fileobj=io.BytesIO(sink.getvalue())) as tar:
        names = tar.getnames()
    assert names == ["dir", "dir/.wh..wh..opq", "dir/new", ".wh.gone"] or set(names) == {
        "dir",
        "dir/.wh..wh..opq",
        "dir/new",
        ".wh.gone",
    }
    target = tmp_path / "t"
    copy_tree(lower, target)
    sink.seek(0)
    apply_layer(sink, target)
    assert sorted(os.listdir(target)) == ["dir"]
    assert sorted(os.listdir(target / "dir")) == ["new"]


def test_compressions_and_media_types(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc" / "f").write_bytes(b"data" * 10000)
    results = {}
    for compression, media_type in (
        ("gzip", OCI_LAYER_GZIP),
        ("zstd", OCI_LAYER_ZSTD),
        ("", OCI_LAYER),
    ):
        sink = io.BytesIO()
        blob = diff_trees(None, tree, sink, DiffOptions(compression=compression))
        data = sink.getvalue()
        assert blob.media_type == media_type
        assert blob.size == len(data)
        assert blob.digest == Digest.of(data)
        assert detect(data[:4]) == compression
        if compression == "gzip":
            plain = gzip.decompress(data)
        elif compression == "zstd":
            plain = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read()
        else:
            plain = data
        assert blob.diff_id == Digest.of(plain)
        results[compression] = blob.diff_id
    assert len(set(results.values())) == 1  # the same tar under every compression


def test_gzip_output_does_not_depend_on_threads(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    for i in range(4):
        (tree / f"f{i}").write_bytes(os.urandom(700_000) + b"\0" * 900_000)
    outputs = set()
    for threads in (1, 2, 4):
        sink = io.BytesIO()
        diff_trees(None, tree, sink, DiffOptions(threads=threads))
        outputs.add(sink.getvalue())
    assert len(outputs) == 1


def test_source_date_epoch_clamps_and_owners_are_numeric(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "new").write_text("x")
    os.utime(tree / "new", (2_000_000_000, 2_000_000_000))
    (tree / "old").write_text("y")
    os.utime(tree / "old", (1_000, 1_000))
    sink = io.BytesIO()
    diff_trees(None, tree, sink, DiffOptions(compression="", source_date_epoch=1_500_000_000))
    with tarfile.open(fileobj=io.BytesIO(sink.getvalue())) as tar:
        members = {m.name: m for m in tar}
    assert members["new"].mtime == 1_500_000_000
    assert members["old"].mtime == 1_000
    assert all(m.uname == "" and m.gname == "" for m in members.values())


@pytest.mark.root
def test_devices_fifos_and_setuid_survive(tmp_path: Path) -> None:
    require_root()
    tree = tmp_path / "tree"
    tree.mkdir()
    os.mknod(tree / "null", 0o666 | 0o020000, os.makedev(1, 3))
    os.mkfifo(tree / "fifo", 0o640)
    (tree / "suid").write_text("#!/bin/sh\n")
    os.chown(tree / "suid", 1000, 1000)
    os.chmod(tree / "suid", 0o4755)
    sink = io.BytesIO()
    diff_trees(None, tree, sink, DiffOptions())
    target = tmp_path / "target"
    target.mkdir()
    sink.seek(0)
    apply_layer(sink, target)
    assert tree_state(target) == tree_state(tree)
    assert os.stat(target / "suid").st_mode & 0o4000


def test_wrong_diff_id_and_garbage_are_clear_errors(tmp_path: Path) -> None:
    from bale.errors import DigestMismatch, InvalidArgument

    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "f").write_text("x")
    sink = io.BytesIO()
    diff_trees(None, tree, sink, DiffOptions())
    target = tmp_path / "target"
    target.mkdir()
    sink.seek(0)
    with pytest.raises(DigestMismatch):
        apply_layer(sink, target, expect_diff_id=Digest.of(b"something else"))
    with pytest.raises(InvalidArgument):
        apply_layer(io.BytesIO(b"\x1f\x8bnot gzip at all" * 10), target)
    with pytest.raises(InvalidArgument):
        apply_layer(io.BytesIO(sink.getvalue()[:40]), target)


def _round_trip(tmp_path: Path, build_a: object, edit_b: object) -> None:
    a, b, target = tmp_path / "a", tmp_path / "b", tmp_path / "target"
    a.mkdir()
    assert callable(build_a) and callable(edit_b)
    build_a(a)
    copy_tree(a, b)
    edit_b(b)
    copy_tree(a, target)
    sink = io.BytesIO()
    diff_trees(a, b, sink, DiffOptions())
    sink.seek(0)
    apply_layer(sink, target)
    assert tree_state(target) == tree_state(b)


def test_new_hardlink_to_unchanged_file_keeps_the_link(tmp_path: Path) -> None:
    def build(a: Path) -> None:
        (a / "x").write_text("shared")

    def edit(b: Path) -> None:
        os.link(b / "x", b / "y")

    _round_trip(tmp_path, build, edit)
    assert os.stat(tmp_path / "target" / "x").st_ino == os.stat(tmp_path / "target" / "y").st_ino


def test_type_changes_and_removed_xattrs(tmp_path: Path) -> None:
    def build(a: Path) -> None:
        (a / "dir").mkdir()
        (a / "dir" / "inner").write_text("1")
        (a / "file").write_text("2")
        (a / "link").symlink_to("file")
        (a / "attrs").mkdir()
        os.setxattr(a / "attrs", "user.k", b"v")

    def edit(b: Path) -> None:
        shutil.rmtree(b / "dir")
        (b / "dir").write_text("now a file")
        (b / "file").unlink()
        (b / "file").mkdir()
        (b / "file" / "child").write_text("3")
        (b / "link").unlink()
        (b / "link").symlink_to("/elsewhere")
        os.removexattr(b / "attrs", "user.k")

    _round_trip(tmp_path, build, edit)


def test_missing_trees_are_clear_errors(tmp_path: Path) -> None:
    from bale.errors import InvalidArgument, NotFound

    with pytest.raises(NotFound, match="not a directory"):
        diff_trees(None, tmp_path / "nope", io.BytesIO(), DiffOptions())
    with pytest.raises(NotFound):
        diff_upperdir(tmp_path / "nope", io.BytesIO(), DiffOptions())
    with pytest.raises(InvalidArgument, match="unknown layer compression"):
        diff_trees(None, tmp_path, io.BytesIO(), DiffOptions(compression="lz4"))
