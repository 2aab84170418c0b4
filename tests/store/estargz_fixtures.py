"""Layer tars for the eStargz tests, built in memory with tarfile (PAX, as bale writes them)."""

from __future__ import annotations

import hashlib
import io
import tarfile
from typing import Any

MTIME = 1700000000  # 2023-11-14T22:13:20Z


def entry(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", **attrs: Any) -> Any:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mtime = attrs.pop("mtime", MTIME)
    info.mode = attrs.pop("mode", 0o755 if kind == tarfile.DIRTYPE else 0o644)
    info.uname = attrs.pop("uname", "root")
    info.gname = attrs.pop("gname", "root")
    for key, value in attrs.items():
        setattr(info, key, value)
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, data


def make_tar(*entries: Any, fmt: int = tarfile.PAX_FORMAT, **kw: Any) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt, **kw) as tf:
        for info, data in entries:
            tf.addfile(info, io.BytesIO(data) if data else None)
    return buf.getvalue()


def pattern(size: int, seed: str) -> bytes:
    """Reproducible bytes that do not compress to nothing."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


def tree() -> bytes:
    """Every kind of entry a layer holds, with whiteouts, xattrs and awkward names."""
    return make_tar(
        entry("etc", tarfile.DIRTYPE),
        entry("etc/hello.txt", data=b"hello world\n"),
        entry("etc/empty"),
        entry("etc/link", tarfile.SYMTYPE, linkname="hello.txt", mode=0o777),
        entry("etc/hard", tarfile.LNKTYPE, linkname="etc/hello.txt"),
        entry("etc/.wh.gone"),
        entry("opt", tarfile.DIRTYPE),
        entry("opt/.wh..wh..opq"),
        entry(
            "etc/x",
            data=b"with xattrs",
            pax_headers={
                "SCHILY.xattr.user.foo": "bar",
                "SCHILY.xattr.security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00",
            },
        ),
        entry("dev", tarfile.DIRTYPE),
        entry("dev/null", tarfile.CHRTYPE, devmajor=1, devminor=3, mode=0o666),
        entry("dev/sda", tarfile.BLKTYPE, devmajor=8, devminor=0, mode=0o660, gid=6, gname="disk"),
        entry("dev/fifo", tarfile.FIFOTYPE),
        entry("big", data=pattern(150_000, "big"), uid=1000, gid=1000, uname="u", gname="g"),
        entry("usr", tarfile.DIRTYPE, uid=1000, uname="u"),
        entry("usr/a&b<c>.txt", data=b"x" * 100, uid=1000, uname="u"),
        entry("usr/caf\u00e9 \u2028.txt", data=b"unicode"),
        entry("usr/" + "long-name/" * 12 + "file", data=b"a PAX path"),
        entry("old", data=b"before the epoch", mtime=-86400 * 365),
        entry("half", data=b"half a second", mtime=MTIME + 0.5),
    )
