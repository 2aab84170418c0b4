"""Bad archives and tarballs: one clear error paragraph, exit 1, and the store as it was."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from storehelp import assert_check_clean, bale, bale_bytes, import_platforms, small_rootfs, state

Members = dict[str, bytes]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Members:
    """The members of a valid two-platform OCI archive written by `bale save`."""
    tmp = tmp_path_factory.mktemp("good")
    src = tmp / "src"
    tars = {"linux/amd64": small_rootfs("x"), "linux/arm64": small_rootfs("y")}
    import_platforms(src, tmp, "demo/good:1", tars)
    archive = tmp / "good.tar"
    bale(src, "save", "-o", str(archive), "demo/good:1")
    members = {}
    with tarfile.open(archive) as tar:
        for info in tar:
            if info.isfile():
                f = tar.extractfile(info)
                assert f is not None
                members[info.name] = f.read()
    return members


@pytest.fixture
def populated(root: Path, tmp_path: Path) -> Path:
    """A store holding an unrelated image, so a failed load has something to leave alone."""
    import_platforms(root, tmp_path, "demo/kept:1", {"linux/amd64": small_rootfs("kept")})
    return root


def _tar(members: Members, *, order: list[str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in order or list(members):
            data = members[name]
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o444
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _blob(data: bytes) -> str:
    return f"blobs/sha256/{hashlib.sha256(data).hexdigest()}"


def _index(members: Members) -> dict:  # type: ignore[type-arg]
    return json.loads(members["index.json"])


def _top(members: Members) -> dict:  # type: ignore[type-arg]
    """The image index the archive's index.json names."""
    digest = _index(members)["manifests"][0]["digest"].split(":")[1]
    return json.loads(members[f"blobs/sha256/{digest}"])


def _replace_manifest(members: Members, edit: Callable[[dict], None]) -> Members:  # type: ignore[type-arg]
    """Edit the first platform manifest and re-point the index chain at the edited bytes."""
    out = dict(members)
    top = _top(members)
    mdesc = top["manifests"][0]
    manifest = json.loads(members[f"blobs/sha256/{mdesc['digest'].split(':')[1]}"])
    edit(manifest)
    mbytes = json.dumps(manifest).encode()
    out[_blob(mbytes)] = mbytes
    mdesc.update(digest=f"sha256:{hashlib.sha256(mbytes).hexdigest()}", size=len(mbytes))
    tbytes = json.dumps(top).encode()
    out[_blob(tbytes)] = tbytes
    index = _index(members)
    index["manifests"][0].update(
        digest=f"sha256:{hashlib.sha256(tbytes).hexdigest()}", size=len(tbytes)
    )
    out["index.json"] = json.dumps(index).encode()
    return out


def _assert_clean_refusal(root: Path, archive: bytes, tmp_path: Path, *words: str) -> str:
    before = state(root)
    path = tmp_path / "bad.tar"
    path.write_bytes(archive)
    proc = bale(root, "load", "-i", str(path), check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    err = proc.stderr.strip()
    assert err.startswith("ERROR: "), err
    assert "Traceback" not in err and "internal error" not in err, err
    assert "\n\n" not in err and len(err.splitlines()) <= 3, err
    for word in words:
        assert word in err, err
    assert proc.stdout == ""
    assert state(root) == before
    assert_check_clean(root)
    # The same bytes through stdin fail the same way.
    piped = bale_bytes(root, "load", input=archive)
    assert piped.returncode == 1 and piped.stderr.decode().strip() == err
    assert state(root) == before
    return err


def test_good_archive_loads(populated: Path, good: Members, tmp_path: Path) -> None:
    before = state(populated)
    path = tmp_path / "good.tar"
    path.write_bytes(_tar(good))
    assert bale(populated, "load", "-i", str(path)).stdout.strip() == "Loaded image: demo/good:1"
    # Exactly the image's blobs were added, not the archive's index.json or oci-layout.
    names = {n for n in good if n.startswith("blobs/")}
    added = {f"sha256:{n.rsplit('/', 1)[1]}" for n in names}
    assert state(populated).blobs == before.blobs | added
    assert "deleted:" not in bale(populated, "store", "gc").stdout
    assert_check_clean(populated)


def test_not_a_tar(populated: Path, tmp_path: Path) -> None:
    _assert_clean_refusal(populated, b"this is not an archive\n" * 100, tmp_path, "archive")


def test_empty_input(populated: Path, tmp_path: Path) -> None:
    _assert_clean_refusal(populated, b"", tmp_path)


@pytest.mark.parametrize("where", ["largest blob", "last member", "a header"])
def test_truncated_archive(populated: Path, good: Members, tmp_path: Path, where: str) -> None:
    order = ["oci-layout", *sorted(n for n in good if n.startswith("blobs/")), "index.json"]
    data = _tar(good, order=order)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        infos = {i.name: i for i in tar}
    if where == "a header":
        cut = infos["index.json"].offset + 100
    else:
        name = "index.json" if where == "last member" else max(good, key=lambda n: len(good[n]))
        cut = infos[name].offset_data + infos[name].size // 2
    _assert_clean_refusal(populated, data[:cut], tmp_path)


def test_corrupt_gzip_archive(populated: Path, good: Members, tmp_path: Path) -> None:
    data = bytearray(gzip.compress(_tar(good)))
    data[len(data) // 2 : len(data) // 2 + 64] = b"\0" * 64
    _assert_clean_refusal(populated, bytes(data), tmp_path)


def test_blob_content_not_matching_its_name(populated: Path, good: Members, tmp_path: Path) -> None:
    bad = dict(good)
    layer = max((n for n in good if n.startswith("blobs/")), key=lambda n: len(good[n]))
    bad[layer] = good[layer][:-1] + bytes([good[layer][-1] ^ 0xFF])
    _assert_clean_refusal(populated, _tar(bad), tmp_path, "digest")


def test_descriptor_size_not_matching_blob(populated: Path, good: Members, tmp_path: Path) -> None:
    def grow(manifest: dict) -> None:  # type: ignore[type-arg]
        manifest["layers"][0]["size"] += 1

    _assert_clean_refusal(populated, _tar(_replace_manifest(good, grow)), tmp_path, "bytes")


@pytest.mark.parametrize(
    "text", [b"{not json", b"[]", b'{"schemaVersion": 2, "manifests": "x"}', b"\xff\xfe"]
)
def test_malformed_index_json(populated: Path, good: Members, tmp_path: Path, text: bytes) -> None:
    bad = dict(good)
    bad["index.json"] = text
    _assert_clean_refusal(populated, _tar(bad), tmp_path, "index")


def test_malformed_manifest_json(populated: Path, good: Members, tmp_path: Path) -> None:
    bad = dict(good)
    top = _top(good)
    name = f"blobs/sha256/{top['manifests'][0]['digest'].split(':')[1]}"
    del bad[name]
    junk = b'{"schemaVersion": 2, "config": 5'
    bad[_blob(junk)] = junk
    top["manifests"][0].update(digest=f"sha256:{hashlib.sha256(junk).hexdigest()}", size=len(junk))
    tbytes = json.dumps(top).encode()
    bad[_blob(tbytes)] = tbytes
    index = _index(good)
    index["manifests"][0].update(
        digest=f"sha256:{hashlib.sha256(tbytes).hexdigest()}", size=len(tbytes)
    )
    bad["index.json"] = json.dumps(index).encode()
    _assert_clean_refusal(populated, _tar(bad), tmp_path, "manifest")


def test_unknown_layer_media_type(populated: Path, good: Members, tmp_path: Path) -> None:
    def odd(manifest: dict) -> None:  # type: ignore[type-arg]
        manifest["layers"][0]["mediaType"] = "application/x-bale-unknown"

    _assert_clean_refusal(
        populated, _tar(_replace_manifest(good, odd)), tmp_path, "application/x-bale-unknown"
    )


def test_unknown_top_media_type(populated: Path, good: Members, tmp_path: Path) -> None:
    bad = dict(good)
    index = _index(good)
    index["manifests"][0]["mediaType"] = "application/x-bale-unknown"
    bad["index.json"] = json.dumps(index).encode()
    _assert_clean_refusal(populated, _tar(bad), tmp_path, "application/x-bale-unknown")


def test_missing_blob(populated: Path, good: Members, tmp_path: Path) -> None:
    bad = dict(good)
    layer = max((n for n in good if n.startswith("blobs/")), key=lambda n: len(good[n]))
    del bad[layer]
    _assert_clean_refusal(populated, _tar(bad), tmp_path, layer.rsplit("/", 1)[1])


@pytest.mark.parametrize(
    "name", ["../evil", "blobs/../../evil", "/etc/evil", "/blobs/sha256/x", "a/../../b"]
)
def test_escaping_member_names(populated: Path, good: Members, tmp_path: Path, name: str) -> None:
    bad = {name: b"evil", **good}
    _assert_clean_refusal(populated, _tar(bad), tmp_path, name)
    assert not (tmp_path / "evil").exists() and not Path("/etc/evil").exists()


def test_escaping_link_target(populated: Path, good: Members, tmp_path: Path) -> None:
    buf = io.BytesIO(_tar(good))
    buf.seek(0, io.SEEK_END)
    data = bytearray(_tar(good))
    with tarfile.open(fileobj=io.BytesIO(), mode="w") as _:
        pass
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        link = tarfile.TarInfo("blobs/sha256/link")
        link.type = tarfile.SYMTYPE
        link.linkname = "../../../etc/passwd"
        tar.addfile(link)
        with tarfile.open(fileobj=io.BytesIO(bytes(data))) as src:
            for info in src:
                f = src.extractfile(info) if info.isfile() else None
                tar.addfile(info, f)
    _assert_clean_refusal(populated, out.getvalue(), tmp_path, "escapes")


def test_docker_archive_with_bad_manifest_json(populated: Path, tmp_path: Path) -> None:
    config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    for text, word in (
        (b"{oops", "manifest.json"),
        (b"{}", "manifest.json"),
        (json.dumps([{"Config": "../c.json", "Layers": []}]).encode(), "escapes"),
        (json.dumps([{"Config": "c.json", "Layers": ["nope.tar"]}]).encode(), "Layers"),
    ):
        members = {"c.json": config, "manifest.json": text}
        _assert_clean_refusal(populated, _tar(members), tmp_path, word)


def test_import_of_a_non_tar(populated: Path, tmp_path: Path) -> None:
    before = state(populated)
    bad = tmp_path / "bad.tar"
    bad.write_bytes(b"\x1f\x8b" + b"garbage" * 100)
    for source in (str(bad), str(tmp_path / "missing.tar")):
        proc = bale(populated, "import", source, "demo/x:1", check=False)
        assert proc.returncode == 1
        assert proc.stderr.startswith("ERROR: ") and "Traceback" not in proc.stderr
        assert "internal error" not in proc.stderr, proc.stderr
    assert state(populated) == before
