"""Every flag listed in docs/buildx-flags.md (buildx build's whole flag set) is known to
`bale build`'s parser, and the refused ones say they are not supported."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bale.cli.build_cmd import request_from_args
from bale.cli.main import build_parser
from bale.errors import InvalidArgument

DOC = Path(__file__).resolve().parents[2] / "docs" / "buildx-flags.md"


def _rows() -> list[tuple[list[str], str]]:
    rows = []
    for line in DOC.read_text().splitlines():
        match = re.match(r"\| (`-.*?) \| (.*) \|$", line)
        if match:
            rows.append((re.findall(r"`(-[-\w]+)`", match.group(1)), match.group(2)))
    return rows


def test_the_doc_lists_buildx_flags() -> None:
    flags = {f for names, _ in _rows() for f in names}
    assert len(_rows()) == 37  # the rows of buildx_build.md
    assert {"--add-host", "--ulimit", "--policy", "--resource", "-D", "--builder"} <= flags


def test_every_listed_flag_is_known() -> None:
    parser = build_parser(["build"])
    sub = next(a for a in parser._actions if a.dest == "command")
    build = sub.choices["build"]  # type: ignore[union-attr]
    known = set(build._option_string_actions)
    missing = [f for names, _ in _rows() for f in names if f not in known]
    assert not missing


@pytest.mark.parametrize(
    "flag", [f for names, what in _rows() if what.startswith("refused") for f in names]
)
def test_refused_flags_say_so(flag: str, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    args = build_parser(["build"]).parse_args(["build", flag, "x", str(tmp_path)])
    with pytest.raises(InvalidArgument, match="not supported by bale"):
        request_from_args(args)


def test_an_unknown_builder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    env = {k: v for k, v in os.environ.items() if k not in ("BALE_BUILDER", "BUILDX_BUILDER")}
    argv = [sys.executable, "-m", "bale", "--root", str(tmp_path / "root"), "build"]
    proc = subprocess.run(
        [*argv, "--builder", "remote", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 1
    assert "no builder 'remote' found" in proc.stderr and "Traceback" not in proc.stderr
