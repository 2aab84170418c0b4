"""The bytes a layer and an imported image come out as depend only on their inputs: PAX tar
entries sorted by name, whole-second mtimes clamped to SOURCE_DATE_EPOCH, numeric owners
without names, no atime/ctime; a gzip header without time or name, and the same blob for
any number of compression threads; `bale import` with SOURCE_DATE_EPOCH or --created."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import random
import tarfile
from pathlib import Path

import pytest
from storehelp import bale

from bale.oci.platform import Platform
from bale.store.compression import LayerWriter
from bale.store.importer import import_rootfs
from bale.store.layers.diff import DiffOptions, diff_trees
from bale.store.local import Store

EPOCH = 1_700_000_000


def tree(root: Path, order: list[str]) -> None:
    """The same files, made in a given order, with sub-second times after the epoch."""
    for name in order:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"content of {name}\n")
        later = EPOCH + 1000.123456
        os.utime(path, (later + 77.5, later))
    os.utime(root / "a", (EPOCH - 50.75, EPOCH - 100.25))  # older than the epoch: kept


def layer(root: Path, threads: int, sde: int | None = EPOCH) -> tuple[bytes, bytes]:
    out = io.BytesIO()
    blob = diff_trees(None, root, out, DiffOptions(source_date_epoch=sde, threads=threads))
    raw = out.getvalue()
    assert hashlib.sha256(raw).hexdigest() == blob.digest.hex
    return raw, gzip.decompress(raw)


def test_the_same_tree_gives_the_same_layer_whatever_order_and_threads(tmp_path: Path) -> None:
    names = ["a", "z/deep/file", "m/one", "m/two", "b.txt"]
    first, second = tmp_path / "first", tmp_path / "second"
    tree(first, names)
    shuffled = names[:]
    random.Random(7).shuffle(shuffled)
    tree(second, list(reversed(shuffled)))
    blobs = {layer(first, 1)[0], layer(second, 4)[0], layer(second, 2)[0]}
    assert len(blobs) == 1


def test_tar_entries_are_pax_sorted_clamped_and_nameless(tmp_path: Path) -> None:
    tree(tmp_path / "t", ["a", "z/deep/file", "m/one", "b.txt"])
    raw, tar = layer(tmp_path / "t", 2)
    # gzip: no FNAME/FEXTRA/FCOMMENT flag, MTIME 0.
    assert raw[:3] == b"\x1f\x8b\x08" and raw[3] == 0 and raw[4:8] == b"\0\0\0\0"
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        members = archive.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names, key=lambda n: n.split("/"))
    by_name = {m.name: m for m in members}
    assert by_name["a"].mtime == EPOCH - 101  # older than the epoch: whole seconds, kept
    assert all(m.mtime <= EPOCH for m in members)
    assert all(m.uname == "" and m.gname == "" for m in members)
    for m in members:
        assert not {"atime", "ctime", "mtime"} & set(m.pax_headers)
    # ustar magic: a POSIX header, with PAX records only where a field needs one.
    assert tar[257:263] == b"ustar\x00"


def test_without_an_epoch_times_are_whole_seconds(tmp_path: Path) -> None:
    tree(tmp_path / "t", ["a", "b"])
    _, tar = layer(tmp_path / "t", 1, sde=None)
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        assert archive.getmember("b").mtime == int(EPOCH + 1000.123456)


@pytest.mark.parametrize("size", [10, 3 << 20])
def test_gzip_bytes_do_not_depend_on_the_thread_count(size: int) -> None:
    data = random.Random(size).randbytes(size // 2) + b"layer " * (size // 12)
    outs = set()
    for threads in (1, 2, 4):
        sink = io.BytesIO()
        writer = LayerWriter(sink, "gzip", threads=threads)
        writer.write(data)
        writer.close()
        outs.add(sink.getvalue())
    assert len(outs) == 1


def rootfs_tar(tmp_path: Path) -> Path:
    path = tmp_path / "rootfs.tar"
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in (("etc/os-release", b"ID=test\n"), ("bin/tool", b"\x7fELF")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = EPOCH - 5
            tar.addfile(info, io.BytesIO(data))
    return path


def test_import_is_deterministic_with_an_epoch(tmp_path: Path) -> None:
    tar = rootfs_tar(tmp_path)
    digests = []
    for name in ("one", "two"):
        with Store(tmp_path / name) as store, open(tar, "rb") as f:
            target = import_rootfs(store, f, "base:1", Platform.parse("linux/arm64"), created=EPOCH)
            digests.append(target.digest)
            (entry,) = store.index(target).manifests
            config = store.config(store.manifest(entry).config)
            assert config.created == "2023-11-14T22:13:20Z"
            assert [h.created for h in config.history] == ["2023-11-14T22:13:20Z"]
    assert digests[0] == digests[1]
    with Store(tmp_path / "three") as store, open(tar, "rb") as f:
        later = import_rootfs(store, f, "base:1", Platform.parse("linux/arm64"), created=EPOCH + 1)
    assert later.digest != digests[0]


def test_bale_import_takes_the_epoch_from_the_environment_or_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tar = rootfs_tar(tmp_path)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(EPOCH))
    by_env = bale(tmp_path / "a", "import", "--platform", "linux/arm64", str(tar), "b:1").stdout
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    by_flag = bale(
        tmp_path / "b",
        "import",
        "--platform",
        "linux/arm64",
        "--created",
        "2023-11-14T22:13:20Z",
        str(tar),
        "b:1",
    ).stdout
    seconds = bale(
        tmp_path / "c",
        "import",
        "--platform",
        "linux/arm64",
        "--created",
        str(EPOCH),
        str(tar),
        "b:1",
    ).stdout
    assert by_env == by_flag == seconds
    bad = bale(tmp_path / "d", "import", "--created", "yesterday", str(tar), "b:1", check=False)
    assert bad.returncode != 0 and "invalid --created 'yesterday'" in bad.stderr
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "soon")
    bad = bale(tmp_path / "e", "import", str(tar), "b:1", check=False)
    assert bad.returncode != 0 and "invalid SOURCE_DATE_EPOCH 'soon'" in bad.stderr
