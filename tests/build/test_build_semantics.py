"""Dockerfile semantics that only show in real builds: WORKDIR under USER, proxy build-args,
errors at the right line, the history BuildKit writes, empty CMD/ENTRYPOINT."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from buildhelp import bale, context_dir, events, local_output, steps

from bale.store.local import Store

pytestmark = pytest.mark.root


def test_workdir_belongs_to_the_user(store_root: Path, tmp_path: Path) -> None:
    ctx = context_dir(tmp_path)
    (ctx / "Dockerfile").write_text("FROM base:1\nUSER app\nWORKDIR /srv/app\nRUN touch x\n")
    out = tmp_path / "out"
    local_output(store_root, ctx, out)
    for path in ("srv", "srv/app", "srv/app/x"):
        st = (out / path).stat()
        assert (st.st_uid, st.st_gid) == (1234, 2345), path


def test_proxy_build_args_reach_run_without_busting_the_cache(
    store_root: Path, tmp_path: Path
) -> None:
    ctx = context_dir(tmp_path)
    (ctx / "Dockerfile").write_text("FROM base:1\nRUN env | grep -i _proxy | sort > /proxies\n")
    out = tmp_path / "out"
    local_output(
        store_root,
        ctx,
        out,
        "--build-arg",
        "HTTP_PROXY=http://p:3128",
        "--build-arg",
        "no_proxy=localhost",
    )
    assert (out / "proxies").read_text().split() == [
        "HTTP_PROXY=http://p:3128",
        "NO_PROXY=localhost",
        "http_proxy=http://p:3128",
        "no_proxy=localhost",
    ]
    # Another proxy is not part of the step's identity, as in BuildKit.
    again = bale(
        store_root,
        "build",
        "--progress",
        "rawjson",
        "--build-arg",
        "HTTP_PROXY=http://q:8080",
        ".",
        cwd=ctx,
    )
    assert steps(events(again.stderr), "start") == []


def test_missing_bases_are_reported_at_their_line(store_root: Path, tmp_path: Path) -> None:
    ctx = context_dir(tmp_path)
    for dockerfile, line, ref in (
        (
            "FROM base:1 AS builder\nRUN true\nFROM base:1\nCOPY --from=buidler /x /x\n",
            4,
            "docker.io/library/buidler:latest",
        ),
        ("FROM 127.0.0.1:1/nosuch:7\nRUN true\n", 1, "127.0.0.1:1/nosuch:7"),
    ):
        (ctx / "Dockerfile").write_text(dockerfile)
        proc = bale(store_root, "build", "--progress", "plain", ".", cwd=ctx, check=False)
        assert proc.returncode == 1
        assert f"Dockerfile:{line}" in proc.stderr
        assert f"failed to resolve source metadata for {ref}" in proc.stderr


def test_history_as_buildkit_writes_it(store_root: Path, tmp_path: Path) -> None:
    ctx = context_dir(tmp_path)
    (ctx / "f").write_text("f")
    (ctx / "Dockerfile").write_text(
        "FROM base:1\nARG V=1\nENV HOME_DIR=/h$V\nWORKDIR rel\nCOPY f /d/\n"
        'RUN echo "$V"\nENTRYPOINT echo hi\nCMD []\n'
    )
    bale(
        store_root,
        "build",
        "--progress",
        "quiet",
        "--build-arg",
        "V=2",
        "-t",
        "hist:1",
        ".",
        cwd=ctx,
    )
    with Store(store_root) as store:
        config = store.config(
            store.manifest(store.select_platform(store.resolve("hist:1"), None)).config
        )
    lines = [h.created_by for h in config.history[1:]]
    assert lines == [
        "ARG V=1",
        "ENV HOME_DIR=/h2",
        "WORKDIR /rel # buildkit",
        "COPY f /d/ # buildkit",
        'RUN |1 V=2 /bin/sh -c echo "$V" # buildkit',
        'ENTRYPOINT ["/bin/sh" "-c" "echo hi"]',
        "CMD []",
    ]
    assert {h.comment for h in config.history[1:]} == {"buildkit.dockerfile.v0"}
    raw = json.loads(config.encode())["config"]
    assert "Cmd" not in raw and raw["Entrypoint"] == ["/bin/sh", "-c", "echo hi"]


def test_failed_run_quotes_the_command_as_buildkit(store_root: Path, tmp_path: Path) -> None:
    ctx = context_dir(tmp_path)
    (ctx / "Dockerfile").write_text('FROM base:1\nRUN [ "$(uname -m)" = none ]\n')
    proc = bale(store_root, "build", "--progress", "plain", ".", cwd=ctx, check=False)
    assert proc.returncode == 1
    assert r'process "/bin/sh -c [ \"$(uname -m)\" = none ]" did not complete' in proc.stderr
