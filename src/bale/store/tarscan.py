"""The entries of an uncompressed tar in one pass, each with its header bytes as stored.

tarfile parses the headers (PAX records, GNU long names, checksums); the bytes it parsed are
handed on unchanged, so a writer can copy an entry without re-encoding it. Payload bytes are
dropped as soon as they have been read, so memory stays bounded by one read, whatever the
size of the files. Malformed input is an InvalidArgument, never a traceback, and what tarfile
would silently take for the end of the archive (a broken or truncated header) is checked as
Go's archive/tar checks it.
"""

from __future__ import annotations

import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO

from bale.errors import InvalidArgument

BLOCK = 512
_READ = 1 << 20
KINDS = {
    tarfile.REGTYPE: "reg",
    tarfile.AREGTYPE: "reg",
    tarfile.LNKTYPE: "hardlink",
    tarfile.SYMTYPE: "symlink",
    tarfile.CHRTYPE: "char",
    tarfile.BLKTYPE: "block",
    tarfile.DIRTYPE: "dir",
    tarfile.FIFOTYPE: "fifo",
}
_COMPRESSED = {
    b"\x1f\x8b": "gzip",
    b"\x28\xb5\x2f\xfd": "zstd",
    b"\xfd7zXZ\x00": "xz",
    b"BZh": "bzip2",
}
_XATTR = "SCHILY.xattr."
# What tarfile raises on malformed input besides TarError (numbers, names and PAX records).
_TAR_FAILURES = (tarfile.TarError, EOFError, ValueError, OverflowError, UnicodeError)


@dataclass(frozen=True, slots=True)
class TarEntry:
    """One entry's metadata as tarfile parsed it, and where the entry sits in the input."""

    name: str  # as stored: a directory keeps its trailing slash (tarfile drops it)
    kind: str  # one of KINDS' values
    size: int  # payload bytes; 0 for anything but a regular file
    mtime: float
    link: str
    mode: int
    uid: int
    gid: int
    uname: str
    gname: str
    devmajor: int
    devminor: int
    xattrs: tuple[tuple[str, bytes], ...]  # from SCHILY.xattr.* PAX records
    header_at: int  # input offset of its first header block (extension headers included)
    data_at: int  # input offset of its payload


@dataclass(frozen=True)
class Scanned:
    entry: TarEntry
    header: bytes  # the raw header blocks
    read: Callable[[int], bytes]  # the payload, at most n bytes at a time; b"" at its end


def scan(stream: IO[bytes], *, tee: IO[bytes] | None = None) -> Iterator[Scanned]:
    """The entries of the tar; a payload not read before the next entry is skipped.

    With `tee`, every input byte is also written there (a spool for a second, seeking pass).
    """
    rec = _Recorder(stream, tee)
    head = rec.at(0, BLOCK)
    for magic, kind in _COMPRESSED.items():
        if head.startswith(magic):
            raise InvalidArgument(
                f"the layer is {kind}-compressed, not a tar",
                hint="this reads the uncompressed layer tar; decompress it first",
            )
    if not head:
        return  # an empty stream is an empty tar, as Go's tar reader takes it
    try:
        with tarfile.open(  # type: ignore[call-overload]
            fileobj=rec, mode="r|", bufsize=_READ, encoding="utf-8", errors="surrogateescape"
        ) as tf:
            while True:
                info = tf.next()
                if tf.pax_headers:
                    raise InvalidArgument(
                        "the tar holds a PAX global header, which a layer cannot carry",
                        hint="write the layer tar without global headers",
                    )
                if info is None:
                    break
                header = rec.slice(info.offset, info.offset_data)
                entry = _entry(info, header)
                rec.forget(info.offset_data)
                payload = tf.extractfile(info) if entry.size else None
                read = _payload_reader(rec, payload, info.offset_data)
                yield Scanned(entry, header, read)
                while read(_READ):  # whatever the consumer left unread
                    pass
            _check_end(rec, tf.offset)
        rec.drain()
    except _TAR_FAILURES as exc:
        raise _bad_tar(exc) from None


class _Recorder:
    """The input as tarfile reads it, keeping the bytes not yet handed on."""

    def __init__(self, raw: IO[bytes], tee: IO[bytes] | None) -> None:
        self._raw = raw
        self._tee = tee
        self._buf = bytearray()
        self._start = 0  # input offset of _buf[0]
        self._served = 0  # input offset of the next byte read() returns

    def _more(self, n: int) -> bool:
        data = self._raw.read(n)
        if not data:
            return False
        if self._tee is not None:
            self._tee.write(data)
        self._buf += data
        return True

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            n = _READ  # tarfile always asks for a size
        if self._served == self._start + len(self._buf):
            self._more(n)
        lo = self._served - self._start
        out = bytes(self._buf[lo : lo + n])
        self._served += len(out)
        return out

    def at(self, start: int, n: int) -> bytes:
        """Input bytes [start, start+n), fewer at the end, read from the input if need be."""
        while self._start + len(self._buf) < start + n and self._more(_READ):
            pass
        return self.slice(start, start + n)

    def slice(self, start: int, end: int) -> bytes:
        return bytes(self._buf[start - self._start : end - self._start])

    def forget(self, upto: int) -> None:
        drop = min(upto, self._served) - self._start
        if drop > 0:
            del self._buf[:drop]
            self._start += drop

    def drain(self) -> None:
        """Read the input to its end (the tar's trailing padding), copying it if teed."""
        while data := self._raw.read(_READ):
            if self._tee is not None:
                self._tee.write(data)


def _bad_tar(exc: BaseException) -> InvalidArgument:
    return InvalidArgument(
        f"not a valid tar archive: {exc}", hint="this reads an uncompressed OCI layer tar"
    )


def _payload_reader(rec: _Recorder, payload: IO[bytes] | None, base: int) -> Callable[[int], bytes]:
    def read(n: int) -> bytes:
        if payload is None:
            return b""
        try:
            data = payload.read(n)
        except _TAR_FAILURES as exc:
            raise _bad_tar(exc) from None
        rec.forget(base + payload.tell())
        return data

    return read


def _check_end(rec: _Recorder, end: int) -> None:
    """Where tarfile stopped must be the end: nothing, or zero blocks (Go's reader agrees)."""
    block = rec.at(end, BLOCK)
    if not block:
        return  # no end-of-archive blocks: accepted, as Go does
    if len(block) < BLOCK:
        raise InvalidArgument(
            f"truncated tar: {len(block)} stray bytes at offset {end}",
            hint="the layer tar is incomplete; write it again",
        )
    if block.count(0) != BLOCK:
        raise InvalidArgument(
            f"not a valid tar archive: bad header at offset {end}",
            hint="the layer tar is corrupt or truncated inside a header",
        )
    second = rec.at(end + BLOCK, BLOCK)
    if second and (len(second) < BLOCK or second.count(0) != BLOCK):
        raise InvalidArgument(
            f"not a valid tar archive: data after the end block at offset {end}",
            hint="the layer tar is corrupt",
        )


def _entry(info: tarfile.TarInfo, header: bytes) -> TarEntry:
    kind = KINDS.get(info.type)
    if kind is None or info.sparse is not None:
        what = "sparse file" if info.sparse is not None else f"entry type {info.type!r}"
        raise InvalidArgument(
            f"unsupported tar {what} for {info.name!r}",
            hint="a layer holds directories, regular files, links, devices and fifos",
        )
    if min(info.size, info.uid, info.gid, info.mode, info.devmajor, info.devminor) < 0:
        raise InvalidArgument(f"not a valid tar archive: negative number in {info.name!r}")
    name = info.name
    if kind == "dir" and not name.endswith("/") and _stored_with_slash(info, header):
        name += "/"
    return TarEntry(
        name=name,
        kind=kind,
        size=info.size if kind == "reg" else 0,
        mtime=info.mtime,
        link=info.linkname,
        mode=info.mode,
        uid=info.uid,
        gid=info.gid,
        uname=info.uname,
        gname=info.gname,
        devmajor=info.devmajor,
        devminor=info.devminor,
        xattrs=tuple(
            (k[len(_XATTR) :], v.encode("utf-8", "surrogateescape"))
            for k, v in info.pax_headers.items()
            if k.startswith(_XATTR)
        ),
        header_at=info.offset,
        data_at=info.offset_data,
    )


def _stored_with_slash(info: tarfile.TarInfo, header: bytes) -> bool:
    """Whether the directory's name as stored (PAX path, GNU long name, name field) ends in /."""
    path = info.pax_headers.get("path")
    if path is not None:
        return path.endswith("/")
    pos = 0
    while pos + BLOCK < len(header):
        block = header[pos : pos + BLOCK]
        size = _octal(block[124:136])
        if block[156:157] == tarfile.GNUTYPE_LONGNAME:
            return header[pos + BLOCK : pos + BLOCK + size].split(b"\0", 1)[0].endswith(b"/")
        pos += BLOCK + size + (-size % BLOCK)
    return header[-BLOCK:][:100].split(b"\0", 1)[0].endswith(b"/")


def _octal(field: bytes) -> int:
    try:
        return int(field.split(b"\0", 1)[0].strip() or b"0", 8)
    except ValueError:
        return 0
