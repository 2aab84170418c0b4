"""Builds FROM a real registry and pushes results to it: each platform gets its own base
manifest, layers come only when a step needs them, and `--push` keeps the digest."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from buildhelp import bale, require_root, require_tool

from support import busybox_rootfs_tar

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def base(registry: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """127.0.0.1:PORT/base:1 with amd64 and arm64, pushed from a throwaway store."""
    require_root()
    tmp = tmp_path_factory.mktemp("base")
    root = tmp / "root"
    ref = f"{registry}/base:1"
    for platform in ("linux/amd64", "linux/arm64"):
        bale(root, "import", "--platform", platform, str(busybox_rootfs_tar(tmp, platform)), ref)
    bale(
        root,
        "import",
        "--platform",
        "linux/amd64",
        str(tmp / "linux_amd64.tar"),
        f"{registry}/amd64-only:1",
    )
    bale(root, "push", ref)
    bale(root, "push", f"{registry}/amd64-only:1")
    return ref


def test_two_platform_build_from_a_registry_base(base: str, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {base}\nRUN uname -m > /arch\n")
    root = tmp_path / "root"
    out = tmp_path / "out"
    bale(
        root,
        "build",
        "--progress",
        "plain",
        "--platform",
        "linux/amd64,linux/arm64",
        "-o",
        f"type=local,dest={out}",
        str(ctx),
    )
    assert (out / "linux_amd64" / "arch").read_text() == "x86_64\n"
    assert (out / "linux_arm64" / "arch").read_text() == "aarch64\n"


def test_config_only_build_fetches_no_layer(base: str, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f'FROM {base}\nENV GREETING=hi\nCMD ["sh"]\n')
    root = tmp_path / "root"
    bale(root, "build", "--progress", "quiet", "--platform", "linux/arm64", "-t", "cfg:1", str(ctx))
    from bale.store.local import Store

    with Store(root) as store:
        target = store.resolve("cfg:1")
        from bale.oci.platform import Platform

        manifest = store.manifest(store.select_platform(target, Platform.parse("linux/arm64")))
        # The image names the base's layers, but no step needed the rootfs: none was pulled.
        assert manifest.layers
        assert not any(store.content.exists(layer.digest) for layer in manifest.layers)


def test_base_lacking_a_platform_is_a_clear_error(base: str, tmp_path: Path) -> None:
    registry = base.split("/", 1)[0]
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {registry}/amd64-only:1\nRUN true\n")
    proc = bale(
        tmp_path / "root",
        "build",
        "--progress",
        "plain",
        "--platform",
        "linux/amd64,linux/s390x",
        str(ctx),
        check=False,
    )
    assert proc.returncode == 1
    assert "linux/s390x" in proc.stderr and "Traceback" not in proc.stderr


def test_build_push_keeps_the_digest(base: str, tmp_path: Path) -> None:
    skopeo = require_tool("skopeo")
    registry = base.split("/", 1)[0]
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {base}\nRUN echo built > /built\n")
    meta = tmp_path / "meta.json"
    ref = f"{registry}/app:1"
    bale(
        tmp_path / "root",
        "build",
        "--progress",
        "quiet",
        "--platform",
        "linux/amd64,linux/arm64",
        "--push",
        "-t",
        ref,
        "--metadata-file",
        str(meta),
        str(ctx),
    )
    digest = json.loads(meta.read_text())["containerimage.digest"]
    raw = subprocess.run(
        [skopeo, "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
        capture_output=True,
        check=True,
    ).stdout
    assert f"sha256:{hashlib.sha256(raw).hexdigest()}" == digest
