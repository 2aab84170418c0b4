"""Realistic Dockerfiles in the style of official images parse and resolve with the right stages.

Expected line ranges are found by the text of the line where an instruction ends, not by
counting, so the expectations do not depend on the parser under test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bale.frontends.dockerfile import instructions as ins
from bale.frontends.dockerfile.resolve import (
    DEFAULT_PATH,
    ImageBase,
    ResolvedBuild,
    StageBase,
    resolve,
)
from bale.frontends.dockerfile.stages import load
from bale.oci.config import RuntimeConfig
from bale.oci.platform import Platform

CORPUS = Path(__file__).parent / "corpus"
ARM64 = Platform.parse("linux/arm64")
AMD64 = Platform.parse("linux/amd64")
WINDOWS = Platform.parse("windows/amd64")


def text(name: str) -> str:
    return (CORPUS / name).read_text()


def line_of(name: str, content: str) -> int:
    lines = text(name).splitlines()
    return lines.index(content) + 1


def run(name: str, **kw: object) -> ResolvedBuild:
    kw.setdefault("target_platform", ARM64)
    kw.setdefault("build_platform", AMD64)
    return resolve(text(name), filename=name, **kw)  # type: ignore[arg-type]


def kinds(build: ResolvedBuild) -> list[str]:
    return [type(s.instruction).__name__ for s in build.target.steps]


def test_every_corpus_file_resolves_for_two_platforms() -> None:
    files = sorted(CORPUS.glob("*.Dockerfile"))
    assert len(files) >= 8
    for path in files:
        platforms = [WINDOWS] if path.name.startswith("windows") else [AMD64, ARM64]
        for platform in platforms:
            build = resolve(path.read_text(), target_platform=platform, filename=path.name)
            assert build.target.steps, path.name


def test_debian_nginx() -> None:
    name = "debian-nginx.Dockerfile"
    b = run(name)
    assert [s.index for s in b.stages] == [0]
    assert b.target.base == ImageBase("debian:bookworm-slim")
    assert kinds(b) == [
        "Label",
        "Env",
        "Env",
        "Env",
        "Run",
        "Copy",
        "Copy",
        "Copy",
        "Entrypoint",
        "Expose",
        "StopSignal",
        "Cmd",
    ]
    run_step = b.target.steps[4]
    assert (run_step.source.start, run_step.source.end) == (
        line_of(name, "RUN set -x \\"),
        line_of(name, "    && mkdir /docker-entrypoint.d"),
    )
    command = run_step.instruction
    assert isinstance(command, ins.Run)
    assert "create nginx user" not in command.command[0]  # the comment line is dropped
    assert "nginx=${NGINX_VERSION}-${PKG_RELEASE}" in command.command[0]  # RUN not expanded
    config = b.target.config
    assert config.env_map()["NGINX_VERSION"] == "1.25.4"
    assert config.env_map()["PKG_RELEASE"] == "1~bookworm"
    assert config.cmd == ("nginx", "-g", "daemon off;")
    assert config.entrypoint == ("/docker-entrypoint.sh",)
    assert (config.exposed_ports, config.stop_signal) == (("80/tcp",), "SIGQUIT")
    assert config.labels == (("maintainer", "NGINX Docker Maintainers <docker-maint@nginx.com>"),)


def test_alpine_redis() -> None:
    name = "alpine-redis.Dockerfile"
    b = run(name)
    runs = [s for s in b.target.steps if isinstance(s.instruction, ins.Run)]
    assert [(r.source.start, r.source.end) for r in runs] == [
        (line_of(name, "RUN set -eux; \\"), line_of(name, "\tadduser -S -G redis -u 999 redis")),
        (line_of(name, "# runtime dependencies") + 1, line_of(name, "\t;")),
        (
            line_of(
                name,
                "ENV REDIS_DOWNLOAD_SHA 8d104c26a154b29fd67d6568b4f375212212ad41e0c2caa3d66480e78dbd3b59",
            )
            + 2,
            line_of(name, "\tredis-server --version"),
        ),
        (line_of(name, "RUN mkdir /data && chown redis:redis /data"),) * 2,
    ]
    config = b.target.config
    assert (config.volumes, config.working_dir, config.cmd) == (
        ("/data",),
        "/data",
        ("redis-server",),
    )
    assert config.env_map()["REDIS_VERSION"] == "7.2.4"
    copy = next(s.instruction for s in b.target.steps if isinstance(s.instruction, ins.Copy))
    assert isinstance(copy, ins.Copy) and copy.dest == "/usr/local/bin/"


def test_go_cross_compile() -> None:
    b = run("go-cross.Dockerfile")
    assert [(s.name, str(s.platform)) for s in b.stages] == [
        ("xx", "linux/amd64"),
        ("build", "linux/amd64"),
        ("release", "linux/arm64"),
    ]
    xx, build, release = b.stages
    assert xx.base == ImageBase("tonistiigi/xx:1.4.0")
    assert build.base == ImageBase("golang:1.22-alpine")
    assert build.steps[0].from_stage == 0
    arg = next(s for s in build.steps if isinstance(s.instruction, ins.Arg)).instruction
    assert isinstance(arg, ins.Arg) and arg.args == (ins.ArgDef("TARGETPLATFORM", "linux/arm64"),)
    mounts = [s.instruction.mounts for s in build.steps if isinstance(s.instruction, ins.Run)]
    assert [m.type for m in mounts[2]] == ["bind", "bind", "cache"]
    assert mounts[2][0].source == "go.mod" and mounts[2][2].target == "/go/pkg/mod"
    assert release.dependencies == (1,)
    copy = release.steps[1].instruction
    assert isinstance(copy, ins.Copy) and (copy.from_, copy.chmod) == ("build", "0755")
    assert release.config.user == "app"
    assert release.config.healthcheck is not None
    assert release.config.healthcheck.timeout_ns == 3 * 10**9
    test = run("go-cross.Dockerfile", target="test")
    assert [s.name for s in test.stages] == ["xx", "build", "test"]
    assert test.target.base == StageBase(1)
    assert str(test.target.platform) == "linux/amd64"
    # Both target platforms share the BUILDPLATFORM stages unchanged.
    amd = run("go-cross.Dockerfile", target_platform=AMD64)
    assert amd.stages[0] == b.stages[0]


def test_node_multi_stage() -> None:
    b = run("node-app.Dockerfile")
    assert [s.display_name for s in b.stages] == ["base", "deps", "build", "3"]
    final = b.target
    assert final.base == StageBase(0)
    assert final.dependencies == (0, 1, 2)
    env = final.config.env_map()
    assert env["PNPM_HOME"] == "/pnpm" and env["NODE_ENV"] == "production"
    assert (final.config.working_dir, final.config.user) == ("/app", "node")
    assert [s.from_stage for s in final.steps if isinstance(s.instruction, ins.Copy)] == [
        1,
        2,
        None,
    ]
    assert b.stage(0).base == ImageBase("node:20-bookworm-slim")
    deps_run = b.stage(1).steps[-1].instruction
    assert isinstance(deps_run, ins.Run) and deps_run.mounts[0].id == "npm"


def test_python_multi_stage() -> None:
    b = run("python-app.Dockerfile", build_args={"PYTHON_VERSION": "3.11"})
    builder, final = b.stages
    assert builder.base == ImageBase("python:3.11-slim") == final.base
    heredoc = next(
        s.instruction
        for s in builder.steps
        if isinstance(s.instruction, ins.Run) and s.instruction.files
    )
    assert isinstance(heredoc, ins.Run)
    assert heredoc.files[0].content.splitlines()[0] == "set -eux"
    labels = dict(final.config.labels)
    assert labels["org.opencontainers.image.description"] == "Python 3.11 application"
    assert builder.config.env_map()["VIRTUAL_ENV"] == "/opt/venv"
    assert final.config.cmd == ("gunicorn", "--bind", "0.0.0.0:8000", "app.wsgi")


def test_heredocs() -> None:
    name = "heredocs.Dockerfile"
    b = run(name)
    steps = [s.instruction for s in b.target.steps]
    assert kinds(b) == ["Arg", "Run", "Run", "Copy", "Copy", "Run", "Cmd"]
    bash = steps[1]
    assert isinstance(bash, ins.Run) and bash.command == ("<<EOT bash",)
    assert bash.files[0].content.startswith("  set -e\n")
    assert (b.target.steps[1].source.start, b.target.steps[1].source.end) == (
        line_of(name, "RUN <<EOT bash"),
        line_of(name, "EOT"),
    )
    python = steps[2]
    assert isinstance(python, ins.Run) and python.files[0].content.startswith("#!/usr/bin/env")
    assert not python.files[0].expand
    motd = steps[3]
    assert isinstance(motd, ins.Copy)
    assert motd.contents == (ins.SourceContent("EOF", "hello from the heredoc\n", True),)
    conf = steps[4]
    assert isinstance(conf, ins.Copy)
    assert [(c.path, c.data) for c in conf.contents] == [("conf1", "a=1\n"), ("conf2", "b=2\n")]
    two = steps[5]
    assert isinstance(two, ins.Run) and [f.name for f in two.files] == ["EOF1", "EOF2"]


def test_windows_backtick_escape() -> None:
    name = "windows.Dockerfile"
    b = run(name, target_platform=WINDOWS, build_platform=WINDOWS)
    stage = b.target
    assert stage.base == ImageBase("mcr.microsoft.com/windows/servercore:ltsc2022")
    assert str(stage.platform) == "windows/amd64"
    run_step = next(s for s in stage.steps if isinstance(s.instruction, ins.Run))
    assert (run_step.source.start, run_step.source.end) == (
        line_of(
            name,
            "RUN $url = ('https://github.com/git-for-windows/git/releases/download/"
            "v{0}.windows.1/MinGit-{0}-64-bit.zip' -f $env:GIT_VERSION); `",
        ),
        line_of(
            name,
            "    [Environment]::SetEnvironmentVariable('PATH', $env:PATH, "
            "[EnvironmentVariableTarget]::Machine)",
        ),
    )
    assert run_step.shell[0] == "powershell"
    assert isinstance(run_step.instruction, ins.Run)
    assert "C:\\git\\cmd;" in run_step.instruction.command[0]
    copy = next(s.instruction for s in stage.steps if isinstance(s.instruction, ins.Copy))
    assert isinstance(copy, ins.Copy) and (copy.sources, copy.dest) == (("app\\",), "C:\\app\\")
    assert stage.config.working_dir == "C:\\app"


class DebianConfig:
    def base_config(self, ref: str, platform: Platform) -> RuntimeConfig | None:
        return RuntimeConfig(env=(f"PATH={DEFAULT_PATH}",), cmd=("bash",))


def test_postgres_legacy_env_with_base_config() -> None:
    b = run("postgres-like.Dockerfile", base_configs=DebianConfig())
    env = b.target.config.env_map()
    assert env["PATH"] == f"{DEFAULT_PATH}:/usr/lib/postgresql/16/bin"
    assert env["PGDATA"] == "/var/lib/postgresql/data"
    assert b.target.config.cmd == ("postgres",)
    assert b.target.config.volumes == ("/var/lib/postgresql/data",)
    assert b.target.undefined == ()


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*.Dockerfile")), ids=lambda p: p.name)
def test_corpus_stage_names_match_from_lines(path: Path) -> None:
    df = load(path.read_text(), path.name)
    from_lines = [
        i + 1
        for i, line in enumerate(path.read_text().splitlines())
        if line.upper().startswith("FROM ")
    ]
    assert [s.from_.source.start for s in df.stages] == from_lines
