"""Helpers for the bake tests: parse definitions from strings and resolve them; run
`bale bake` and read what it built."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from bale.frontends.bake.plan import Plan
from bale.frontends.bake.resolve import BakeFile, Definition, parse_files, read_targets

BUILTINS = {"BAKE_CMD_CONTEXT": "cwd://", "BAKE_LOCAL_PLATFORM": "linux/amd64"}


def parse(*files: tuple[str, str], variables: dict[str, str] | None = None) -> Definition:
    return parse_files([BakeFile(n, t) for n, t in files], builtins=BUILTINS, variables=variables)


def hcl(text: str, **kw: Any) -> Definition:
    return parse(("docker-bake.hcl", text), **kw)


def plan(d: Definition, targets: list[str] | None = None, sets: list[str] | None = None) -> Plan:
    return read_targets(d, targets or [], sets or [], env={})


def printed(d: Definition, targets: list[str] | None = None, sets: list[str] | None = None) -> Any:
    return json.loads(plan(d, targets, sets).print_json())


def target(d: Definition, name: str) -> Any:
    t = d.target(name)
    assert t is not None, name
    return t


# -- building: `bale bake` run as a user does ------------------------------------------------


def bale(
    root: Path, *args: str, cwd: Path, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """`bale --root ROOT ARGS...` in a fresh interpreter, from `cwd`."""
    environ = {k: v for k, v in os.environ.items() if k not in ("BALE_DEBUG", "BALE_ROOT")}
    proc = subprocess.run(
        [sys.executable, "-m", "bale", "--root", str(root), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**environ, **(env or {})},
        timeout=300,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"bale {' '.join(args)} exited {proc.returncode}\n"
            f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc


def started(stderr: str) -> list[tuple[str, str]]:
    """(digest, name) of each vertex rawjson progress shows starting to run."""
    out = []
    for line in stderr.splitlines():
        if line.startswith("{"):
            for v in json.loads(line).get("vertexes", []):
                if v.get("started") and not v.get("completed") and not v.get("cached"):
                    out.append((v["digest"], v["name"]))
    return out


def images(root: Path, cwd: Path) -> dict[str, list[str]]:
    """name:tag -> platforms, as `bale images --format json` lists them."""
    out = {}
    for line in bale(root, "images", "--format", "json", cwd=cwd).stdout.splitlines():
        row = json.loads(line)
        out[f"{row['Repository']}:{row['Tag']}"] = sorted(row["Platforms"])
    return out
