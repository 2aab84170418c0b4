"""Classic (docker driver) store mode: multi-platform builds are refused as Docker does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from buildhelp import (
    bale,
    build,
    events,
    example,
    require_root,
    store_state,
)

from bale.errors import MULTI_PLATFORM_REFUSAL

pytestmark = pytest.mark.root


def test_classic_refuses_multi_platform_before_any_work(tmp_path: Path) -> None:
    require_root()
    context = example("hello", tmp_path / "ctx")
    root = tmp_path / "root"
    bale(root, "store", "use", "classic")
    before = store_state(root)
    proc = build(root, context, "-t", "hello:1", check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == MULTI_PLATFORM_REFUSAL, proc.stderr
    assert events(proc.stderr) == []  # no step even started
    assert store_state(root) == before
    assert "hello" not in bale(root, "images").stdout


def test_classic_single_platform_build_loads_a_plain_image(tmp_path: Path) -> None:
    require_root()
    context = example("hello", tmp_path / "ctx")
    root = tmp_path / "root"
    bale(root, "store", "use", "classic")
    build(root, context, "-t", "hello:1", platforms=("linux/arm64",))
    listing = bale(root, "images").stdout.splitlines()
    assert any(line.split()[:2] == ["hello", "1"] for line in listing), listing
    row = json.loads(bale(root, "images", "--format", "json").stdout.splitlines()[0])
    assert row["MediaType"] != "application/vnd.oci.image.index.v1+json"
    assert row["Platforms"] == ["linux/arm64"]
