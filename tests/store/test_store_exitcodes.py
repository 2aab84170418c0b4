"""The documented exit codes (docs/exit-codes.md): 0, 1, 2 and 130."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from storehelp import bale, state

from bale.cli import exitcodes


def test_codes_match_the_documentation() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "exit-codes.md").read_text()
    for code in (exitcodes.OK, exitcodes.ERROR, exitcodes.USAGE, exitcodes.INTERRUPTED):
        assert f"| {code} |" in doc


def test_ok_error_and_usage(root: Path) -> None:
    assert bale(root, "images").returncode == 0
    missing = bale(root, "image", "inspect", "demo/nope:1", check=False)
    assert missing.returncode == 1
    assert missing.stderr == "ERROR: No such image: demo/nope:1\n"
    for args in (("no-such-command",), ("images", "--bogus"), ("store", "use", "other")):
        proc = bale(root, *args, check=False)
        assert proc.returncode == 2, args
        assert "usage: bale" in proc.stderr and "Traceback" not in proc.stderr


def test_interrupt_exits_130_and_leaves_the_store_alone(root: Path) -> None:
    bale(root, "images")
    before = state(root)
    env = {k: v for k, v in os.environ.items() if k not in ("BALE_DEBUG", "BALE_ROOT")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bale", "--root", str(root), "load"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdin is not None
    # Part of a member, then silence: the load is ingesting it when it is interrupted.
    member = tarfile.TarInfo("blobs/sha256/" + "0" * 64)
    member.size = 10 << 20
    proc.stdin.write(member.tobuf(format=tarfile.PAX_FORMAT) + b"x" * (1 << 20))
    proc.stdin.flush()
    with_ingest = root / "content" / "ingest"
    deadline = time.monotonic() + 60
    while not (with_ingest.exists() and any(with_ingest.iterdir())):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == exitcodes.INTERRUPTED, err
    assert err.decode().strip() == "ERROR: interrupted"
    assert state(root) == before
    assert not any(with_ingest.iterdir())  # the interrupted ingest was aborted
