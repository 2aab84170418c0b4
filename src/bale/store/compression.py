"""The one compression stack: detect gzip/zstd/xz/bzip2 by magic for reading, and hashing
compressors for writing layers (diff id of the tar, digest of the blob, in one pass).

    decompressed(stream) -> (kind, reader)   kind: "gzip", "zstd", "xz", "bzip2" or ""
    LayerWriter(sink, compression)           tar bytes in, compressed bytes to sink, hashed
"""

from __future__ import annotations

import bz2
import hashlib
import io
import lzma
import os
import zlib
from typing import IO, Any, BinaryIO, Protocol, cast

import zstandard
from isal import igzip, igzip_threaded, isal_zlib

from bale.errors import InvalidArgument

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
XZ_MAGIC = b"\xfd7zXZ\x00"
BZIP2_MAGIC = b"BZh"

# isal level 1 compresses several times faster than `gzip -6` for a few percent more bytes;
# threads only pay from about a megabyte on (each block is compressed on its own).
GZIP_LEVEL = 1
ZSTD_LEVEL = 3
_BLOCK = 1 << 20
# The threaded gzip writer's block size: with the level and ISA-L's version, what pins a
# layer's compressed bytes (the thread count does not change them).
GZIP_BLOCK = _BLOCK

_ZLIB_ERROR: type[Exception] = isal_zlib.error  # type: ignore[assignment]  # untyped stub


class Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


class Sink(Protocol):
    """Anything bytes can be written to: a file, the content store's ingest writer."""

    def write(self, data: bytes, /) -> int | None: ...


class _Peeked(io.RawIOBase):
    """A stream with its first bytes already read, replayed before the rest."""

    def __init__(self, head: bytes, rest: Readable) -> None:
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._head:
            n = min(len(view), len(self._head))
            view[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        readinto = getattr(self._rest, "readinto", None)
        if readinto is not None:  # straight into the caller's buffer, no new object
            return int(readinto(view))
        data = self._rest.read(len(view))
        view[: len(data)] = data
        return len(data)


def sniff(head: bytes) -> str:
    """'gzip', 'zstd', 'xz', 'bzip2' or '' (not compressed) from a stream's first bytes."""
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    if head.startswith(XZ_MAGIC):
        return "xz"
    if head.startswith(BZIP2_MAGIC):
        return "bzip2"
    return ""


class _Wrapped:
    """Turns a decoder's failures into InvalidArgument naming the format."""

    def __init__(self, stream: Readable, what: str) -> None:
        self._stream = stream
        self._what = what

    def read(self, n: int = -1, /) -> bytes:
        try:
            return self._stream.read(n)
        except EOFError:
            raise InvalidArgument(f"truncated {self._what} stream") from None
        except (OSError, lzma.LZMAError, zstandard.ZstdError, ValueError, _ZLIB_ERROR) as exc:
            raise InvalidArgument(f"corrupt {self._what} stream: {exc}") from None

    def readinto(self, buffer: Any, /) -> int:
        readinto = getattr(self._stream, "readinto", None)
        if readinto is None:
            data = self.read(len(buffer))
            buffer[: len(data)] = data
            return len(data)
        try:
            return int(readinto(buffer))
        except EOFError:
            raise InvalidArgument(f"truncated {self._what} stream") from None
        except (OSError, lzma.LZMAError, zstandard.ZstdError, ValueError, _ZLIB_ERROR) as exc:
            raise InvalidArgument(f"corrupt {self._what} stream: {exc}") from None


def decompressed(stream: Readable) -> tuple[str, Readable]:
    """(compression found, reader of the uncompressed bytes) for a possibly compressed stream.

    Corrupt or truncated input makes the reader raise InvalidArgument. gzip reads
    concatenated members, as gzip(1) does.
    """
    head = b""
    while len(head) < 8:
        chunk = stream.read(8 - len(head))
        if not chunk:
            break
        head += chunk
    raw = io.BufferedReader(_Peeked(head, stream), _BLOCK)
    kind = sniff(head)
    if kind == "gzip":
        gz = igzip.IGzipFile(fileobj=raw, mode="rb")  # type: ignore[no-untyped-call]
        return kind, _Wrapped(cast(Readable, gz), "gzip")
    if kind == "zstd":
        reader = zstandard.ZstdDecompressor().stream_reader(
            cast(IO[bytes], raw), read_across_frames=True
        )
        return kind, _Wrapped(io.BufferedReader(reader, _BLOCK), "zstd")
    if kind == "xz":
        return kind, _Wrapped(lzma.LZMAFile(cast(IO[bytes], raw)), "xz")
    if kind == "bzip2":
        return kind, _Wrapped(bz2.BZ2File(cast(IO[bytes], raw)), "bzip2")
    return "", raw


class Compressor(Protocol):
    def compress(self, data: bytes, /) -> bytes: ...

    def flush(self) -> bytes: ...


def gzip_compressor(level: int = GZIP_LEVEL) -> Compressor:
    """Deterministic gzip (no name, mtime 0) through ISA-L; level 1 is ISA-L's fast default."""
    return cast(Compressor, isal_zlib.compressobj(level, isal_zlib.DEFLATED, 31))


def copy(src: BinaryIO | Readable, dst: BinaryIO) -> int:
    total = 0
    while chunk := src.read(1 << 20):
        dst.write(chunk)
        total += len(chunk)
    return total


class HashingReader(io.RawIOBase):
    """Hashes every byte read through it (the diff id of an uncompressed layer)."""

    def __init__(self, inner: Readable) -> None:
        self._inner = inner
        self.hasher = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._inner.read(len(view))
        n = len(data)
        view[:n] = data
        self.hasher.update(data)
        self.size += n
        return n

    def read_rest(self) -> None:
        """Read (and hash) what is left, such as the zero padding after the end of a tar."""
        buf = bytearray(_BLOCK)
        while self.readinto(buf):
            pass


class _CountingSink(io.RawIOBase):
    """Hashes and counts the compressed bytes on their way to the caller's sink."""

    def __init__(self, sink: Sink) -> None:
        self._sink = sink
        self.hasher = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self.hasher.update(chunk)
        self.size += len(chunk)
        self._sink.write(chunk)
        return len(chunk)

    def flush(self) -> None:
        flush = getattr(self._sink, "flush", None)
        if callable(flush):
            flush()


class _ZlibGzip:
    """Deterministic gzip at a zlib level (header without name or time)."""

    def __init__(self, out: _CountingSink, level: int) -> None:
        self._out = out
        self._z = zlib.compressobj(level, zlib.DEFLATED, 31)

    def write(self, data: bytes | memoryview) -> None:
        if chunk := self._z.compress(data):
            self._out.write(chunk)

    def close(self) -> None:
        self._out.write(self._z.flush())


class LayerWriter:
    """Takes the uncompressed tar, hashes it (diff id), compresses it, hashes the result.

    One pass: nothing is buffered beyond a compression block.
    """

    def __init__(
        self, sink: Sink, compression: str = "gzip", *, threads: int = 0, level: int | None = None
    ) -> None:
        self.compression = compression
        self._out = _CountingSink(sink)
        self._tar_hash = hashlib.sha256()
        self.tar_size = 0
        self._gzip: Any = None
        self._zstd: Any = None
        if threads <= 0:
            threads = max(1, min(4, len(os.sched_getaffinity(0))))
        if compression == "gzip" and level is not None:
            # An asked-for level is zlib's (0-9, what BuildKit's compression-level means).
            self._gzip = _ZlibGzip(self._out, level)
        elif compression == "gzip":
            # Same output whatever the thread count: blocks are fixed-size and chained by
            # a 32 KiB dictionary, the header carries no time or name.
            self._gzip = igzip_threaded.open(  # type: ignore[no-untyped-call]
                self._out, "wb", compresslevel=GZIP_LEVEL, threads=threads, block_size=GZIP_BLOCK
            )
        elif compression == "zstd":
            params = zstandard.ZstdCompressionParameters.from_level(
                ZSTD_LEVEL if level is None else level,
                threads=threads if threads > 1 else 0,
                write_checksum=True,
            )
            self._zstd = zstandard.ZstdCompressor(compression_params=params).stream_writer(
                self._out,  # type: ignore[arg-type]
                closefd=False,
            )
        elif compression != "":
            raise InvalidArgument(
                f"unknown layer compression {compression!r}", hint="use gzip, zstd or none"
            )

    def write(self, data: bytes | memoryview) -> None:
        self._tar_hash.update(data)
        self.tar_size += len(data)
        if self._gzip is not None:
            self._gzip.write(data)
        elif self._zstd is not None:
            self._zstd.write(data)
        else:
            self._out.write(data)

    def close(self) -> None:
        if self._gzip is not None:
            self._gzip.close()
        elif self._zstd is not None:
            self._zstd.flush(zstandard.FLUSH_FRAME)
            self._zstd.close()
        self._out.flush()

    @property
    def diff_id_hex(self) -> str:
        return self._tar_hash.hexdigest()

    @property
    def digest_hex(self) -> str:
        return self._out.hasher.hexdigest()

    @property
    def size(self) -> int:
        return self._out.size
