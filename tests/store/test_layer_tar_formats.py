"""Layer tars as different writers make them, and broken ones, through apply_layer."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import threading
from pathlib import Path

import pytest

from bale.errors import InvalidArgument
from bale.store.layers import apply_layer
from bale.store.layers.tarstream import MAX_EXTENSION

LONG = "d" * 120 + "/" + "f" * 130


def _tar(fmt: int, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for info, data in members:
            if data is None:
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _info(name: str, kind: bytes = tarfile.REGTYPE, **fields: object) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = 0o640
    info.mtime = 1_600_000_000
    for key, value in fields.items():
        setattr(info, key, value)
    return info


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT])
def test_long_names_links_and_numbers_in_each_format(tmp_path: Path, fmt: int) -> None:
    ustar_name = "p" * 90 + "/" + "q" * 90  # fits the ustar prefix field
    name = ustar_name if fmt == tarfile.USTAR_FORMAT else LONG
    big_uid = os.getuid() if fmt == tarfile.USTAR_FORMAT else 3_000_000  # base-256 in GNU
    data = os.urandom(3000)
    to = "short" if fmt == tarfile.USTAR_FORMAT else name  # ustar holds 100-byte links only
    raw = _tar(
        fmt,
        [
            (_info(name.rpartition("/")[0], tarfile.DIRTYPE, mode=0o750), None),
            (_info(name, uid=big_uid, gid=0), data),
            (_info("short"), data),
            (_info("link", tarfile.SYMTYPE, linkname=to), None),
            (_info("hard", tarfile.LNKTYPE, linkname=to), None),
        ],
    )
    result = apply_layer(io.BytesIO(raw), tmp_path)
    assert result.diff_id.hex == hashlib.sha256(raw).hexdigest()
    assert result.size == len(raw)
    path = tmp_path / name
    assert path.read_bytes() == data
    st = os.stat(path)
    assert (st.st_mode & 0o7777, int(st.st_mtime)) == (0o640, 1_600_000_000)
    assert os.stat(path.parent).st_mode & 0o7777 == 0o750
    if os.geteuid() == 0:
        assert st.st_uid == big_uid
    assert os.readlink(tmp_path / "link") == to
    assert os.stat(tmp_path / "hard").st_ino == os.stat(tmp_path / to).st_ino


def test_pax_xattrs_and_an_empty_stream(tmp_path: Path) -> None:
    info = _info("x")
    info.pax_headers = {"SCHILY.xattr.user.note": "hello"}
    raw = _tar(tarfile.PAX_FORMAT, [(info, b"x")])
    apply_layer(io.BytesIO(raw), tmp_path)
    try:
        assert os.getxattr(tmp_path / "x", "user.note") == b"hello"
    except OSError:
        pass  # this filesystem holds no user xattrs; the file itself is what matters
    assert (tmp_path / "x").read_bytes() == b"x"
    empty = apply_layer(io.BytesIO(b""), tmp_path)
    assert empty.diff_id.hex == hashlib.sha256(b"").hexdigest()


def _corrupt_checksum(raw: bytes) -> bytes:
    return raw[:148] + b"0000001\0" + raw[156:]


def _with_size_field(raw: bytes, field: bytes) -> bytes:
    header = bytearray(raw[:512])
    header[124:136] = field
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)
    return bytes(header) + raw[512:]


def _oversized_pax() -> bytes:
    header = tarfile.TarInfo("././@PaxHeader")
    header.type = tarfile.XHDTYPE
    header.size = MAX_EXTENSION + 1
    return header.tobuf(tarfile.USTAR_FORMAT) + bytes(1024)


def _sparse() -> bytes:
    info = _info("holes")
    info.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0"}
    return _tar(tarfile.PAX_FORMAT, [(info, b"")])


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda raw: _corrupt_checksum(raw), "bad header checksum"),
        (lambda raw: raw[:700], "truncated"),
        (lambda raw: raw[:300], "truncated"),
        (lambda raw: _with_size_field(raw, b"zzzzzzzzzzz\0"), "bad size"),
        (lambda raw: _oversized_pax(), "extension header"),
        (lambda raw: _sparse(), "sparse"),
    ],
)
def test_broken_tars_are_clear_errors(tmp_path: Path, make: object, message: str) -> None:
    raw = _tar(tarfile.GNU_FORMAT, [(_info("f"), os.urandom(5000))])
    assert callable(make)
    before = threading.active_count()
    with pytest.raises(InvalidArgument, match=message):
        apply_layer(io.BytesIO(make(raw)), tmp_path)
    assert threading.active_count() == before  # the read-ahead stopped with the error
