"""`-o` outputs, --iidfile, --metadata-file and -q, read back by real tools."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from buildhelp import TWO, UNAME, bale, build, events, example, require_root, require_tool

pytestmark = pytest.mark.root

DIGEST_LEN = len("sha256:") + 64


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_root()
    return example("hello", tmp_path_factory.mktemp("outputs") / "ctx")


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Shared: after the first test, builds are cache hits and each test is about its output.
    return tmp_path_factory.mktemp("outputs-root") / "root"


def test_oci_archive_is_read_by_skopeo(root: Path, context: Path, tmp_path: Path) -> None:
    skopeo = require_tool("skopeo")
    dest = tmp_path / "image.oci.tar"
    meta = tmp_path / "meta.json"
    build(root, context, "-o", f"type=oci,dest={dest}", "--metadata-file", str(meta))
    raw = subprocess.run(
        [skopeo, "inspect", "--raw", f"oci-archive:{dest}"], capture_output=True, check=True
    ).stdout
    index = json.loads(raw)
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    platforms = sorted(
        f"{m['platform']['os']}/{m['platform']['architecture']}"
        for m in index["manifests"]
        if m["platform"]["os"] != "unknown"
    )
    assert platforms == sorted(TWO)
    digest = f"sha256:{hashlib.sha256(raw).hexdigest()}"
    assert json.loads(meta.read_text())["containerimage.digest"] == digest
    # Each platform's image reads back with its architecture.
    for platform in TWO:
        info = json.loads(
            subprocess.run(
                [
                    skopeo,
                    "inspect",
                    "--override-os",
                    "linux",
                    "--override-arch",
                    platform.split("/")[1],
                    f"oci-archive:{dest}",
                ],
                capture_output=True,
                check=True,
                text=True,
            ).stdout
        )
        assert info["Architecture"] == platform.split("/")[1]


def test_local_output_has_one_directory_per_platform(
    root: Path, context: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "out"
    build(root, context, "-o", f"type=local,dest={dest}")
    assert sorted(p.name for p in dest.iterdir()) == ["linux_amd64", "linux_arm64"]
    for platform in TWO:
        tree = dest / platform.replace("/", "_")
        assert (tree / "etc" / "build-arch").read_text().strip() == UNAME[platform]
        assert (tree / "usr" / "local" / "bin" / "hello").read_text() == (
            context / "hello.sh"
        ).read_text()
        assert (tree / "bin" / "busybox").read_bytes() == (
            context / "bin" / f"busybox-{platform.split('/')[1]}"
        ).read_bytes()


def test_docker_archive_for_one_platform(root: Path, context: Path, tmp_path: Path) -> None:
    skopeo = require_tool("skopeo")
    dest = tmp_path / "image.docker.tar"
    meta = tmp_path / "meta.json"
    build(
        root,
        context,
        "-t",
        "bale-test/hello:docker",
        "-o",
        f"type=docker,dest={dest}",
        "--metadata-file",
        str(meta),
        platforms=("linux/arm64",),
    )
    info = json.loads(
        subprocess.run(
            [skopeo, "inspect", f"docker-archive:{dest}"],
            capture_output=True,
            check=True,
            text=True,
        ).stdout
    )
    assert info["Architecture"] == "arm64"
    assert info["Os"] == "linux"
    config = json.loads(
        subprocess.run(
            [skopeo, "inspect", "--config", "--raw", f"docker-archive:{dest}"],
            capture_output=True,
            check=True,
        ).stdout
    )
    assert config["config"]["Cmd"] == ["/bin/sh", "/usr/local/bin/hello"]
    # One platform: the metadata file names its config, as buildx does.
    data = json.loads(meta.read_text())
    config_raw = subprocess.run(
        [skopeo, "inspect", "--config", "--raw", f"docker-archive:{dest}"],
        capture_output=True,
        check=True,
    ).stdout
    assert data["containerimage.config.digest"] == (
        f"sha256:{hashlib.sha256(config_raw).hexdigest()}"
    )
    assert data["image.name"] == "bale-test/hello:docker"


def test_iidfile_and_metadata_file_name_the_stored_image(
    root: Path, context: Path, tmp_path: Path
) -> None:
    iid, meta = tmp_path / "iid", tmp_path / "meta.json"
    build(
        root,
        context,
        "-t",
        "bale-test/hello:meta",
        "-t",
        "bale-test/hello:other",
        "--iidfile",
        str(iid),
        "--metadata-file",
        str(meta),
    )
    stored = json.loads(bale(root, "image", "inspect", "bale-test/hello:meta").stdout)[0]
    digest = stored["Descriptor"]["digest"]
    assert iid.read_text() == digest
    data = json.loads(meta.read_text())
    assert data["containerimage.digest"] == digest
    assert data["containerimage.descriptor"]["digest"] == digest
    assert data["containerimage.descriptor"]["mediaType"] == stored["Descriptor"]["mediaType"]
    assert data["containerimage.descriptor"]["size"] == stored["Descriptor"]["size"]
    assert data["image.name"] == "bale-test/hello:meta,bale-test/hello:other"
    assert "containerimage.config.digest" not in data  # two platforms, two configs


def test_quiet_prints_only_the_digest(root: Path, context: Path) -> None:
    proc = bale(
        root,
        "build",
        "-q",
        "--platform",
        ",".join(TWO),
        "-t",
        "bale-test/hello:q",
        ".",
        cwd=context,
    )
    out = proc.stdout.strip()
    assert len(out) == DIGEST_LEN and out.startswith("sha256:"), proc.stdout
    assert proc.stdout == out + "\n"
    assert proc.stderr == ""
    stored = json.loads(bale(root, "image", "inspect", "bale-test/hello:q").stdout)[0]
    assert stored["Descriptor"]["digest"] == out


def test_docker_archive_of_two_platforms_is_refused_before_any_step(
    context: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "image.docker.tar"
    proc = build(tmp_path / "root", context, "-o", f"type=docker,dest={dest}", check=False)
    assert proc.returncode == 1
    assert "docker exporter does not currently support exporting manifest lists" in proc.stderr
    assert events(proc.stderr) == []
    assert not dest.exists()


def test_local_output_leaves_out_device_nodes_and_keeps_set_uid(tmp_path: Path) -> None:
    """A base's device nodes are not recreated in a user's directory (anyone who can reach
    it could open the host's device); set-uid bits stay, as BuildKit writes them."""
    import io
    import tarfile

    require_root()
    base = tmp_path / "base.tar"
    with tarfile.open(base, "w") as tar:
        for name, kind, mode in (
            ("dev", tarfile.DIRTYPE, 0o755),
            ("dev/null", tarfile.CHRTYPE, 0o666),
            ("usr", tarfile.DIRTYPE, 0o755),
            ("usr/su", tarfile.REGTYPE, 0o4755),
        ):
            info = tarfile.TarInfo(name)
            info.type, info.mode = kind, mode
            if kind == tarfile.CHRTYPE:
                info.devmajor, info.devminor = 1, 3
            data = b"#!/bin/sh\n" if kind == tarfile.REGTYPE else b""
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    root = tmp_path / "root"
    bale(root, "import", "--platform", "linux/amd64", str(base), "devbase:1")
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM devbase:1\nLABEL x=1\n")
    out = tmp_path / "out"
    bale(
        root,
        "build",
        "--progress",
        "quiet",
        "--platform",
        "linux/amd64",
        "-o",
        f"type=local,dest={out}",
        str(ctx),
    )
    assert (out / "dev").is_dir() and not (out / "dev" / "null").exists()
    assert (out / "usr" / "su").stat().st_mode & 0o7777 == 0o4755
