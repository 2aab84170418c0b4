"""BuildKit's Dockerfile semantics integration tests (frontend/dockerfile/dockerfile_test.go
and neighbours), transcribed with busybox images made here."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

from buildhelp import bale, context_dir, local_output

from bale.store.local import Store


def _fails(root: Path, ctx: Path, *args: str) -> str:
    proc = bale(root, "build", "--progress", "plain", *args, ".", cwd=ctx, check=False)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc.stderr


def _config(root: Path, ref: str) -> dict[str, Any]:
    with Store(root) as store:
        config = store.config(
            store.manifest(store.select_platform(store.resolve(ref), None)).config
        )
    raw: dict[str, Any] = json.loads(config.encode())
    return raw


TARGETSTAGE = """FROM base:1 AS base
WORKDIR /out
RUN echo -n "value:$TARGETSTAGE" > /out/first
ARG TARGETSTAGE
RUN echo -n "value:$TARGETSTAGE" > /out/second
FROM scratch AS foo
COPY --from=base /out/ /
FROM scratch
COPY --from=base /out/ /
"""


def test_target_stage_name_arg(store_root: Path, tmp_path: Path) -> None:
    """testTargetStageNameArg: TARGETSTAGE is the target's name ("default" for an unnamed
    last stage), only once declared."""
    ctx = context_dir(tmp_path)
    (ctx / "Dockerfile").write_text(TARGETSTAGE)
    for args, name in ((("--target", "foo"), "foo"), ((), "default")):
        out = tmp_path / f"out-{name}"
        local_output(store_root, ctx, out, *args)
        assert (out / "first").read_text() == "value:"
        assert (out / "second").read_text() == f"value:{name}"
    (ctx / "Dockerfile").write_text(
        TARGETSTAGE + "FROM scratch AS final\nCOPY --from=base /out/ /\n"
    )
    out = tmp_path / "out-final"
    local_output(store_root, ctx, out)
    assert (out / "second").read_text() == "value:final"


def test_user_additional_gids_and_hostname(store_root: Path, tmp_path: Path) -> None:
    """testUserAdditionalGids, testDockerfileCheckHostname (build-arg form): root gets its
    supplementary groups from /etc/group; BUILDKIT_SANDBOX_HOSTNAME names the sandbox. (uid
    1234 is a user of the base image here: 4321 stands for it.)"""
    ctx = context_dir(tmp_path)
    (ctx / "Dockerfile").write_text(
        "FROM base:1 AS groups\n"
        "RUN echo 'wheel:x:10:root' >> /etc/group && echo 'daemon:x:1:' >> /etc/group && "
        "echo 'daemon:x:1:1::/:/bin/sh' >> /etc/passwd\n"
        "FROM groups\n"
        'SHELL ["/bin/sh", "-euxc"]\n'
        'RUN [ "$(id)" = "uid=0(root) gid=0(root) groups=0(root),10(wheel)" ]\n'
        "USER 4321\n"
        'RUN [ "$(id)" = "uid=4321 gid=0(root) groups=0(root)" ]\n'
        "USER 4321:4321\n"
        'RUN [ "$(id)" = "uid=4321 gid=4321 groups=4321" ]\n'
        "USER daemon\n"
        'RUN [ "$(id)" = "uid=1(daemon) gid=1(daemon) groups=1(daemon)" ]\n'
        "USER root\n"
        "RUN cat /etc/hosts | grep foo\nRUN echo $HOSTNAME | grep foo\n"
        "RUN echo $(hostname) | grep foo\n"
    )
    local_output(store_root, ctx, tmp_path / "out", "--build-arg", "BUILDKIT_SANDBOX_HOSTNAME=foo")


def test_dockerfile_errors(store_root: Path, tmp_path: Path) -> None:
    """testEmptyStages, testDockerignoreInvalid, testErrorsSourceMap (#syntax of an unknown
    frontend, at line 1), and testDockerfileLowercase: a `dockerfile` is found."""
    ctx = context_dir(tmp_path)
    (ctx / "Dockerfile").write_text("ARG foo=bar")
    assert "dockerfile contains no stages to build" in _fails(store_root, ctx)
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY . .\n")
    (ctx / ".dockerignore").write_text("!\n")
    assert ".dockerignore" in _fails(store_root, ctx)
    (ctx / ".dockerignore").unlink()
    (ctx / "Dockerfile").write_text("#syntax=foobar\nfrom alpine")
    err = _fails(store_root, ctx)
    assert "Dockerfile:1" in err and "foobar" in err, err
    (ctx / "Dockerfile").unlink()
    (ctx / "dockerfile").write_text("FROM scratch\n")
    bale(store_root, "build", "--progress", "plain", ".", cwd=ctx)


def test_scratch_config_and_history(store_root: Path, tmp_path: Path) -> None:
    """testDockerfileScratchConfig, testExportedHistory: a scratch image's config has its
    platform, WorkingDir and PATH; each step's history entry, a RUN with nothing to change
    still a layer, EXPOSE sorted and with protocols."""
    ctx = context_dir(tmp_path)
    (ctx / "Dockerfile").write_text("FROM scratch\nENV foo=bar\n")
    bale(store_root, "build", "--progress", "quiet", "-t", "scratchcfg:1", ".", cwd=ctx)
    raw = _config(store_root, "scratchcfg:1")
    assert raw["os"] and raw["architecture"] and raw["config"]["WorkingDir"]
    assert raw["rootfs"] == {"type": "layers", "diff_ids": []}
    assert len(raw["history"]) == 1 and "ENV foo=bar" in raw["history"][0]["created_by"]
    assert raw["history"][0]["empty_layer"] is True
    assert "foo=bar" in raw["config"]["Env"]
    assert any(e.startswith("PATH=") for e in raw["config"]["Env"])

    (ctx / "foo").write_text("contents0")
    (ctx / "Dockerfile").write_text(
        "FROM base:1 AS base\nENV foo=bar\nCOPY foo /foo2\n"
        "FROM base:1\nLABEL lbl=val\nCOPY --from=base foo2 foo3\nWORKDIR /\n"
        'RUN echo bar > foo4\nRUN ["busybox", "true"]\nEXPOSE 2375 5000 1234/udp\n'
    )
    bale(store_root, "build", "--progress", "quiet", "-t", "hist2:1", ".", cwd=ctx)
    raw = _config(store_root, "hist2:1")
    base = _config(store_root, "base:1")
    offset = len(base["history"])
    history = raw["history"][offset:]
    assert len(raw["rootfs"]["diff_ids"]) == len(base["rootfs"]["diff_ids"]) + 3
    expected = [
        ("lbl=val", True),
        ("COPY foo2 foo3", False),
        ("WORKDIR /", True),
        ("echo bar > foo4", False),
        ("RUN busybox true", False),
        ("EXPOSE [1234/udp 2375/tcp 5000/tcp]", True),
    ]
    assert len(history) == len(expected)
    for entry, (text, empty) in zip(history, expected, strict=True):
        assert text in entry["created_by"], (text, entry)
        assert entry.get("empty_layer", False) is empty, entry
        assert entry.get("created")


def test_default_shell_and_path(store_root: Path, tmp_path: Path) -> None:
    """testDefaultShellAndPath: the shell form's default shell per OS, and no PATH in a
    Windows image's config."""
    ctx = context_dir(tmp_path)
    (ctx / "Dockerfile").write_text("FROM scratch\nENTRYPOINT foo bar\nCOPY Dockerfile .\n")
    out = tmp_path / "out.tar"
    bale(
        store_root,
        "build",
        "--progress",
        "quiet",
        "--platform",
        "windows/amd64,linux/amd64",
        "-o",
        f"type=oci,dest={out}",
        ".",
        cwd=ctx,
    )
    with tarfile.open(out) as tar:

        def blob(digest: str) -> Any:
            member = tar.extractfile(f"blobs/sha256/{digest.removeprefix('sha256:')}")
            assert member is not None
            return json.loads(member.read())

        member = tar.extractfile("index.json")
        assert member is not None
        index = blob(json.loads(member.read())["manifests"][0]["digest"])
        got = {}
        for m in index["manifests"]:
            if m["platform"]["os"] == "unknown":
                continue  # the attestations buildx adds
            manifest = blob(m["digest"])
            assert len(manifest["layers"]) == 1
            config = blob(manifest["config"]["digest"])["config"]
            got[f"{m['platform']['os']}/{m['platform']['architecture']}"] = (
                config.get("Entrypoint"),
                config.get("Env"),
            )
    assert got == {
        "windows/amd64": (["cmd", "/S", "/C", "foo bar"], None),
        "linux/amd64": (
            ["/bin/sh", "-c", "foo bar"],
            ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        ),
    }


def test_no_cache_results_are_kept(store_root: Path, tmp_path: Path) -> None:
    """testNoCache: --no-cache runs everything again, and what it ran is what a later
    --no-cache-filter build finds for the stages it does not filter."""
    ctx = context_dir(tmp_path)
    (ctx / "Dockerfile").write_text(
        "FROM base:1 AS s0\nRUN cat /dev/urandom | head -c 100 | sha256sum | tee unique\n"
        "FROM base:1 AS s1\nRUN cat /dev/urandom | head -c 100 | sha256sum | tee unique2\n"
        "FROM scratch\nCOPY --from=s0 unique /\nCOPY --from=s1 unique2 /\n"
    )
    outs = [tmp_path / f"out{i}" for i in range(3)]
    for out, args in zip(outs, ((), ("--no-cache",), ("--no-cache-filter", "s1")), strict=True):
        local_output(store_root, ctx, out, *args)
    first, second, third = ({n: (o / n).read_text() for n in ("unique", "unique2")} for o in outs)
    assert first["unique"] != second["unique"] and first["unique2"] != second["unique2"]
    assert third["unique"] == second["unique"]
    assert third["unique2"] not in (first["unique2"], second["unique2"])


def test_cache_mount_mode_no_cache(store_root: Path, tmp_path: Path) -> None:
    """testCacheMountModeNoCache: under --no-cache a cache mount starts empty, and what the
    step left becomes the cache a later build sees."""
    ctx = context_dir(tmp_path)
    (ctx / "Dockerfile").write_text(
        "FROM base:1 AS base\nARG FOO=abc\n"
        "RUN --mount=type=cache,target=/cache,mode=0773 touch /cache/$FOO && "
        "ls -l /cache | wc -l > /out\nFROM scratch\nCOPY --from=base /out /\n"
    )
    got = []
    for i, args in enumerate(
        (("--no-cache",), ("--no-cache", "--build-arg", "FOO=def"), ("--build-arg", "FOO=ghi"))
    ):
        local_output(store_root, ctx, tmp_path / f"o{i}", *args)
        got.append((tmp_path / f"o{i}" / "out").read_text())
    assert got == ["2\n", "2\n", "3\n"]
    # Nothing but the cache's own directory (and its locks) is left beside it.
    cache = store_root / "executor" / "cache"
    assert not [p for p in cache.iterdir() if ".fresh-" in p.name or ".old-" in p.name]
