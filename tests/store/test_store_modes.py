"""Store modes: the inactive mode's images are hidden and come back; classic refuses indexes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from storehelp import (
    StoreState,
    assert_check_clean,
    bale,
    import_platforms,
    small_rootfs,
    state,
)

from bale.errors import MULTI_PLATFORM_REFUSAL, MultiPlatformRefused
from bale.oci import mediatype
from bale.store.images import StoreMode
from bale.store.local import Store

pytestmark = pytest.mark.slow

TWO = {"linux/amd64": small_rootfs("amd64"), "linux/arm64": small_rootfs("arm64")}


def _ids(root: Path) -> list[str]:
    return bale(root, "images", "-q", "--no-trunc").stdout.split()


def test_fresh_root_starts_in_containerd_mode(root: Path) -> None:
    out = bale(root, "store", "status").stdout
    assert "mode:        containerd" in out
    assert "images:      0 (0 hidden in the other mode)" in out


def test_switching_modes_hides_and_restores_images(root: Path, tmp_path: Path) -> None:
    index = import_platforms(root, tmp_path, "demo/two:1", TWO)[-1]
    assert _ids(root) == [index]
    assert bale(root, "store", "use", "classic").stdout.strip() == "image store: classic"
    assert _ids(root) == []
    assert "mode:        classic" in bale(root, "store", "status").stdout
    assert "1 hidden in the other mode" in bale(root, "store", "status").stdout
    # Hidden means hidden to every command, not only the listing.
    for args in (("image", "inspect", "demo/two:1"), ("rmi", "demo/two:1")):
        proc = bale(root, *args, check=False)
        assert proc.returncode == 1
        assert "No such image: demo/two:1" in proc.stderr
    saved = tmp_path / "hidden.tar"
    assert bale(root, "save", "-o", str(saved), "demo/two:1", check=False).returncode == 1
    assert not saved.exists()
    # A classic image made now is hidden in turn when switching back.
    (tmp_path / "one.tar").write_bytes(small_rootfs("classic"))
    classic_digest = bale(
        root, "import", "--platform", "linux/amd64", str(tmp_path / "one.tar"), "demo/classic:1"
    ).stdout.strip()
    assert len(_ids(root)) == 1
    bale(root, "store", "use", "containerd")
    assert _ids(root) == [index]
    row = json.loads(bale(root, "images", "--format", "json").stdout)
    assert row["Platforms"] == ["linux/amd64", "linux/arm64"]
    # Garbage collection in one mode keeps the other mode's content.
    bale(root, "store", "gc")
    bale(root, "store", "use", "classic")
    assert [
        json.loads(x)["Digest"]
        for x in bale(root, "images", "--format", "json").stdout.splitlines()
    ] == [classic_digest]
    assert_check_clean(root)


def test_classic_import_holds_one_platform_per_image(root: Path, tmp_path: Path) -> None:
    bale(root, "store", "use", "classic")
    import_platforms(root, tmp_path, "demo/c:1", TWO)
    row = json.loads(bale(root, "images", "--format", "json").stdout)
    # The second platform replaced the first: a plain manifest, no index.
    assert row["MediaType"] == mediatype.OCI_MANIFEST
    assert row["Platforms"] == ["linux/arm64"]
    # docker's classic IMAGE ID is the config digest.
    doc = json.loads(bale(root, "image", "inspect", "demo/c:1").stdout)[0]
    assert doc["Architecture"] == "arm64"
    assert _ids(root) != [row["Digest"]]


def _multi_platform_archive(tmp_path: Path) -> Path:
    src = tmp_path / "src-root"
    import_platforms(src, tmp_path, "demo/two:1", TWO)
    archive = tmp_path / "two.tar"
    bale(src, "save", "-o", str(archive), "demo/two:1")
    return archive


def _assert_refused(root: Path, archive: Path, before: StoreState) -> None:
    proc = bale(root, "load", "-i", str(archive), check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == MULTI_PLATFORM_REFUSAL
    assert proc.stdout == ""
    assert state(root) == before
    assert_check_clean(root)


def test_classic_refuses_loading_an_index_writing_nothing(root: Path, tmp_path: Path) -> None:
    archive = _multi_platform_archive(tmp_path)
    bale(root, "store", "use", "classic")
    (tmp_path / "one.tar").write_bytes(small_rootfs("kept"))
    bale(root, "import", "--platform", "linux/amd64", str(tmp_path / "one.tar"), "demo/kept:1")
    before = state(root)
    assert len(before.blobs) == 3 and len(before.images) == 1
    _assert_refused(root, archive, before)
    # Also when the content is already present, hidden under the other mode.
    bale(root, "store", "use", "containerd")
    bale(root, "load", "-i", str(archive))
    bale(root, "store", "use", "classic")
    _assert_refused(root, archive, state(root))
    assert bale(root, "images", "--format", "json").stdout.count("\n") == 1


def test_classic_refusal_is_the_check_a_multi_platform_build_makes(root: Path) -> None:
    with Store(root) as store:
        store.require_multi_platform(2)
        store.set_mode(StoreMode.CLASSIC)
        store.require_multi_platform(1)
        with pytest.raises(MultiPlatformRefused) as info:
            store.require_multi_platform(2)
    assert str(info.value) == MULTI_PLATFORM_REFUSAL


def test_classic_refuses_tagging_an_index_directly(root: Path, tmp_path: Path) -> None:
    index = import_platforms(root, tmp_path, "demo/two:1", TWO)[-1]
    with Store(root) as store:
        target = store.resolve(index)
        store.set_mode(StoreMode.CLASSIC)
        with pytest.raises(MultiPlatformRefused):
            store.set_image("docker.io/demo/other:1", target)
        assert store.images().all() == []


def test_classic_unwraps_a_one_platform_index(root: Path, tmp_path: Path) -> None:
    src = tmp_path / "src-root"
    index = import_platforms(src, tmp_path, "demo/one:1", {"linux/arm64": small_rootfs("1")})[-1]
    archive = tmp_path / "one.tar"
    bale(src, "save", "-o", str(archive), "demo/one:1")
    manifest = json.loads(bale(src, "image", "inspect", "demo/one:1").stdout)[0]["Manifest"]
    bale(root, "store", "use", "classic")
    assert bale(root, "load", "-i", str(archive)).stdout.strip() == "Loaded image: demo/one:1"
    row = json.loads(bale(root, "images", "--format", "json").stdout)
    assert row["MediaType"] == mediatype.OCI_MANIFEST
    assert row["Digest"] == manifest["digest"] != index
    assert_check_clean(root)
