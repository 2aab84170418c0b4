"""Hostile Dockerfiles that once became `internal error` (an overflow, a recursion) or a hang:
each is now a located error naming the line, or builds, through the CLI as a user runs it."""

from __future__ import annotations

from pathlib import Path

import pytest
from buildhelp import bale

# (Dockerfile, what the error says, the line it names); None: the file builds.
CASES: dict[str, tuple[str, str | None, int]] = {
    "tmpfs-size": (
        "FROM scratch\nRUN --mount=type=tmpfs,size=" + "9" * 400 + "k true\n",
        "value out of range",
        2,
    ),
    "healthcheck-start-interval": (
        "FROM scratch\nHEALTHCHECK --start-interval=" + "9" * 400 + "s CMD true\n",
        "invalid duration",
        2,
    ),
    "healthcheck-retries": (
        "FROM scratch\nHEALTHCHECK --retries=" + "9" * 400 + " CMD true\n",
        "value out of range",
        2,
    ),
    "nested-substitutions": (
        "FROM scratch\nARG a=1\nENV b=" + "${a:-" * 300 + "x" + "}" * 300 + "\n",
        "nested more than 100 deep",
        3,
    ),
    "workdir-too-long": (
        "FROM scratch\nWORKDIR /" + "a/" * 5000 + "\n",
        "file name too long",
        2,
    ),
    "thousand-chained-stages": (
        "FROM scratch AS s0\n" + "".join(f"FROM s{i} AS s{i + 1}\n" for i in range(1000)),
        None,
        0,
    ),
    "deep-but-fine-substitutions": (
        "FROM scratch\nARG a=1\nENV b=" + "${a:-" * 90 + "x" + "}" * 90 + "\n",
        None,
        0,
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_dockerfile_is_a_located_error(name: str, tmp_path: Path) -> None:
    text, message, line = CASES[name]
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(text)
    proc = bale(
        tmp_path / "root", "build", "--progress", "plain", str(ctx), check=False, timeout=60
    )
    assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr
    if message is None:
        assert proc.returncode == 0, proc.stderr[-2000:]
        return
    assert proc.returncode == 1
    assert message in proc.stderr
    assert f"Dockerfile:{line}\n" in proc.stderr
