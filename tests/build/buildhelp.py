"""Helpers for the build tests: run `bale` as a user does, read rawjson progress, inspect
what a build left behind (store contents, mounts, containers, processes)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bale.store.local import Store
from support import busybox_path, require_root, require_tool, stop_process  # noqa: F401 - shared

TESTS = Path(__file__).resolve().parent.parent
REPO = TESTS.parent
EXAMPLES = REPO / "examples"


TWO = ("linux/amd64", "linux/arm64")
PYTHON_BASE = "bale-examples/debian-python:bookworm"
UNAME = {
    "linux/amd64": "x86_64",
    "linux/arm64": "aarch64",
    "linux/arm/v7": "armv7l",
    "linux/s390x": "s390x",
}


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("BALE_DEBUG", "BALE_ROOT")}


def bale(
    root: Path,
    *args: str,
    cwd: Path | None = None,
    check: bool = True,
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    """`bale --root ROOT ARGS...` in a fresh interpreter, from `cwd`; text output."""
    proc = subprocess.run(
        [sys.executable, "-m", "bale", "--root", str(root), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env(),
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"bale {' '.join(args)} exited {proc.returncode}\n"
            f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc


def build(
    root: Path, context: Path, *args: str, platforms: Sequence[str] = TWO, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """`bale build --platform P,... --progress rawjson ARGS .` run inside the context."""
    return bale(
        root,
        "build",
        "--platform",
        ",".join(platforms),
        "--progress",
        "rawjson",
        *args,
        ".",
        cwd=context,
        check=check,
    )


def events(stderr: str) -> list[dict[str, Any]]:
    """The rawjson progress (buildx's SolveStatus lines) among the lines of stderr, as flat
    events: kind "start", "cached", "done", "error" per vertex update, "log" per log line."""
    out: list[dict[str, Any]] = []
    for line in stderr.splitlines():
        if line.startswith("{"):
            out.extend(solve_status_events(json.loads(line)))
    return out


def solve_status_events(status: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for v in status.get("vertexes", []):
        if v.get("cached"):
            kind = "cached"
        elif v.get("error"):
            kind = "error"
        elif v.get("completed"):
            kind = "done"
        else:
            kind = "start"
        out.append(
            {"kind": kind, "vertex": v["digest"], "name": v["name"], "message": v.get("error", "")}
        )
    for log in status.get("logs", []):
        text = base64.b64decode(log["data"]).decode(errors="replace")
        out.append({"kind": "log", "vertex": log["vertex"], "name": "", "message": text})
    return out


def steps(evs: list[dict[str, Any]], kind: str) -> list[str]:
    """Names of the RUN/COPY/ADD vertices with an event of `kind` ("start", "cached")."""
    return [
        e["name"]
        for e in evs
        if e["kind"] == kind and any(f"] {op} " in e["name"] for op in ("RUN", "COPY", "ADD"))
    ]


def example(name: str, dest: Path) -> Path:
    """A copy of examples/NAME at dest, with the busybox fixtures in dest/bin."""
    shutil.copytree(EXAMPLES / name, dest, ignore=shutil.ignore_patterns("bin"))
    subprocess.run([str(REPO / "scripts" / "example-context.sh"), str(dest)], check=True)
    return dest


def index_platforms(root: Path, ref: str) -> list[str]:
    """Platforms `bale images --format json` lists for `ref`."""
    for line in bale(root, "images", "--format", "json").stdout.splitlines():
        row = json.loads(line)
        if f"{row['Repository']}:{row['Tag']}" == ref:
            return sorted(row["Platforms"])
    raise AssertionError(f"{ref} is not listed by bale images")


@dataclass(frozen=True)
class StoreState:
    blobs: frozenset[str]
    images: frozenset[tuple[str, str, str]]  # (mode, name, digest) in both modes


def store_state(root: Path) -> StoreState:
    """Blobs and images; a build's own record (and the logs it pins) is what a failed build
    is meant to leave, so those are not counted."""
    with Store(root) as store:
        kept = {
            str(r[0])
            for r in store.meta.query("SELECT digest FROM pins WHERE owner LIKE 'history:%'")
        }
        blobs = frozenset(str(b.digest) for b in store.content.walk()) - kept
        rows = store.meta.query("SELECT mode, name, digest FROM images")
    return StoreState(blobs, frozenset((str(m), str(n), str(d)) for m, n, d in rows))


def leftovers(root: Path) -> list[str]:
    """What a finished build must not leave: mounts, snapshots being written, step bundles,
    runc containers and processes living under the bale root."""
    found: list[str] = []
    real = os.path.realpath(root)
    for line in Path("/proc/mounts").read_text().splitlines():
        # The mount point, or an overlay's lower/upper directories, under the root.
        if real + "/" in line or line.split()[1] == real:
            found.append(f"mount {line}")
    db = root / "snapshots" / "metadata.db"
    if db.exists():
        with sqlite3.connect(db) as conn:
            for key, kind in conn.execute(
                "SELECT key, kind FROM snapshots WHERE kind != 'committed'"
            ):
                found.append(f"{kind} snapshot {key}")
            known = {str(row[0]) for row in conn.execute("SELECT id FROM snapshots")}
        # A snapshot directory without its record is a leak too.
        found += [
            f"snapshot directory {p}"
            for p in (root / "snapshots").iterdir()
            if p.name.isdigit() and p.name not in known
        ]
    run_dir = root / "executor" / "run"
    if run_dir.exists():
        found += [f"step bundle {p}" for p in run_dir.iterdir()]
    runc = shutil.which("runc")
    state = root / "executor" / "runc"
    if runc and state.exists():
        listing = subprocess.run(
            [runc, "--root", str(state), "list", "-q"], capture_output=True, text=True
        ).stdout.split()
        found += [f"runc container {c}" for c in listing]
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        for link in ("cwd", "root"):
            try:
                where = os.readlink(proc / link)
            except OSError:
                continue
            if where.startswith(real + "/"):
                found.append(f"process {proc.name} with {link} {where}")
    return found


stop = stop_process


def context_dir(tmp_path: Path) -> Path:
    """An empty build context directory."""
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    return ctx


def local_output(root: Path, ctx: Path, out: Path, *extra: str) -> None:
    """Build the context in `ctx` with `-o type=local,dest=out`."""
    bale(root, "build", "--progress", "plain", "-o", f"type=local,dest={out}", *extra, ".", cwd=ctx)
