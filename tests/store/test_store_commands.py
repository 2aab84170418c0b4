"""The image commands as a user runs them: images, inspect, tag, rmi, save, load."""

from __future__ import annotations

import json
import subprocess
import tarfile
from pathlib import Path

import pytest
from storehelp import (
    assert_check_clean,
    bale,
    bale_bytes,
    import_platforms,
    require_tool,
    small_rootfs,
    state,
)

from bale.oci import mediatype

pytestmark = pytest.mark.slow

TWO = {"linux/amd64": small_rootfs("amd64"), "linux/arm64": small_rootfs("arm64")}


@pytest.fixture
def two(root: Path, tmp_path: Path) -> str:
    """demo/two:1 with amd64 and arm64; returns the index digest."""
    return import_platforms(root, tmp_path, "demo/two:1", TWO)[-1]


def test_images_quiet_and_json(root: Path, two: str, tmp_path: Path) -> None:
    one = import_platforms(root, tmp_path, "other/one:2", {"linux/amd64": small_rootfs("o")})[-1]
    quiet = bale(root, "images", "-q").stdout.split()
    assert sorted(quiet) == sorted([two.split(":")[1][:12], one.split(":")[1][:12]])
    assert sorted(bale(root, "images", "-q", "--no-trunc").stdout.split()) == sorted([two, one])
    rows = [json.loads(x) for x in bale(root, "images", "--format", "json").stdout.splitlines()]
    by_name = {r["Name"]: r for r in rows}
    assert set(by_name) == {"docker.io/demo/two:1", "docker.io/other/one:2"}
    row = by_name["docker.io/demo/two:1"]
    assert (row["Repository"], row["Tag"], row["Digest"]) == ("demo/two", "1", two)
    assert row["ID"] == two.split(":")[1][:12]  # docker's short ID
    assert row["MediaType"] == mediatype.OCI_INDEX
    assert row["Platforms"] == ["linux/amd64", "linux/arm64"]
    assert row["ContentSize"] > 0 and row["Size"].endswith("B")
    # A repository filter.
    assert bale(root, "images", "-q", "--no-trunc", "demo/two").stdout.split() == [two]
    assert bale(root, "images", "-q", "demo/two:9").stdout == ""
    table = bale(root, "images").stdout.splitlines()
    assert table[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    # Anything else is a Go template, as docker reads --format.
    listed = bale(root, "images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    assert "demo/two:1" in listed
    bad = bale(root, "images", "--format", "{{range .}}{{end}}", check=False)
    assert bad.returncode == 1 and "unsupported action" in bad.stderr


def test_inspect_per_platform(root: Path, two: str) -> None:
    both = {}
    for arch in ("amd64", "arm64"):
        doc = json.loads(
            bale(root, "image", "inspect", "--platform", f"linux/{arch}", "demo/two:1").stdout
        )
        assert len(doc) == 1
        both[arch] = doc[0]
        assert doc[0]["Id"] == two
        assert doc[0]["Architecture"] == arch and doc[0]["Os"] == "linux"
        assert doc[0]["RepoTags"] == ["demo/two:1"]
        assert doc[0]["Platforms"] == ["linux/amd64", "linux/arm64"]
        assert doc[0]["Descriptor"]["digest"] == two
    assert both["amd64"]["Manifest"]["digest"] != both["arm64"]["Manifest"]["digest"]
    assert both["amd64"]["RootFS"]["Layers"] != both["arm64"]["RootFS"]["Layers"]
    # aarch64 is arm64 by another name.
    alias = json.loads(
        bale(root, "image", "inspect", "--platform", "linux/aarch64", "demo/two:1").stdout
    )
    assert alias[0]["Manifest"] == both["arm64"]["Manifest"]
    missing = bale(root, "image", "inspect", "--platform", "linux/s390x", "demo/two:1", check=False)
    assert missing.returncode == 1
    assert missing.stderr.strip() == "ERROR: image has no manifest for platform linux/s390x"
    unknown = bale(root, "image", "inspect", "demo/nope:1", check=False)
    assert unknown.returncode == 1 and "No such image: demo/nope:1" in unknown.stderr


def test_tag_and_rmi(root: Path, two: str) -> None:
    bale(root, "tag", "demo/two:1", "registry.example:5000/team/app:v2")
    bale(root, "tag", two.split(":")[1][:12], "demo/byid:1")  # by ID prefix
    names = {
        json.loads(x)["Name"] for x in bale(root, "images", "--format", "json").stdout.splitlines()
    }
    assert names == {
        "docker.io/demo/two:1",
        "registry.example:5000/team/app:v2",
        "docker.io/demo/byid:1",
    }
    assert set(bale(root, "images", "-q").stdout.split()) == {two.split(":")[1][:12]}
    bale(root, "store", "gc")  # the one-platform index the second import superseded
    blobs = state(root).blobs
    # Removing one name of several keeps the content.
    assert bale(root, "rmi", "registry.example:5000/team/app:v2").stdout.strip() == (
        "Untagged: registry.example:5000/team/app:v2"
    )
    assert state(root).blobs == blobs
    # By ID, an image with several names is refused, as docker refuses it without -f...
    refused = bale(root, "rmi", two, check=False)
    assert refused.returncode == 1 and "must be forced" in refused.stderr
    assert state(root).blobs == blobs
    # ...and with -f every name goes, then the content.
    out = bale(root, "rmi", "-f", two).stdout.splitlines()
    assert sorted(out[:-1]) == ["Untagged: demo/byid:1", "Untagged: demo/two:1"]
    assert out[-1] == f"Deleted: {two}"
    assert bale(root, "images", "-q").stdout == ""
    assert state(root).blobs == frozenset()
    gone = bale(root, "rmi", "demo/two:1", check=False)
    assert gone.returncode == 1 and "No such image: demo/two:1" in gone.stderr
    assert bale(root, "rmi", "-f", "demo/two:1").returncode == 0
    bad = bale(root, "tag", "demo/nope:1", "x:1", check=False)
    assert bad.returncode == 1 and "No such image" in bad.stderr
    digest = bale(root, "tag", "demo/two:1", f"x@sha256:{'0' * 64}", check=False)
    assert digest.returncode == 1 and "refusing to create a tag with a digest" in digest.stderr
    usage = bale(root, "tag", "only-one", check=False)
    assert usage.returncode == 2


def test_save_oci_and_load_from_stdin_round_trip(root: Path, two: str, tmp_path: Path) -> None:
    saved = bale_bytes(root, "save", "demo/two:1")
    assert saved.returncode == 0, saved.stderr
    with tarfile.open(fileobj=__import__("io").BytesIO(saved.stdout)) as tar:
        names = tar.getnames()
        index = json.loads(tar.extractfile("index.json").read())  # type: ignore[union-attr]
    assert "oci-layout" in names and f"blobs/sha256/{two.split(':')[1]}" in names
    [desc] = index["manifests"]
    assert desc["digest"] == two
    assert desc["annotations"] == {
        "io.containerd.image.name": "docker.io/demo/two:1",
        "org.opencontainers.image.ref.name": "1",
    }
    other = tmp_path / "other-root"
    loaded = bale_bytes(other, "load", input=saved.stdout)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.decode().strip() == "Loaded image: demo/two:1"
    assert bale(other, "images", "-q", "--no-trunc").stdout.split() == [two]
    bale(root, "store", "gc")  # the one-platform index the second import superseded
    assert state(other).blobs == state(root).blobs
    # Saving to a file gives the same bytes (the archive is deterministic).
    out = tmp_path / "two.tar"
    bale(root, "save", "-o", str(out), "demo/two:1")
    assert out.read_bytes() == saved.stdout
    assert_check_clean(other)


def test_save_docker_format_is_read_by_skopeo(root: Path, two: str, tmp_path: Path) -> None:
    skopeo = require_tool("skopeo")
    out = tmp_path / "arm64.docker.tar"
    bale(
        root,
        "save",
        "--format",
        "docker",
        "--platform",
        "linux/arm64",
        "-o",
        str(out),
        "demo/two:1",
    )
    with tarfile.open(out) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert manifest[0]["RepoTags"] == ["demo/two:1"]
    info = json.loads(
        subprocess.run(
            [skopeo, "inspect", f"docker-archive:{out}"], capture_output=True, check=True
        ).stdout
    )
    assert info["Architecture"] == "arm64" and info["Os"] == "linux"
    assert len(info["Layers"]) == 1
    # And it loads back as a one-platform image with the same layer content.
    other = tmp_path / "other-root"
    assert bale(other, "load", "-i", str(out)).stdout.strip() == "Loaded image: demo/two:1"
    doc = json.loads(bale(other, "image", "inspect", "demo/two:1").stdout)[0]
    ref = json.loads(
        bale(root, "image", "inspect", "--platform", "linux/arm64", "demo/two:1").stdout
    )[0]
    assert doc["RootFS"] == ref["RootFS"] and doc["Architecture"] == "arm64"
    assert_check_clean(other)


def test_save_refuses_a_terminal_and_unknown_images(root: Path, two: str, tmp_path: Path) -> None:
    out = tmp_path / "x.tar"
    proc = bale(root, "save", "-o", str(out), "demo/two:1", "demo/nope:1", check=False)
    assert proc.returncode == 1 and "No such image: demo/nope:1" in proc.stderr
    assert not out.exists() and list(tmp_path.glob(".x.tar.*")) == []


def test_import_from_stdin_adds_a_platform(root: Path, two: str) -> None:
    proc = bale_bytes(
        root, "import", "--platform", "linux/arm/v7", "-", "demo/two:1", input=small_rootfs("v7")
    )
    assert proc.returncode == 0, proc.stderr
    row = json.loads(bale(root, "images", "--format", "json").stdout)
    assert row["Platforms"] == ["linux/amd64", "linux/arm/v7", "linux/arm64"]
    assert row["Digest"] == proc.stdout.decode().strip() != two
    # The replaced index does not linger as a dangling image.
    assert len(bale(root, "images", "-a", "-q").stdout.split()) == 1


def test_docker_archive_written_by_skopeo_loads(root: Path, two: str, tmp_path: Path) -> None:
    # skopeo's docker-archive links `<id>/layer.tar -> ../<hex>.tar`.
    skopeo = require_tool("skopeo")
    oci = tmp_path / "two.oci.tar"
    bale(root, "save", "-o", str(oci), "demo/two:1")
    docker = tmp_path / "skopeo.docker.tar"
    subprocess.run(
        [
            skopeo,
            "copy",
            "-q",
            "--override-arch",
            "arm64",
            f"oci-archive:{oci}",
            f"docker-archive:{docker}:demo/from-skopeo:3",
        ],
        capture_output=True,
        check=True,
    )
    with tarfile.open(docker) as tar:
        assert any(m.issym() for m in tar.getmembers())
    other = tmp_path / "other-root"
    out = bale(other, "load", "-i", str(docker)).stdout.strip()
    assert out == "Loaded image: demo/from-skopeo:3"
    doc = json.loads(bale(other, "image", "inspect", "demo/from-skopeo:3").stdout)[0]
    ref = json.loads(
        bale(root, "image", "inspect", "--platform", "linux/arm64", "demo/two:1").stdout
    )[0]
    assert doc["RootFS"] == ref["RootFS"] and doc["Architecture"] == "arm64"
    assert_check_clean(other)


def test_dangling_images_are_listed_and_filtered(root: Path, two: str) -> None:
    # Re-pointing a name leaves the image it named dangling, shown as docker shows it.
    bale(root, "tag", "demo/two:1", "demo/other:1")
    small = small_rootfs("x")
    proc = bale_bytes(root, "import", "--platform", "linux/amd64", "-", "demo/two:1", input=small)
    assert proc.returncode == 0, proc.stderr
    bale(root, "tag", "demo/two:1", "demo/other:1")  # demo/other:1 moves; two's old index dangles
    rows = [
        json.loads(line) for line in bale(root, "images", "--format", "json").stdout.splitlines()
    ]
    assert [r["Digest"] for r in rows if r["Repository"] == "<none>"] == [two]
    dangling = bale(root, "images", "-q", "--no-trunc", "-f", "dangling=true").stdout.split()
    assert dangling == [two]
    named = bale(root, "images", "--format", "json", "-f", "dangling=false").stdout.splitlines()
    assert {json.loads(r)["Repository"] for r in named} == {"demo/two", "demo/other"}
    only = bale(root, "images", "--format", "json", "-f", "reference=demo/oth*").stdout
    assert [json.loads(r)["Repository"] for r in only.splitlines()] == ["demo/other"]
    bad = bale(root, "images", "-f", "colour=blue", check=False)
    assert bad.returncode == 1 and "invalid filter" in bad.stderr


def test_an_unnamed_image_is_kept_until_removed(root: Path, two: str, tmp_path: Path) -> None:
    archive = tmp_path / "by-id.tar"
    bale(root, "save", "-o", str(archive), two)  # by ID: the archive names no image
    other = tmp_path / "other-root"
    loaded = bale(other, "load", "-i", str(archive)).stdout
    assert loaded.strip() == f"Loaded image ID: {two}"
    bale(other, "store", "gc")
    assert bale(other, "images", "-q", "--no-trunc").stdout.split() == [two]
    assert_check_clean(other)
    bale(other, "tag", two.split(":")[1][:12], "named:1")  # and it can be named by its ID
    assert json.loads(bale(other, "images", "--format", "json", "named").stdout)["Digest"] == two


def test_save_needs_an_existing_directory(root: Path, two: str, tmp_path: Path) -> None:
    proc = bale(root, "save", "-o", str(tmp_path / "missing" / "x.tar"), "demo/two:1", check=False)
    assert proc.returncode == 1 and "no such file or directory" in proc.stderr
    assert not (tmp_path / "missing").exists()


def test_docker_save_of_several_images_and_prune_all(root: Path, two: str, tmp_path: Path) -> None:
    skopeo = require_tool("skopeo")
    bale(root, "tag", "demo/two:1", "demo/other:1")
    archive = tmp_path / "several.tar"
    bale(
        root,
        "save",
        "--format",
        "docker",
        "-o",
        str(archive),
        "demo/two:1",
        "demo/other:1",
        "demo/two:1",
    )
    with tarfile.open(archive) as tar:
        member = tar.extractfile("manifest.json")
        assert member is not None
        doc = json.loads(member.read())
    assert [sorted(entry["RepoTags"]) for entry in doc] == [["demo/other:1", "demo/two:1"]]
    for name in ("demo/two:1", "demo/other:1"):
        subprocess.run(
            [skopeo, "inspect", f"docker-archive:{archive}:{name}"], check=True, capture_output=True
        )
    # Filters: values of one key are ORed; a glob REPOSITORY argument is a reference filter.
    listed = bale(
        root,
        "images",
        "--format",
        "{{.Repository}}",
        "-f",
        "reference=demo/two",
        "-f",
        "reference=demo/oth*",
    ).stdout.split()
    assert sorted(listed) == ["demo/other", "demo/two"]
    assert bale(root, "images", "-q", "demo/o*").stdout.split() == [two.split(":")[1][:12]]
    # prune -a removes every image (no container uses one), reported as docker reports it.
    out = bale(root, "image", "prune", "-a", "-f").stdout
    assert out.startswith("Deleted Images:\n") and "untagged: demo/two:1" in out
    assert f"deleted: {two}" in out and "Total reclaimed space:" in out
    assert bale(root, "images", "-q").stdout == ""
    assert state(root).blobs == frozenset()


def test_inspect_shows_what_it_finds(root: Path, two: str) -> None:
    proc = bale(
        root,
        "image",
        "inspect",
        "-f",
        "{{.Id}} {{.RepoDigests}}",
        "nope:1",
        "demo/two:1",
        check=False,
    )
    assert proc.returncode == 1 and "No such image: nope:1" in proc.stderr
    assert proc.stdout.strip() == f"{two} [demo/two@{two}]"
