"""The first difference between two images, named as a user can act on it: the platform,
the config field, or the layer and the file in it."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from bale.exporters.image_diff import first_difference
from bale.oci.descriptor import Descriptor
from bale.oci.platform import Platform
from bale.store.importer import import_rootfs
from bale.store.local import Store

ARM64 = Platform.parse("linux/arm64")


def rootfs(entries: dict[str, tuple[bytes, int, int]]) -> io.BytesIO:
    """name -> (content, mode, mtime)"""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, (data, mode, mtime) in sorted(entries.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, mtime
            tar.addfile(info, io.BytesIO(data))
    out.seek(0)
    return out


BASE = {"etc/os-release": (b"ID=x\n", 0o644, 100), "app/stamp": (b"1\n", 0o644, 100)}


def image(
    root: Path, entries: dict[str, tuple[bytes, int, int]], created: float = 0
) -> tuple[Store, Descriptor]:
    store = Store(root)
    return store, import_rootfs(store, rootfs(entries), "app:1", ARM64, created=created)


def difference(
    tmp_path: Path, second: dict[str, tuple[bytes, int, int]], created: float = 0
) -> str:
    a, ta = image(tmp_path / "a", BASE)
    b, tb = image(tmp_path / "b", second, created)
    with a, b:
        found = first_difference(a, ta, b, tb)
    return str(found)


def test_the_same_image_has_no_difference(tmp_path: Path) -> None:
    a, ta = image(tmp_path / "a", BASE)
    b, tb = image(tmp_path / "b", BASE)
    with a, b:
        assert first_difference(a, ta, b, tb) is None


def test_a_changed_file_is_named_with_its_layer(tmp_path: Path) -> None:
    found = difference(tmp_path, {**BASE, "app/stamp": (b"2\n", 0o644, 100)})
    assert found == "linux/arm64 layer 1 of 1 (bale import): /app/stamp: content differs"


def test_metadata_differences_say_which(tmp_path: Path) -> None:
    assert difference(tmp_path / "1", {**BASE, "app/stamp": (b"1\n", 0o755, 100)}).endswith(
        "/app/stamp: mode differs (644 != 755)"
    )
    assert difference(tmp_path / "2", {**BASE, "app/stamp": (b"1\n", 0o644, 101)}).endswith(
        "/app/stamp: mtime differs (100 != 101)"
    )
    assert difference(tmp_path / "3", {**BASE, "app/new": (b"", 0o644, 100)}).endswith(
        "/app/new: only in the second build"
    )


def test_a_config_difference_names_the_field(tmp_path: Path) -> None:
    found = difference(tmp_path, BASE, created=86400)
    assert found == (
        'linux/arm64 config: created: "1970-01-01T00:00:00Z" != "1970-01-02T00:00:00Z"'
    )
