"""A one-pass reader of tar headers for applying layers: ustar, GNU long names and PAX.

tarfile builds a TarInfo per member through several layers of Python buffering; unpacking
a 200 MB rootfs spent more time there than in the kernel. This reads the stream in large
chunks, hashes each chunk once (the layer's diff id), parses a header with a few slices,
and hands a regular file's payload to `os.write` straight from the chunk it arrived in.

Malformed input (bad checksum, bad numbers, truncation, oversized extension headers, GNU
sparse files) raises InvalidArgument; it never reads an extension header of unbounded size.
"""

from __future__ import annotations

import hashlib
import os
import queue
import sys
import threading
from collections.abc import Iterator
from typing import NamedTuple, Protocol

from bale.errors import InvalidArgument

BLOCK = 512
_CHUNK = 1 << 20
_BUFFERS = 4  # chunks read ahead at most, plus the one being parsed
# PAX records and GNU long names are read whole; a layer has no business with larger ones.
MAX_EXTENSION = 8 << 20
_ZERO_BLOCK = bytes(BLOCK)
_POSIX_MAGIC = b"ustar\x0000"

REG, LINK, SYMLINK, CHAR, BLOCKDEV, DIR, FIFO, OTHER = range(8)
_KINDS = {
    b"0": REG,
    b"\0": REG,
    b"7": REG,
    b"1": LINK,
    b"2": SYMLINK,
    b"3": CHAR,
    b"4": BLOCKDEV,
    b"5": DIR,
    b"6": FIFO,
}
XATTR_PREFIX = "SCHILY.xattr."
_ENCODING = sys.getfilesystemencoding()  # names as os.fsdecode gives them


class Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


class Entry(NamedTuple):
    name: str
    kind: int  # REG, LINK, SYMLINK, CHAR, BLOCKDEV, DIR, FIFO or OTHER
    size: int  # payload bytes
    mode: int
    uid: int
    gid: int
    mtime: int
    linkname: str
    devmajor: int
    devminor: int
    xattrs: tuple[tuple[str, bytes], ...]


def _number(field: bytes, what: str, at: int) -> int:
    if field[0] & 0x80:  # GNU base-256 (0o200 positive, 0o377 negative)
        if field[0] not in (0o200, 0o377):
            raise InvalidArgument(f"invalid layer tar: bad {what} field at offset {at}")
        n = int.from_bytes(field[1:], "big")
        return n - (256 ** (len(field) - 1)) if field[0] == 0o377 else n
    try:
        return int(field.rstrip(b"\0 ") or b"0", 8)  # the usual "0000644\0"
    except ValueError:
        pass
    digits = field.partition(b"\0")[0].strip()  # digits end at the first NUL
    try:
        return int(digits, 8) if digits else 0
    except ValueError:
        raise InvalidArgument(f"invalid layer tar: bad {what} field at offset {at}") from None


def _text(field: bytes) -> str:
    return field.partition(b"\0")[0].decode(_ENCODING, "surrogateescape")


def _checksum_ok(header: bytes, at: int) -> bool:
    stored = _number(header[148:156], "checksum", at)
    unsigned = 256 + sum(header[:148]) + sum(header[156:])
    if stored == unsigned:
        return True
    signed = unsigned - 2 * sum(b for b in header[:148] + header[156:] if b > 127)
    return stored == signed


def _pax_records(data: bytes, at: int) -> dict[str, bytes]:
    records: dict[str, bytes] = {}
    pos = 0
    while pos < len(data):
        if data[pos] == 0:
            break  # NUL padding after the last record
        space = data.find(b" ", pos, pos + 21)
        try:
            length = int(data[pos:space]) if space > pos else 0
        except ValueError:
            length = 0
        end = pos + length
        if length <= 0 or end > len(data) or data[end - 1] != 0x0A:
            raise InvalidArgument(f"invalid layer tar: bad PAX record at offset {at}")
        key, eq, value = data[space + 1 : end - 1].partition(b"=")
        if not eq:
            raise InvalidArgument(f"invalid layer tar: bad PAX record at offset {at}")
        records[key.decode("utf-8", "surrogateescape")] = value
        pos = end
    return records


class TarStream:
    """The entries of an uncompressed tar stream, hashed as it is read.

    A regular file's payload is written with `write_payload` before asking for the next
    entry; whatever is left unread is skipped.
    """

    def __init__(self, stream: Readable) -> None:
        self._reader = _Prefetcher(stream)
        self.size = 0  # bytes read
        self._view = memoryview(b"")  # the chunk being parsed
        self._end = 0  # valid bytes in it
        self._pos = 0
        self._offset = 0  # input offset of the chunk's first byte
        self._left = 0  # payload bytes of the current entry not yet consumed
        self._pad = 0

    @property
    def hasher(self) -> hashlib._Hash:
        return self._reader.hasher

    def _fill(self) -> bool:
        view, n = self._reader.next(self._view)
        if not n:
            return False
        self._offset += self._end
        self.size += n
        self._view = view
        self._end = n
        self._pos = 0
        return True

    def close(self) -> None:
        """Stop reading ahead (done, or given up on an error)."""
        self._reader.close()

    def _at(self) -> int:
        return self._offset + self._pos

    def _take(self, n: int) -> bytes:
        """Exactly `n` bytes (b"" at a clean end when nothing at all is left)."""
        avail = self._end - self._pos
        if avail >= n:
            out = bytes(self._view[self._pos : self._pos + n])
            self._pos += n
            return out
        parts = [bytes(self._view[self._pos : self._end])]
        got = avail
        self._pos = self._end
        while got < n:
            if not self._fill():
                if got == 0:
                    return b""
                raise InvalidArgument(f"invalid layer tar: truncated at offset {self._at()}")
            piece = bytes(self._view[: min(n - got, self._end)])
            self._pos = len(piece)
            parts.append(piece)
            got += len(piece)
        return b"".join(parts)

    def _skip(self, n: int) -> None:
        while n:
            if self._pos == self._end and not self._fill():
                raise InvalidArgument(f"invalid layer tar: truncated at offset {self._at()}")
            step = min(n, self._end - self._pos)
            self._pos += step
            n -= step

    def write_payload(self, fd: int) -> None:
        """Write the current regular file's payload to `fd`."""
        n = self._left
        while n:
            if self._pos == self._end and not self._fill():
                raise InvalidArgument(f"invalid layer tar: truncated at offset {self._at()}")
            step = min(n, self._end - self._pos)
            view = self._view[self._pos : self._pos + step]
            while view:
                view = view[os.write(fd, view) :]
            self._pos += step
            n -= step
        self._left = 0

    def _extension(self, size: int, at: int) -> bytes:
        if size > MAX_EXTENSION:
            raise InvalidArgument(
                f"invalid layer tar: extension header of {size} bytes at offset {at}"
            )
        data = self._take(size)
        if len(data) < size:
            raise InvalidArgument(f"invalid layer tar: truncated at offset {self._at()}")
        self._skip(-size % BLOCK)
        return data

    def entries(self) -> Iterator[Entry]:
        global_pax: dict[str, bytes] = {}
        pax: dict[str, bytes] = {}
        long_name: str | None = None
        long_link: str | None = None
        while True:
            self._skip(self._left + self._pad)
            self._left = self._pad = 0
            at = self._at()
            header = self._take(BLOCK)
            if not header or header == _ZERO_BLOCK:
                return  # end of archive (what follows is only hashed)
            if not _checksum_ok(header, at):
                raise InvalidArgument(f"invalid layer tar: bad header checksum at offset {at}")
            flag = header[156:157]
            size = _number(header[124:136], "size", at)
            if size < 0:
                raise InvalidArgument(f"invalid layer tar: negative size at offset {at}")
            if flag in (b"x", b"g", b"L", b"K"):
                data = self._extension(size, at)
                if flag == b"x":
                    pax = _pax_records(data, at)
                elif flag == b"g":
                    global_pax.update(_pax_records(data, at))
                elif flag == b"L":
                    long_name = _text(data)
                else:
                    long_link = _text(data)
                continue
            if flag == b"S":
                raise InvalidArgument(f"invalid layer tar: GNU sparse file at offset {at}")
            records = {**global_pax, **pax} if global_pax else pax
            name = _text(header[0:100])
            if header[257:265] == _POSIX_MAGIC and header[345] != 0:
                name = f"{_text(header[345:500])}/{name}"
            linkname = _text(header[157:257])
            if long_name is not None:
                name = long_name
            if long_link is not None:
                linkname = long_link
            uid = _number(header[108:116], "uid", at)
            gid = _number(header[116:124], "gid", at)
            mtime = _number(header[136:148], "mtime", at)
            xattrs: tuple[tuple[str, bytes], ...] = ()
            if records:
                name, linkname, size, uid, gid, mtime, xattrs = _apply_pax(
                    records, name, linkname, size, uid, gid, mtime, at
                )
            kind = _KINDS.get(flag, OTHER)
            if flag == b"\0" and name.endswith("/"):
                kind = DIR  # the old way of storing a directory
            if kind not in (REG, OTHER):
                size = 0  # header-only types carry no payload, whatever the header says
            pax = {}
            long_name = long_link = None
            self._left = size
            self._pad = -size % BLOCK
            yield Entry(
                name,
                kind,
                size,
                _number(header[100:108], "mode", at),
                uid,
                gid,
                mtime,
                linkname,
                _number(header[329:337], "devmajor", at) if kind in (CHAR, BLOCKDEV) else 0,
                _number(header[337:345], "devminor", at) if kind in (CHAR, BLOCKDEV) else 0,
                xattrs,
            )

    def read_rest(self) -> None:
        """Read (and hash) what follows the end of the archive."""
        while self._fill():
            pass


class _Prefetcher:
    """Reads (and decompresses) the stream and hashes it in a thread, a few chunks ahead.

    Reading, decompressing and hashing release the GIL, so they overlap the file creation
    the parser does meanwhile. Chunks go round a fixed set of buffers: memory stays bounded.
    """

    def __init__(self, stream: Readable) -> None:
        self._stream = stream
        self.hasher = hashlib.sha256()
        self._free: queue.SimpleQueue[memoryview] = queue.SimpleQueue()
        for _ in range(_BUFFERS):
            self._free.put(memoryview(bytearray(_CHUNK)))
        self._full: queue.SimpleQueue[tuple[memoryview, int] | BaseException] = queue.SimpleQueue()
        self._stop = False
        self._eof = False
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        readinto = getattr(self._stream, "readinto", None)
        try:
            while True:
                view = self._free.get()
                if self._stop:
                    return
                if readinto is not None:
                    n = readinto(view) or 0
                else:
                    data = self._stream.read(len(view))
                    n = len(data)
                    view[:n] = data
                if n:
                    self.hasher.update(view[:n])
                self._full.put((view, n))
                if not n:
                    return
        except BaseException as exc:  # handed to the parser, which raises it
            self._full.put(exc)

    def next(self, done: memoryview) -> tuple[memoryview, int]:
        """The next chunk and its length (0 at the end); `done` is free for reuse."""
        if self._eof:
            return done, 0
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="layer-read", daemon=True)
            self._thread.start()
        elif len(done):
            self._free.put(done)
        item = self._full.get()
        if isinstance(item, BaseException):
            self._eof = True
            raise item
        if not item[1]:
            self._eof = True
        return item

    def close(self) -> None:
        if self._thread is None:
            return
        self._stop = True
        self._free.put(memoryview(b""))  # wakes it if it waits for a buffer
        self._thread.join()


def _apply_pax(
    records: dict[str, bytes],
    name: str,
    linkname: str,
    size: int,
    uid: int,
    gid: int,
    mtime: int,
    at: int,
) -> tuple[str, str, int, int, int, int, tuple[tuple[str, bytes], ...]]:
    try:
        if any(key.startswith("GNU.sparse.") for key in records):
            raise InvalidArgument(f"invalid layer tar: GNU sparse file at offset {at}")
        if (value := records.get("path")) is not None:
            name = os.fsdecode(value)
        if (value := records.get("linkpath")) is not None:
            linkname = os.fsdecode(value)
        if (value := records.get("size")) is not None:
            size = int(value)
        if (value := records.get("uid")) is not None:
            uid = int(value)
        if (value := records.get("gid")) is not None:
            gid = int(value)
        if (value := records.get("mtime")) is not None:
            mtime = int(float(value))
    except (ValueError, OverflowError):
        raise InvalidArgument(f"invalid layer tar: bad PAX value at offset {at}") from None
    if size < 0:
        raise InvalidArgument(f"invalid layer tar: negative size at offset {at}")
    xattrs = tuple(
        (key[len(XATTR_PREFIX) :], value)
        for key, value in records.items()
        if key.startswith(XATTR_PREFIX)
    )
    return name, linkname, size, uid, gid, mtime, xattrs
