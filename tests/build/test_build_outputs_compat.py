"""Output and ID details buildx users script against: --load / type=docker without dest,
the image ID in the classic store, SOURCE_DATE_EPOCH as a build-arg, tags checked first."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from buildhelp import bale, build, events, example, require_root, steps

pytestmark = pytest.mark.root


def test_type_docker_without_dest_loads_the_image(tmp_path: Path) -> None:
    require_root()
    ctx = example("hello", tmp_path / "ctx")
    root = tmp_path / "root"
    for args, name in ((("-o", "type=docker"), "dk:1"), (("--load",), "ld:1")):
        proc = bale(
            root,
            "build",
            "--progress",
            "quiet",
            "--platform",
            "linux/amd64",
            *args,
            "-t",
            name,
            str(ctx),
        )
        assert proc.stdout == ""  # nothing written to stdout: the image went to the store
        assert json.loads(bale(root, "images", "--format", "json", name).stdout)["Tag"] == "1"


def test_classic_store_ids_are_config_digests(tmp_path: Path) -> None:
    require_root()
    ctx = example("hello", tmp_path / "ctx")
    root = tmp_path / "root"
    bale(root, "store", "use", "classic")
    iid = tmp_path / "iid"
    quiet = bale(
        root,
        "build",
        "--platform",
        "linux/amd64",
        "-q",
        "-t",
        "cl:1",
        "--iidfile",
        str(iid),
        str(ctx),
    ).stdout.strip()
    listed = bale(root, "images", "-q", "--no-trunc").stdout.split()
    inspected = json.loads(bale(root, "image", "inspect", "cl:1").stdout)[0]["Id"]
    assert quiet == iid.read_text() == listed[0] == inspected
    # The ID is the config's digest, and every command takes it, as `docker rmi $(cat iid)`.
    rmi = bale(root, "rmi", iid.read_text()).stdout
    assert f"Deleted: {quiet}" in rmi


def test_source_date_epoch_build_arg_sets_times(tmp_path: Path) -> None:
    require_root()
    ctx = example("hello", tmp_path / "ctx")
    root = tmp_path / "root"
    bale(
        root,
        "build",
        "--progress",
        "quiet",
        "--platform",
        "linux/amd64",
        "--build-arg",
        "SOURCE_DATE_EPOCH=1700000000",
        "-t",
        "sde:1",
        str(ctx),
    )
    data = json.loads(bale(root, "image", "inspect", "sde:1").stdout)[0]
    assert data["Created"] == "2023-11-14T22:13:20Z"
    assert {h["created"] for h in data["History"][:1]} <= {"2023-11-14T22:13:20Z"}


def test_a_bad_tag_is_refused_before_any_step(tmp_path: Path) -> None:
    require_root()
    ctx = example("hello", tmp_path / "ctx")
    proc = build(tmp_path / "root", ctx, "-t", "UPPER:1", check=False)
    assert proc.returncode == 1 and "invalid tag 'UPPER:1'" in proc.stderr
    assert steps(events(proc.stderr), "start") == []
