"""Several `bale build` processes on one store at once: all succeed, the store stays whole."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from buildhelp import bale, env, example, require_root

pytestmark = pytest.mark.root


def test_concurrent_builds_share_one_store(tmp_path: Path) -> None:
    require_root()
    ctx = example("hello", tmp_path / "ctx")
    root = tmp_path / "root"
    runs = [
        ("-t", "a:1", "--platform", "linux/amd64,linux/arm64"),
        ("-t", "b:1", "--platform", "linux/amd64,linux/arm64"),
        ("-t", "c:1", "--platform", "linux/arm64", "--no-cache"),
    ]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bale",
                "--root",
                str(root),
                "build",
                "--progress",
                "plain",
                *args,
                str(ctx),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env(),
        )
        for args in runs
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    assert bale(root, "store", "check").returncode == 0
    names = bale(root, "images", "--format", "json").stdout
    for name in ("a", "b", "c"):
        assert f'"Repository": "{name}"' in names
    # Every image is complete: each saves with all its blobs.
    for name in ("a:1", "b:1", "c:1"):
        bale(root, "save", "-o", str(tmp_path / f"{name}.tar"), name)
