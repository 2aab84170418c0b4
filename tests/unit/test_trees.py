"""remove_tree: deep trees (which made shutil.rmtree raise RecursionError), trees deeper than
PATH_MAX, read-only directories, and links that must not be followed."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from bale.trees import remove_tree


def _deep(top: Path, levels: int) -> None:
    """`levels` nested directories made relative to a descriptor, as a step's mkdirs may."""
    top.mkdir()
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(levels):
            os.mkdir("d", dir_fd=fd)
            child = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
        with open(os.open("f", os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=fd), "w") as f:
            f.write("x")
    finally:
        os.close(fd)


def test_a_tree_deeper_than_the_recursion_limit_is_removed(tmp_path: Path) -> None:
    top = tmp_path / "t"
    _deep(top, 1500)  # 3,000 bytes of path: below PATH_MAX, above the recursion limit
    with pytest.raises(RecursionError):
        shutil.rmtree(top)
    remove_tree(top)
    assert not top.exists()


def test_a_tree_deeper_than_path_max_is_removed(tmp_path: Path) -> None:
    top = tmp_path / "t"
    _deep(top, 3000)
    remove_tree(top)
    assert not top.exists()


def test_read_only_directories_and_links(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("keep")
    top = tmp_path / "t"
    (top / "ro").mkdir(parents=True)
    (top / "ro" / "file").write_text("x")
    (top / "link").symlink_to(outside)
    (top / "ro").chmod(0o555)
    remove_tree(top)
    assert not top.exists()
    assert (outside / "keep").read_text() == "keep"


def test_missing_path_and_plain_file(tmp_path: Path) -> None:
    remove_tree(tmp_path / "absent")
    (tmp_path / "file").write_text("x")
    remove_tree(tmp_path / "file")
    assert not (tmp_path / "file").exists()
