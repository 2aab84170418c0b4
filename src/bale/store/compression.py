"""Compressed streams: detect gzip/zstd/xz/bzip2 by magic, and compress with gzip or zstd."""

from __future__ import annotations

import bz2
import lzma
from typing import IO, BinaryIO, Protocol, cast

import zstandard
from isal import isal_zlib

from bale.errors import InvalidArgument

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
XZ_MAGIC = b"\xfd7zXZ\x00"
BZIP2_MAGIC = b"BZh"

_ZLIB_ERROR: type[Exception] = isal_zlib.error  # type: ignore[assignment]  # untyped stub


class Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


class _Peeked:
    """A stream with its first bytes already read, replayed before the rest."""

    def __init__(self, head: bytes, rest: Readable) -> None:
        self._head = head
        self._rest = rest

    def read(self, n: int = -1) -> bytes:
        if self._head:
            if n < 0:
                data, self._head = self._head + self._rest.read(), b""
                return data
            data, self._head = self._head[:n], self._head[n:]
            return data
        return self._rest.read(n)


def sniff(head: bytes) -> str:
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    if head.startswith(XZ_MAGIC):
        return "xz"
    if head.startswith(BZIP2_MAGIC):
        return "bzip2"
    return ""


class _GzipReader:
    """Streaming gzip decoder (isal) that accepts concatenated members, as gzip(1) does."""

    def __init__(self, raw: Readable) -> None:
        self._raw = raw
        self._d = isal_zlib.decompressobj(wbits=47)
        self._eof = False

    def read(self, n: int = -1) -> bytes:
        out = bytearray()
        while not self._eof and (n < 0 or len(out) < n):
            if self._d.unconsumed_tail:
                chunk = self._d.unconsumed_tail
            elif self._d.eof:
                rest = self._d.unused_data
                self._d = isal_zlib.decompressobj(wbits=47)
                chunk = rest or self._raw.read(1 << 20)
                if not chunk:
                    self._eof = True
                    break
            else:
                chunk = self._raw.read(1 << 20)
                if not chunk:
                    raise InvalidArgument("truncated gzip stream")
            try:
                out += self._d.decompress(chunk, (n - len(out)) if n > 0 else 0)
            except _ZLIB_ERROR as exc:
                raise InvalidArgument(f"corrupt gzip stream: {exc}") from None
        return bytes(out)


class _Wrapped:
    def __init__(self, stream: Readable, what: str) -> None:
        self._stream = stream
        self._what = what

    def read(self, n: int = -1) -> bytes:
        try:
            return self._stream.read(n)
        except (OSError, EOFError, lzma.LZMAError, zstandard.ZstdError, ValueError) as exc:
            raise InvalidArgument(f"corrupt {self._what} stream: {exc}") from None


def decompressed(stream: Readable) -> tuple[str, Readable]:
    """(compression, reader of the uncompressed bytes) for a possibly compressed stream."""
    head = stream.read(8)
    peeked = _Peeked(head, stream)
    kind = sniff(head)
    if kind == "gzip":
        return kind, _GzipReader(peeked)
    if kind == "zstd":
        reader = zstandard.ZstdDecompressor().stream_reader(
            cast(IO[bytes], peeked), read_across_frames=True
        )
        return kind, _Wrapped(reader, "zstd")
    if kind == "xz":
        return kind, _Wrapped(lzma.LZMAFile(cast(IO[bytes], peeked)), "xz")
    if kind == "bzip2":
        return kind, _Wrapped(bz2.BZ2File(cast(IO[bytes], peeked)), "bzip2")
    return "", peeked


class Compressor(Protocol):
    def compress(self, data: bytes, /) -> bytes: ...

    def flush(self) -> bytes: ...


def gzip_compressor(level: int = 1) -> Compressor:
    """Deterministic gzip (no name, mtime 0) through ISA-L; level 1 is ISA-L's fast default."""
    return isal_zlib.compressobj(level, isal_zlib.DEFLATED, 31)


class _Zstd:
    def __init__(self, level: int) -> None:
        self._c = zstandard.ZstdCompressor(level=level, threads=-1).compressobj()

    def compress(self, data: bytes) -> bytes:
        return self._c.compress(data)

    def flush(self) -> bytes:
        return self._c.flush()


def zstd_compressor(level: int = 3) -> Compressor:
    return _Zstd(level)


def copy(src: BinaryIO | Readable, dst: BinaryIO) -> int:
    total = 0
    while chunk := src.read(1 << 20):
        dst.write(chunk)
        total += len(chunk)
    return total
