"""`bale builder prune`: the cache goes, the images stay whole."""

from __future__ import annotations

from pathlib import Path

import pytest
from buildhelp import bale, build, events, example, require_root, steps

pytestmark = pytest.mark.root


def test_prune_drops_the_cache_and_keeps_images(tmp_path: Path) -> None:
    require_root()
    ctx = example("hello", tmp_path / "ctx")
    root = tmp_path / "root"
    one = ("linux/amd64",)
    build(root, ctx, "-t", "hello:1", platforms=one)
    assert steps(events(build(root, ctx, "-t", "hello:1", platforms=one).stderr), "start") == []

    report = bale(root, "builder", "prune").stdout
    assert "Deleted build cache records: 4" in report

    # The image is still complete: it saves, and the store checks clean.
    bale(root, "save", "-o", str(tmp_path / "hello.tar"), "hello:1")
    assert bale(root, "store", "check").returncode == 0
    # The cache is gone: every step runs again, and gives the same layers.
    again = steps(events(build(root, ctx, "-t", "hello:2", platforms=one).stderr), "start")
    assert len(again) == 4
    ids = bale(root, "images", "-q", "--no-trunc", "hello").stdout.split()
    assert len(set(ids)) == 2  # the history times differ; the layers are the same blobs
