"""BuildKit's dockerfile_mount_test.go and dockerfile_secrets_test.go cases that need a RUN
step, on the busybox fixture: mount values from ARG and ENV, a read-write mount of an
unchanged stage output staying cached, secrets as environment variables."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from buildhelp import build, require_tool

pytestmark = pytest.mark.root

ONE = ("linux/amd64",)


@pytest.mark.root
def test_mount_values_from_arg_and_env(store_root: Path, tmp_path: Path) -> None:
    # testMountArg and testMountEnvAcrossStages
    (tmp_path / "Dockerfile").write_text(
        "FROM base:1 AS stage1\n"
        "ARG MNT_TYPE=cache\n"
        "RUN --mount=type=$MNT_TYPE,target=/mycache2 touch /mycache2/foo\n"
        "RUN --mount=type=cache,target=/mycache2 [ -f /mycache2/foo ]\n"
        "ENV MNT_ID=mycache\n"
        "ENV MNT_TYPE2=cache\n"
        "RUN --mount=type=cache,id=mycache,target=/abcabc touch /abcabc/foo\n"
        "RUN --mount=type=$MNT_TYPE2,id=$MNT_ID,target=/cbacba [ -f /cbacba/foo ]\n"
        "FROM stage1\n"
        "RUN --mount=type=$MNT_TYPE2,id=$MNT_ID,target=/whatever [ -f /whatever/foo ]\n"
    )
    build(store_root, tmp_path, platforms=ONE)


@pytest.mark.root
def test_rw_mount_of_unchanged_content_stays_cached(store_root: Path, tmp_path: Path) -> None:
    # testMountRWCache: the stage is rebuilt, its output is the same, the RUN is not rerun.
    (tmp_path / "Dockerfile").write_text(
        "from base:1 AS build\n"
        "copy cachebust /\n"
        "run mkdir out && echo foo > out/foo\n"
        "\n"
        "from base:1 as second\n"
        "RUN --mount=from=build,src=out,target=/out,rw touch /out/bar && "
        "cat /dev/urandom | head -c 100 | sha256sum > /unique\n"
        "\n"
        "from scratch\n"
        "COPY --from=second /unique /unique\n"
    )
    seen = []
    for bust in ("0", "1"):
        (tmp_path / "cachebust").write_text(bust)
        dest = tmp_path / f"out{bust}"
        build(store_root, tmp_path, "-o", f"type=local,dest={dest}", platforms=ONE)
        seen.append((dest / "unique").read_text())
    assert seen[0] == seen[1]


@pytest.mark.root
def test_secret_as_environ(store_root: Path, tmp_path: Path) -> None:
    # testSecretAsEnviron, testSecretAsEnvironWithFileMount, testSecretRequiredWithoutValue
    (tmp_path / "pw").write_text("pw")
    (tmp_path / "Dockerfile").write_text(
        "FROM base:1\n"
        "ENV SECRET_ENV=foo\n"
        "RUN --mount=type=secret,id=mysecret,env=SECRET_ENV "
        '[ "$SECRET_ENV" == "pw" ] && [ ! -f /run/secrets/mysecret ] || false\n'
        "RUN --mount=type=secret,id=mysecret,target=/run/secrets/secret,env=SECRET_ENV "
        '[ "$SECRET_ENV" == "pw" ] && [ -f /run/secrets/secret ] || false\n'
    )
    build(store_root, tmp_path, "--secret", f"id=mysecret,src={tmp_path / 'pw'}", platforms=ONE)
    (tmp_path / "Dockerfile").write_text(
        "FROM base:1\nRUN --mount=type=secret,required,id=mysecret foo\n"
    )
    failed = build(store_root, tmp_path, platforms=ONE, check=False)
    assert failed.returncode == 1
    assert "secret mysecret: not found" in failed.stderr


@pytest.mark.root
def test_ssh_socket_params(store_root: Path, tmp_path: Path) -> None:
    # testSSHSocketParams: a key file given to --ssh, the socket made with the mount's owner
    # and mode.
    keygen = require_tool("ssh-keygen")
    key = tmp_path / "key"
    subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    (tmp_path / "Dockerfile").write_text(
        "FROM base:1\n"
        "RUN --mount=type=ssh,mode=741,uid=100,gid=102 "
        '[ "$(stat -c "%u %g %f" $SSH_AUTH_SOCK)" = "100 102 c1e1" ]\n'
    )
    build(store_root, tmp_path, "--ssh", f"default={key}", platforms=ONE)
