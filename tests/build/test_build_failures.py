"""A failed or interrupted build reports where and why, and leaves the store as it was."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from buildhelp import (
    TWO,
    bale,
    build,
    env,
    events,
    example,
    leftovers,
    require_root,
    store_state,
)

PREFIX = """\
FROM scratch
ARG TARGETARCH
COPY bin/busybox-${TARGETARCH} /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
"""


def _primed(tmp_path: Path, last_steps: str) -> tuple[Path, Path]:
    """(root, context) whose cache holds PREFIX's steps; Dockerfile is PREFIX + last_steps.

    The prefix is built with a local output, so no image exists and every step before the
    last ones is a cache hit: a clean failure then writes nothing at all to the store.
    """
    require_root()
    context = example("hello", tmp_path / "ctx")
    root = tmp_path / "root"
    (context / "Dockerfile.prefix").write_text(PREFIX)
    build(root, context, "-f", "Dockerfile.prefix", "-o", f"type=local,dest={tmp_path / 'out'}")
    (context / "Dockerfile").write_text(PREFIX + last_steps)
    return root, context


def _assert_untouched(root: Path, before: object) -> None:
    assert store_state(root) == before
    check = bale(root, "store", "check", check=False)
    assert check.returncode == 0 and check.stdout.startswith("ok:"), check.stdout + check.stderr
    assert leftovers(root) == []


@pytest.mark.root
def test_failing_run_shows_its_lines_and_exit_code(tmp_path: Path) -> None:
    root, context = _primed(tmp_path, "RUN echo about to fail && \\\n    exit 3\nRUN true\n")
    before = store_state(root)
    proc = build(root, context, "-t", "fails:1", check=False)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "Dockerfile:5-6" in proc.stderr
    assert ">>> RUN echo about to fail && \\" in proc.stderr
    assert ">>>     exit 3" in proc.stderr
    assert "exit code: 3" in proc.stderr
    evs = events(proc.stderr)
    assert [e for e in evs if e["kind"] == "error" and "exit 3" in e["name"]]
    assert not [e for e in evs if e["kind"] == "start" and "RUN true" in e["name"]]
    _assert_untouched(root, before)
    assert "fails" not in bale(root, "images").stdout


@pytest.mark.root
def test_sigint_mid_step_cleans_up_and_exits_130(tmp_path: Path) -> None:
    root, context = _primed(tmp_path, "RUN sleep 30\n")
    before = store_state(root)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bale",
            "--root",
            str(root),
            "build",
            "--platform",
            ",".join(TWO),
            "--progress",
            "rawjson",
            "-t",
            "interrupted:1",
            ".",
        ],
        cwd=context,
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A shell may have started us with SIGINT ignored; the build must see it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert proc.stderr is not None
    seen: list[str] = []
    try:
        started = 0
        for line in proc.stderr:
            seen.append(line)
            if any(e["kind"] == "start" and "RUN sleep 30" in e["name"] for e in events(line)):
                started += 1
                if started == len(TWO):
                    break
        assert started == len(TWO), "".join(seen)
        time.sleep(0.5)  # the step's process is running now
        proc.send_signal(signal.SIGINT)
        _, rest = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = "".join(seen) + rest
    assert proc.returncode == 130, output
    assert "Traceback" not in output
    # The sleeping steps were stopped, not waited for: neither ran to its end.
    assert not [e for e in events(rest) if e["kind"] == "done" and "sleep" in e["name"]]
    _assert_untouched(root, before)
    assert "interrupted" not in bale(root, "images").stdout
    # The build's record says so: canceled, its running steps too.
    record = json.loads(bale(root, "history", "inspect", "--format", "json").stdout)
    assert record["status"] == "canceled"
    assert {s["status"] for s in record["steps"] if "sleep 30" in s["name"]} == {"canceled"}


@pytest.mark.root
def test_one_failing_platform_stops_the_others(tmp_path: Path) -> None:
    # amd64 fails after a moment, so that the arm64 step is surely running by then.
    root, context = _primed(
        tmp_path,
        'RUN if [ "$(uname -m)" = x86_64 ]; then sleep 3; exit 5; else sleep 30; fi\nRUN true\n',
    )
    before = store_state(root)
    proc = build(root, context, "-t", "fails:1", check=False)
    assert proc.returncode == 1, proc.stderr
    assert "exit code: 5" in proc.stderr
    evs = events(proc.stderr)
    sleeping = [e for e in evs if "[linux/arm64" in e["name"] and "sleep 30" in e["name"]]
    # The arm64 step started, then was stopped with the build instead of running to its end.
    assert [e["kind"] for e in sleeping if e["kind"] in ("start", "done", "cached")] == ["start"]
    assert not [e for e in evs if e["kind"] == "start" and "RUN true" in e["name"]]
    _assert_untouched(root, before)
    # In the record: amd64's step failed with its exit code, arm64's was stopped.
    record = json.loads(bale(root, "history", "inspect", "--format", "json").stdout)
    ran = {s["platform"]: s for s in record["steps"] if "sleep 30" in s["name"]}
    assert ran["linux/amd64"]["status"] == "error" and ran["linux/amd64"]["exit_code"] == 5
    assert ran["linux/arm64"]["status"] == "canceled"


@pytest.mark.parametrize(
    ("dockerfile", "line", "marker"),
    [
        ("FROM scratch\nFROBNICATE x\n", 2, ">>> FROBNICATE x"),
        ("FROM scratch\nCOPY a b\n\nRUNN true\n", 4, ">>> RUNN true"),
    ],
    ids=["unknown-instruction", "typo-after-blank-line"],
)
def test_dockerfile_error_names_the_line(
    tmp_path: Path, dockerfile: str, line: int, marker: str
) -> None:
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(dockerfile)
    root = tmp_path / "root"
    proc = build(root, context, "-t", "bad:1", check=False)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert f"Dockerfile:{line}\n" in proc.stderr, proc.stderr
    assert marker in proc.stderr
    assert "unknown instruction" in proc.stderr
    assert events(proc.stderr) == []
