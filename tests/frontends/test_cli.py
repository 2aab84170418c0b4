"""`bale build --check / --call` run as a user runs them: a subprocess, its output, its exit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def bale(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    env.pop("BALE_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "bale", "build", *args],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_check_reports_warnings_and_exits_one(tmp_path: Path) -> None:
    # As buildx: the lint result's status code (1 when anything is found) is the exit status.
    write(tmp_path / "Dockerfile", "FROM alpine as Build\nCMD echo hi\n")
    result = bale("--check", ".", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert result.stderr == ""
    out = result.stdout
    assert out.startswith("Check complete, 3 warnings have been found!")
    assert (
        "WARNING: StageNameCasing - https://docs.docker.com/go/dockerfile/rule/stage-name-casing/"
        in out
    )
    assert "Stage name 'Build' should be lowercase" in out
    assert "Dockerfile:2\n" in out and " >>> CMD echo hi" in out
    assert "Traceback" not in result.stderr


def test_check_clean(tmp_path: Path) -> None:
    write(tmp_path / "Dockerfile", 'FROM alpine\nCMD ["sh"]\n')
    result = bale("--call", "check", ".", cwd=tmp_path)
    assert (result.returncode, result.stdout.strip()) == (0, "Check complete, no warnings found.")


def test_check_with_error_directive_exits_one(tmp_path: Path) -> None:
    write(tmp_path / "Dockerfile", "# check=error=true\nFROM alpine AS Build\n")
    result = bale("--check", ".", cwd=tmp_path)
    assert result.returncode == 1
    assert "StageNameCasing" in result.stdout
    assert "ERROR: lint violation found for rules: StageNameCasing" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_keeps_warnings_before_a_parse_error_and_reads_dockerignore(tmp_path: Path) -> None:
    write(tmp_path / ".dockerignore", "secret.txt\n")
    write(tmp_path / "Dockerfile", "FROM scratch AS Bad\nCOPY secret.txt /\nBADCMD\n")
    result = bale("--call", "check", ".", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout.startswith("Check complete, 1 warning has been found!")
    assert "Stage name 'Bad' should be lowercase" in result.stdout
    assert "CopyIgnoredFile" not in result.stdout  # the stage failed before it was checked
    assert result.stderr.splitlines()[-1] == (
        "ERROR: dockerfile parse error on line 3: unknown instruction: BADCMD"
    )
    write(tmp_path / "Dockerfile", "FROM scratch\nCOPY secret.txt /\n")
    result = bale("--call", "check", ".", cwd=tmp_path)
    assert result.returncode == 1 and result.stderr == ""
    assert 'Attempting to Copy file "secret.txt" that is excluded by .dockerignore' in result.stdout


def test_malformed_dockerfile(tmp_path: Path) -> None:
    write(tmp_path / "Dockerfile", "FROM alpine\n\nRUNN echo hi\nCMD x\n")
    for args in (["--check", "."], ["--call", "outline", "."]):
        result = bale(*args, cwd=tmp_path)
        assert result.returncode == 1, args
        assert result.stderr.splitlines() == [
            "Dockerfile:3",
            "--------------------",
            "   1 |     FROM alpine",
            "   2 |",
            "   3 | >>> RUNN echo hi",
            "   4 |     CMD x",
            "--------------------",
            "ERROR: dockerfile parse error on line 3: unknown instruction: RUNN (did you mean RUN?)",
        ]


def test_outline_and_targets(tmp_path: Path) -> None:
    write(
        tmp_path / "Dockerfile",
        (
            "# VERSION picks the base\nARG VERSION=3.19\n"
            "# build makes it\nFROM alpine:$VERSION AS build\n"
            "FROM scratch AS final\nCOPY --from=build / /\n"
        ),
    )
    outline = bale("--call", "outline", ".", cwd=tmp_path)
    assert outline.returncode == 0, outline.stderr
    assert outline.stdout.splitlines() == [
        "TARGET:      final",
        "",
        "BUILD ARG   VALUE   DESCRIPTION",
        "VERSION     3.19    picks the base",
    ]
    build = bale("--call", "outline", "--target", "build", ".", cwd=tmp_path)
    assert "DESCRIPTION: makes it" in build.stdout
    targets = bale("--call=targets", ".", cwd=tmp_path)
    assert targets.returncode == 0
    assert targets.stdout.splitlines() == [
        "TARGET            DESCRIPTION",
        "build             makes it",
        "final (default)",
    ]


def test_dockerfile_from_stdin_and_file_flag(tmp_path: Path) -> None:
    result = bale("-f", "-", "--call", "targets", ".", cwd=tmp_path, stdin="FROM a AS one\n")
    assert result.returncode == 0 and "one (default)" in result.stdout
    write(tmp_path / "other.Dockerfile", "FROM b AS two\n")
    result = bale("-f", "other.Dockerfile", "--call", "targets", ".", cwd=tmp_path)
    assert "two (default)" in result.stdout


def test_template_with_platforms(tmp_path: Path) -> None:
    write(
        tmp_path / "Dockerfile.j2",
        ("FROM alpine\n{% if platform.architecture == 'arm64' %}FROM x AS Arm\n{% endif %}"),
    )
    result = bale(
        "-f", "Dockerfile.j2", "--platform", "linux/amd64,linux/arm64", "--check", ".", cwd=tmp_path
    )
    assert result.returncode == 1 and result.stderr == ""
    assert result.stdout.count("Check complete") == 2
    assert "Stage name 'Arm' should be lowercase" in result.stdout
    bad = write(tmp_path / "bad.j2", "FROM alpine\nRUN {{ nope }}\n")
    result = bale("-f", str(bad), "--call", "outline", ".", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == "bad.j2:2"
    assert "ERROR: failed to render template: 'nope' is undefined" in result.stderr


def test_errors_are_clear(tmp_path: Path) -> None:
    missing = bale(".", cwd=tmp_path)
    assert missing.returncode == 1
    assert "ERROR: failed to read dockerfile: open Dockerfile: no such file" in missing.stderr
    write(tmp_path / "Dockerfile", "FROM a AS one\n")
    target = bale("--target", "two", "--call", "outline", ".", cwd=tmp_path)
    assert target.returncode == 1
    assert 'ERROR: target stage "two" could not be found' in target.stderr
    platform = bale("--platform", "linux/a/b/c", "--check", ".", cwd=tmp_path)
    assert platform.returncode == 1 and "invalid platform" in platform.stderr
    call = bale("--call", "nope", ".", cwd=tmp_path)
    assert call.returncode == 1 and "unknown --call 'nope'" in call.stderr
    for result in (missing, target, platform, call):
        assert "Traceback" not in result.stderr


def test_parse_errors_stop_a_build_before_it_starts(tmp_path: Path) -> None:
    write(tmp_path / "Dockerfile", "FROM alpine\nRUN <<EOF\necho never closed\n")
    result = bale("-t", "app:1", "--platform", "linux/amd64,linux/arm64", ".", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == "Dockerfile:2-3"
    assert result.stderr.splitlines()[-1] == (
        "ERROR: dockerfile parse error on line 2: unterminated heredoc"
    )
