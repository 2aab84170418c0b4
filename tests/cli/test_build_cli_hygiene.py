"""`bale build`'s command line as buildx's: no abbreviations, unknown flags named with the
subcommand's usage, --progress none / BUILDKIT_PROGRESS, --secret env detection, and every
output path checked before any step."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bale.cli.build_run import parse_secret
from bale.errors import InvalidArgument


def _bale(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("BALE_DEBUG", "BUILDKIT_PROGRESS")}
    return subprocess.run(
        [sys.executable, "-m", "bale", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**base, **(env or {})},
        timeout=300,
    )


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY Dockerfile /\n")
    return ctx


def test_abbreviated_flag_is_unknown_with_build_usage(ctx: Path, tmp_path: Path) -> None:
    proc = _bale("--root", str(tmp_path / "r"), "build", "--plat", "linux/amd64", ".", cwd=ctx)
    assert proc.returncode == 2
    assert "usage: bale build" in proc.stderr
    assert "unknown flag: --plat" in proc.stderr


def test_flag_value_is_not_taken_as_the_context(ctx: Path, tmp_path: Path) -> None:
    proc = _bale(
        "--root",
        str(tmp_path / "r"),
        "build",
        "--cache-from",
        "type=local,src=x",
        "--call",
        "targets",
        ".",
        cwd=ctx,
    )
    assert proc.returncode == 0, proc.stderr
    proc = _bale(
        "--root",
        str(tmp_path / "r"),
        "build",
        "--cache-from",
        "type=local,src=x",
        "--bogus",
        ".",
        cwd=ctx,
    )
    assert proc.returncode == 2 and "unknown flag: --bogus" in proc.stderr
    assert "usage: bale build" in proc.stderr


def test_progress_from_buildkit_progress(ctx: Path, tmp_path: Path) -> None:
    proc = _bale(
        "--root", str(tmp_path / "r"), "build", ".", cwd=ctx, env={"BUILDKIT_PROGRESS": "bogus"}
    )
    assert proc.returncode == 1 and "BUILDKIT_PROGRESS" in proc.stderr
    proc = _bale("--root", str(tmp_path / "r"), "build", "--progress", "fancy", ".", cwd=ctx)
    assert proc.returncode == 1 and "'fancy' from --progress" in proc.stderr


@pytest.mark.root
def test_progress_none_and_env(ctx: Path, tmp_path: Path) -> None:
    proc = _bale(
        "--root", str(tmp_path / "r"), "build", ".", cwd=ctx, env={"BUILDKIT_PROGRESS": "rawjson"}
    )
    assert proc.returncode == 0, proc.stderr
    assert any(json.loads(line).get("vertexes") for line in proc.stderr.splitlines() if line)
    proc = _bale(
        "--root",
        str(tmp_path / "r"),
        "build",
        "--progress",
        "none",
        "--no-cache",
        ".",
        cwd=ctx,
        env={"BUILDKIT_PROGRESS": "rawjson"},
    )
    assert proc.returncode == 0 and proc.stderr == "" and proc.stdout == ""


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TOKEN", "from-env")
    yield tmp_path


def test_secret_id_alone_takes_the_environment_variable(secret_env: Path) -> None:
    assert parse_secret("id=TOKEN") == ("TOKEN", b"from-env")
    (secret_env / "FILEONLY").write_text("from-file")
    assert parse_secret("id=FILEONLY") == ("FILEONLY", b"from-file")
    # An explicit src wins over the variable.
    (secret_env / "f").write_text("file")
    assert parse_secret("id=TOKEN,src=f") == ("TOKEN", b"file")
    assert parse_secret("type=env,id=x,src=TOKEN") == ("x", b"from-env")
    with pytest.raises(InvalidArgument, match="unexpected key"):
        parse_secret("id=TOKEN,bogus=1")


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a read-only tmpfs needs root")
    ro = tmp_path / "ro"
    ro.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro", "tmpfs", str(ro)], check=True)
    try:
        yield ro
    finally:
        subprocess.run(["umount", str(ro)], check=True)


@pytest.mark.root
def test_unwritable_outputs_fail_before_any_step(
    ctx: Path, tmp_path: Path, read_only_dir: Path
) -> None:
    root = str(tmp_path / "r")
    cases = [
        (("--root", root, "build", "-o", "type=local,dest=/proc/x"), "/proc/x"),
        (
            ("--root", root, "build", "-o", f"type=oci,dest={read_only_dir}/img.tar"),
            f"{read_only_dir}/img.tar",
        ),
        (
            ("--root", root, "build", "--iidfile", str(tmp_path / "missing" / "iid")),
            str(tmp_path / "missing" / "iid"),
        ),
        (("--root", str(read_only_dir / "root"), "build"), str(read_only_dir / "root")),
    ]
    for args, path in cases:
        proc = _bale(*args, "--progress", "rawjson", ".", cwd=ctx)
        assert proc.returncode == 1, (args, proc.stderr)
        assert path in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
        assert not any(line.startswith("{") for line in proc.stderr.splitlines()), proc.stderr
    assert not (tmp_path / "missing").exists()
