"""Progress as BuildKit shows it: every step's time in an 80-column tty (the command is cut
instead), `[linux/amd64->arm64 …]` labels for a BUILDPLATFORM stage's per-target steps, and
steps stopped by another's failure shown CANCELED."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
from buildhelp import build, env, events, require_tool

pytestmark = pytest.mark.root

LONG = "echo " + "a-long-argument-" * 8


@pytest.mark.root
def test_tty_at_80_columns_keeps_every_time(store_root: Path, tmp_path: Path) -> None:
    tmux = require_tool("tmux")
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM base:1\nRUN {LONG} > /a\nCOPY Dockerfile /d\n")
    done = tmp_path / "done"
    command = (
        " ".join(
            shlex.quote(a)
            for a in (
                sys.executable,
                "-m",
                "bale",
                "--root",
                str(store_root),
                "build",
                "--platform",
                "linux/amd64",
                "--progress",
                "tty",
                "--no-cache",
                str(ctx),
            )
        )
        + f"; echo $? > {done}; sleep 60"
    )
    session = "bale-tty"
    socket = tmp_path / "tmux.sock"  # a server of its own, whatever else runs tmux here
    environment = [f"{k}={v}" for k, v in env().items() if k in ("PATH", "BALE_FIXTURES")]
    subprocess.run(
        [
            tmux,
            "-S",
            str(socket),
            "new-session",
            "-d",
            "-s",
            session,
            "-x",
            "80",
            "-y",
            "30",
            "env",
            *environment,
            "TERM=xterm",
            "sh",
            "-c",
            command,
        ],
        check=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not done.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        screen = subprocess.run(
            [tmux, "-S", str(socket), "capture-pane", "-p", "-t", session],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        subprocess.run([tmux, "-S", str(socket), "kill-server"], check=False)
    assert done.read_text().strip() == "0", screen
    rows = [line for line in screen.splitlines() if line.startswith(" => ")]
    assert rows, screen
    assert len(rows) >= 3, screen
    for row in rows:
        assert len(row) <= 80
        assert re.search(r" \d+\.\ds$", row.rstrip()), f"no time at the end of {row!r}"
    assert any("…" in row and "RUN echo a-long-argument" in row for row in rows), screen


@pytest.mark.root
def test_buildplatform_steps_are_labelled_with_the_target(store_root: Path, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        "FROM --platform=$BUILDPLATFORM base:1 AS build\n"
        "ARG TARGETARCH\n"
        "RUN echo $TARGETARCH > /arch\n"
        "FROM scratch\n"
        "COPY --from=build /arch /arch\n"
    )
    proc = build(store_root, ctx, platforms=("linux/amd64", "linux/arm64"))
    names = {e["name"] for e in events(proc.stderr) if "RUN echo" in e["name"]}
    assert names == {
        "[linux/amd64 build 2/2] RUN echo $TARGETARCH > /arch",
        "[linux/amd64->arm64 build 2/2] RUN echo $TARGETARCH > /arch",
    }, names


@pytest.mark.root
def test_a_step_stopped_by_another_failure_is_canceled(store_root: Path, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        "FROM base:1 AS slow\n"
        "RUN sleep 30\n"
        "FROM base:1 AS fails\n"
        "RUN sleep 1; exit 3\n"
        "FROM scratch\n"
        "COPY --from=slow /etc/passwd /a\n"
        "COPY --from=fails /etc/passwd /b\n"
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bale",
            "--root",
            str(store_root),
            "build",
            "--platform",
            "linux/amd64",
            "--progress",
            "plain",
            "--jobs",
            "2",
            "--no-cache",
            str(ctx),
        ],
        capture_output=True,
        text=True,
        env=env(),
        timeout=120,
    )
    assert proc.returncode == 1
    out = proc.stderr
    slow = re.search(r"^#(\d+) \[slow 2/2\] RUN sleep 30$", out, re.M)
    assert slow, out
    assert f"#{slow.group(1)} CANCELED" in out, out
    assert "exit code: 137" not in out
    assert "exit code: 3" in out.splitlines()[-1], out


@pytest.mark.root
def test_step_names(store_root: Path, tmp_path: Path) -> None:
    # testStepNames: one platform asked for, no platform in the names; FROM counts only for
    # an image; numbers are padded to the total's width.
    def names(dockerfile: str) -> set[str]:
        (tmp_path / "Dockerfile").write_text(dockerfile)
        proc = build(store_root, tmp_path, platforms=("linux/amd64",))
        return {e["name"] for e in events(proc.stderr)}

    upstream = names(
        "FROM base:1 AS base\n"
        "WORKDIR /out\n"
        'RUN echo "base" > base\n'
        "FROM scratch\n"
        "COPY --from=base --chmod=0644 /out /out\n"
    )
    assert {
        "[base 1/3] FROM base:1",
        '[base 3/3] RUN echo "base" > base',
        "[stage-1 1/1] COPY --from=base --chmod=0644 /out /out",
    } <= upstream, upstream
    padded = names("FROM base:1\n" + "".join(f"RUN echo {i}\n" for i in range(9)))
    assert {"[stage-0  1/10] FROM base:1", "[stage-0 10/10] RUN echo 8"} <= padded, padded
