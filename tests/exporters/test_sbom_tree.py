"""The merged layer view: overlay semantics, reading only what is asked, hostile layers."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from pathlib import Path

from sbomhelp import F, Layers, compress, debian_layer, tar_bytes

from bale.exporters.sbom import DirectoryTree, LayeredTree, Limits, scan
from bale.exporters.sbom.tree import read_capped


def contents(tree: LayeredTree, *paths: str) -> dict[str, bytes]:
    entries = [e for p in paths if (e := tree.resolve(p)) is not None]
    return {e.path: read_capped(s, 1 << 20) or b"" for e, s in tree.open_each(entries)}


def test_newest_layer_wins_and_whiteouts_delete() -> None:
    layers = (
        Layers()
        .add(
            [F("etc/motd", b"old"), F("opt/app/a", b"a"), F("opt/app/b", b"b"), F("srv/x/y", b"y")]
        )
        .add([F("etc/motd", b"new"), F("opt/app/.wh.a"), F("srv/.wh.x")], how="zstd")
        .add([F("opt/app/c", b"c")], how="plain")
    )
    tree = LayeredTree(layers.openers())
    assert contents(tree, "etc/motd") == {"etc/motd": b"new"}
    assert tree.get("opt/app/a") is None
    assert tree.get("opt/app/b") is not None and tree.get("opt/app/c") is not None
    # Whiting out a directory deletes what is under it.
    assert tree.get("srv/x") is None and tree.get("srv/x/y") is None
    assert tree.problems == []


def test_an_opaque_directory_hides_only_lower_layers() -> None:
    layers = (
        Layers()
        .add([F("data/old", b"1"), F("data/sub/deep", b"2")])
        .add([F("data/.wh..wh..opq"), F("data/new", b"3")])
    )
    tree = LayeredTree(layers.openers())
    assert sorted(e.path for e in tree.entries() if e.kind == "file") == ["data/new"]


def test_a_file_over_a_directory_hides_its_contents() -> None:
    layers = Layers().add([F("x/inner", b"1")]).add([F("x", b"now a file")])
    tree = LayeredTree(layers.openers())
    assert tree.get("x/inner") is None
    assert contents(tree, "x") == {"x": b"now a file"}


def test_symlinks_resolve_across_layers_and_hard_links_share_content() -> None:
    layers = (
        Layers()
        .add(debian_layer())
        .add(
            [
                F("usr/lib/python3", kind="dir"),
                F("etc/alias", kind="hardlink", link="usr/lib/os-release"),
            ]
        )
    )
    tree = LayeredTree(layers.openers())
    os_release = tree.resolve("etc/os-release")
    assert os_release is not None and os_release.path == "usr/lib/os-release"
    # Through the merged-/usr link in a middle component too.
    assert tree.resolve("lib/os-release") == os_release
    assert contents(tree, "etc/alias")["etc/alias"].startswith(b'PRETTY_NAME="Debian')


def test_only_layers_holding_requested_files_are_read_again() -> None:
    layers = Layers().add([F("a", b"1")]).add([F("b", b"2")]).add([F("c", b"3")])
    tree = LayeredTree(layers.openers())
    list(tree.entries())
    assert layers.opens == [1, 1, 1]
    assert contents(tree, "b") == {"b": b"2"}
    assert layers.opens == [1, 2, 1]


def test_symlink_loops_resolve_to_nothing() -> None:
    layers = Layers().add(
        [
            F("etc/os-release", kind="symlink", link="os-release.d"),
            F("etc/os-release.d", kind="symlink", link="/etc/os-release"),
            F("loop", kind="symlink", link="loop/x"),
        ]
    )
    tree = LayeredTree(layers.openers())
    assert tree.resolve("etc/os-release") is None
    assert tree.resolve("loop/x/y") is None
    assert scan(tree).packages == ()


class Zeros:
    """`size` zero bytes, produced as they are read."""

    def __init__(self, size: int) -> None:
        self.left = size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        self.left -= n
        return bytes(n)


def big_layer(size: int) -> bytes:
    """A gzip layer with one file of `size` zero bytes, streamed (never held whole)."""
    buf = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w|") as tf,
    ):
        info = tarfile.TarInfo("var/lib/dpkg/status")
        info.size = size
        tf.addfile(info, Zeros(size))  # type: ignore[arg-type]
    return buf.getvalue()


def test_hostile_layers_cost_a_problem_not_a_crash() -> None:
    good = Layers().add(debian_layer()).blobs[0]
    truncated = compress(tar_bytes([F("opt/x", os.urandom(200_000))]), "gzip")
    truncated = truncated[: len(truncated) // 2]
    deep = "/".join(["d"] * 400) + "/file"
    long_name = "n" * 6000
    hostile = tar_bytes(
        [
            F("../../escape", b"normalised, never outside the tree"),
            F(deep, b"deep"),
            F(long_name, b"long"),
            F(
                "usr/lib/python3/dist-packages/x.dist-info/METADATA",
                b"Name: x\nVersion: 1\n",
                pax={"comment": "c" * 20000},
            ),
        ]
    )
    layers = (
        Layers()
        .add_blob(good)
        .add_blob(truncated)
        .add_blob(b"this is not a tar stream at all" * 100)
        .add_blob(compress(hostile, "gzip"))
        .add_blob(big_layer(8 << 20))  # a status file over the cap replaces the real one
    )
    limits = Limits(max_depth=256, max_path=4096, max_header=4096, max_file=1 << 20)
    tree = LayeredTree(layers.openers(), limits=limits)
    result = scan(tree, limits=limits)
    problems = "\n".join(result.problems)
    assert "layer 1:" in problems  # truncated gzip
    assert "layer 2:" in problems  # not a tar
    assert "layer 3:" in problems  # the oversized extended header ends that layer
    assert "skipped a path" in problems
    assert "/var/lib/dpkg/status: larger than 1048576 bytes, skipped" in problems
    assert tree.get("escape") is not None
    assert not any(".." in e.path.split("/") for e in tree.entries())
    assert not any(p.kind == "deb" for p in result.packages)
    # What was readable before the damage still counts.
    assert tree.get("usr/share/doc/bash/copyright") is not None


def test_the_layer_budget_stops_a_decompression_bomb() -> None:
    layers = Layers().add_blob(big_layer(32 << 20)).add([F("etc/hostname", b"ok")])
    tree = LayeredTree(layers.openers(), limits=Limits(max_layer_bytes=4 << 20))
    assert tree.get("etc/hostname") is not None
    assert any("stopped after 4194304 bytes" in p for p in tree.problems)


def test_a_directory_tree_scans_without_following_links(tmp_path: Path) -> None:
    pkg = tmp_path / "node_modules" / "left-pad"
    pkg.mkdir(parents=True)
    (pkg / "package.json").write_text(
        '{"name": "left-pad", "version": "1.3.0", "license": "WTFPL"}'
    )
    (tmp_path / "node_modules" / "loop").symlink_to("loop")
    (tmp_path / "node_modules" / "outside").symlink_to("/etc")
    result = scan(DirectoryTree(tmp_path))
    assert [p.purl for p in result.packages] == ["pkg:npm/left-pad@1.3.0"]
    assert DirectoryTree(tmp_path).resolve("node_modules/loop/x") is None


def test_hard_links_to_one_file_are_read_once_without_error() -> None:
    layers = Layers().add(
        [F("bin/a", b"x" * 2000, mode=0o755), F("bin/b", kind="hardlink", link="bin/a", mode=0o755)]
    )
    tree = LayeredTree(layers.openers())
    a, b = tree.get("bin/a"), tree.get("bin/b")
    assert a is not None and b is not None and (a.layer, a.member) == (b.layer, b.member)
    read = [(e.path, len(read_capped(s, 1 << 20) or b"")) for e, s in tree.open_each([a, b])]
    assert read == [("bin/a", 2000)]
    assert tree.problems == []
