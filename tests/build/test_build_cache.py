"""Shared work runs once; the step cache skips exactly the steps whose inputs did not change."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from buildhelp import TWO, build, events, example, index_platforms, require_root, steps

pytestmark = pytest.mark.root

FOUR = ("linux/amd64", "linux/arm64", "linux/arm/v7", "linux/s390x")
BUILD_RUN = "RUN sh /src/build.sh"


@pytest.mark.parametrize("platforms", [TWO, FOUR], ids=["2-platforms", "4-platforms"])
def test_buildplatform_stage_runs_once(tmp_path: Path, platforms: tuple[str, ...]) -> None:
    require_root()
    context = example("cross-compile", tmp_path / "ctx")
    missing = [
        p
        for p in platforms
        if not (context / "bin" / f"busybox-{p.split('/', 1)[1].replace('/', '')}").exists()
    ]
    if missing:
        pytest.skip(f"busybox-static fixtures missing for {missing}; run scripts/fetch-fixtures.sh")
    proc = build(tmp_path / "root", context, "-t", "cc:1", platforms=platforms)
    evs = events(proc.stderr)
    started = [name for name in steps(evs, "start") if BUILD_RUN in name]
    assert len(started) == 1, started
    assert not [name for name in steps(evs, "cached") if BUILD_RUN in name]
    # Each target platform copied its own artifacts out of that one run.
    copies = [name for name in steps(evs, "start") if "COPY --from=build" in name]
    assert sorted(name.split()[0].lstrip("[") for name in copies) == sorted(platforms)
    assert index_platforms(tmp_path / "root", "cc:1") == sorted(platforms)


@pytest.fixture
def hello_built(tmp_path: Path) -> tuple[Path, Path]:
    """(root, context) after a first two-platform build of the hello example."""
    require_root()
    context = example("hello", tmp_path / "ctx")
    root = tmp_path / "root"
    first = events(build(root, context, "-t", "hello:1").stderr)
    # Everything ran the first time: 2 COPY and 2 RUN per platform.
    assert len(steps(first, "start")) == 8
    return root, context


def test_unchanged_rebuild_executes_nothing(hello_built: tuple[Path, Path]) -> None:
    root, context = hello_built
    evs = events(build(root, context, "-t", "hello:1").stderr)
    assert steps(evs, "start") == []
    assert len(steps(evs, "cached")) == 8


def test_editing_a_file_no_copy_reads_executes_nothing(hello_built: tuple[Path, Path]) -> None:
    root, context = hello_built
    (context / "README.md").write_text("not copied by any step\n")
    (context / "bin" / "busybox-386").write_bytes(b"a runtime no target platform copies")
    evs = events(build(root, context, "-t", "hello:1").stderr)
    assert steps(evs, "start") == []
    assert len(steps(evs, "cached")) == 8


def test_editing_a_copied_file_reruns_that_copy_and_what_follows(
    hello_built: tuple[Path, Path],
) -> None:
    root, context = hello_built
    with open(context / "hello.sh", "a") as f:
        f.write('echo "edited"\n')
    evs = events(build(root, context, "-t", "hello:1").stderr)
    started = steps(evs, "start")
    cached = steps(evs, "cached")
    for platform in TWO:
        mine = [n for n in started if n.startswith(f"[{platform} ")]
        assert [n.split("] ", 1)[1] for n in mine] == [
            "COPY hello.sh /usr/local/bin/hello",
            "RUN uname -m > /etc/build-arch",
        ], started
        before = [n.split("] ", 1)[1] for n in cached if n.startswith(f"[{platform} ")]
        assert sorted(before) == sorted(
            [
                "COPY bin/busybox-${TARGETARCH}${TARGETVARIANT} /bin/busybox",
                'RUN ["/bin/busybox", "--install", "-s", "/bin"]',
            ]
        ), cached


def test_copy_cache_follows_content_and_mode_after_dockerignore(tmp_path: Path) -> None:
    require_root()
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM scratch\nCOPY . /app/\n")
    (context / ".dockerignore").write_text("*.md\n")
    (context / "a.txt").write_text("a\n")
    (context / "README.md").write_text("ignored\n")
    root = tmp_path / "root"
    one = ("linux/amd64",)

    def ran() -> list[str]:
        return steps(events(build(root, context, "-t", "app:1", platforms=one).stderr), "start")

    assert ran() == ["[stage-0 1/1] COPY . /app/"]
    (context / "README.md").write_text("ignored, edited\n")  # excluded by .dockerignore
    assert ran() == []
    os.utime(context / "a.txt", (1, 1))  # only the mtime: same content, same mode
    assert ran() == []
    (context / "a.txt").chmod(0o600)  # the mode is part of what COPY reads
    assert len(ran()) == 1
    (context / "b.txt").write_text("new\n")  # a new file the COPY reads
    assert len(ran()) == 1


def test_no_cache_and_no_cache_filter(tmp_path: Path) -> None:
    require_root()
    context = example("cross-compile", tmp_path / "ctx")
    root = tmp_path / "root"
    build(root, context, "-t", "cc:1")

    def stages(*flags: str) -> tuple[set[str], set[str]]:
        """(stages with a step that ran, stages with a step that was cached)."""
        evs = events(build(root, context, "-t", "cc:1", *flags).stderr)
        return (
            {name.split()[1] for name in steps(evs, "start")},
            {name.split()[1] for name in steps(evs, "cached")},
        )

    ran, cached = stages("--no-cache-filter", "build")
    assert "build" in ran and "build" not in cached
    assert "toolchain" in cached and "toolchain" not in ran
    ran, cached = stages("--no-cache")
    assert cached == set()
    assert {"toolchain", "build"} <= ran
