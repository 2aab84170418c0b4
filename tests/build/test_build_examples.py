"""Each example builds for two platforms; the saved index runs per platform in a real
containerd and keeps its digest through skopeo into a real registry."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from buildhelp import (
    PYTHON_BASE,
    TWO,
    UNAME,
    bale,
    build,
    example,
    index_platforms,
    require_root,
    require_tool,
)

from bale.oci.platform import host_platform

pytestmark = pytest.mark.root

QEMU = {"linux/amd64": "qemu-x86_64", "linux/arm64": "qemu-aarch64"}


@dataclass(frozen=True)
class Built:
    name: str
    root: Path
    ref: str
    archive: Path  # `bale save` of ref
    index_digest: str
    run_args: tuple[str, ...]  # what `ctr run` runs (empty: the image's own command)
    expect: str  # printed by a run on platform P, with {arch} = uname -m of P


def _build_and_save(
    name: str, root: Path, tmp: Path, run_args: tuple[str, ...], expect: str
) -> Built:
    require_root()
    context = example(name, tmp / name)
    ref = f"bale-test/{name}:1"
    proc = build(root, context, "-t", ref)
    assert "Traceback" not in proc.stderr
    assert index_platforms(root, ref) == sorted(TWO)
    inspect = json.loads(bale(root, "image", "inspect", ref).stdout)[0]
    assert inspect["Descriptor"]["mediaType"] == "application/vnd.oci.image.index.v1+json"
    archive = tmp / f"{name}.oci.tar"
    bale(root, "save", "-o", str(archive), ref)
    return Built(name, root, ref, archive, inspect["Descriptor"]["digest"], run_args, expect)


@pytest.fixture(scope="module")
def hello(tmp_path_factory: pytest.TempPathFactory) -> Built:
    tmp = tmp_path_factory.mktemp("hello")
    return _build_and_save(
        "hello",
        tmp / "root",
        tmp,
        ("/bin/sh", "/usr/local/bin/hello"),
        "hello from {arch} (built as {arch})",
    )


@pytest.fixture(scope="module")
def cross_compile(tmp_path_factory: pytest.TempPathFactory) -> Built:
    tmp = tmp_path_factory.mktemp("cross")
    return _build_and_save(
        "cross-compile", tmp / "root", tmp, (), "on the build platform, running on {arch}"
    )


@pytest.fixture(scope="module")
def python_app(tmp_path_factory: pytest.TempPathFactory, python_base_root: Path) -> Built:
    tmp = tmp_path_factory.mktemp("python-app")
    # Built in the store holding the imported base, as `make example-python-app` does.
    root = python_base_root
    assert index_platforms(root, PYTHON_BASE) == sorted(TWO)
    return _build_and_save("python-app", root, tmp, (), "python-app running on {arch}")


EXAMPLES = [
    pytest.param("hello"),
    pytest.param("cross_compile"),
    pytest.param("python_app", marks=pytest.mark.slow),
]


@pytest.fixture(params=EXAMPLES)
def built(request: pytest.FixtureRequest) -> Built:
    value: Built = request.getfixturevalue(request.param)
    return value


def test_saved_archive_holds_the_two_platform_index(built: Built) -> None:
    skopeo = require_tool("skopeo")
    raw = subprocess.run(
        [skopeo, "inspect", "--raw", f"oci-archive:{built.archive}"],
        capture_output=True,
        check=True,
    ).stdout
    assert f"sha256:{hashlib.sha256(raw).hexdigest()}" == built.index_digest
    platforms = sorted(
        f"{m['platform']['os']}/{m['platform']['architecture']}"
        for m in json.loads(raw)["manifests"]
        if m.get("platform", {}).get("os") != "unknown"
    )
    assert platforms == sorted(TWO)


def test_containerd_runs_each_platform(built: Built, containerd: list[str]) -> None:
    host = str(host_platform())
    for platform in TWO:
        if platform != host and not Path(f"/proc/sys/fs/binfmt_misc/{QEMU[platform]}").exists():
            pytest.skip(f"no binfmt_misc handler {QEMU[platform]} to run {platform}")
    subprocess.run(
        [*containerd, "images", "import", "--all-platforms", str(built.archive)],
        capture_output=True,
        check=True,
        timeout=300,
    )
    listing = subprocess.run(
        [*containerd, "images", "ls"], capture_output=True, text=True, check=True
    ).stdout
    line = next(x for x in listing.splitlines() if f"/{built.ref} " in x)
    assert built.index_digest in line
    image = line.split()[0]
    for i, platform in enumerate(TWO):
        run = subprocess.run(
            [
                *containerd,
                "run",
                "--rm",
                "--platform",
                platform,
                image,
                f"bale-build-test-{os.getpid()}-{built.name}-{i}",
                *built.run_args,
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert run.returncode == 0, run.stderr
        assert built.expect.format(arch=UNAME[platform]) in run.stdout, run.stdout


def test_skopeo_copy_to_a_registry_keeps_the_index_digest(built: Built, registry: str) -> None:
    skopeo = require_tool("skopeo")
    dest = f"docker://{registry}/{built.ref}"
    subprocess.run(
        [skopeo, "copy", "--all", "--dest-tls-verify=false", f"oci-archive:{built.archive}", dest],
        capture_output=True,
        check=True,
        timeout=300,
    )
    raw = subprocess.run(
        [skopeo, "inspect", "--raw", "--tls-verify=false", dest], capture_output=True, check=True
    ).stdout
    assert f"sha256:{hashlib.sha256(raw).hexdigest()}" == built.index_digest
