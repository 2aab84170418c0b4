"""Layer compression: magic-byte detection for reading, hashing compressors for writing."""

from __future__ import annotations

import hashlib
import io
import os
from typing import Any, BinaryIO, Protocol

import zstandard
from isal import igzip, igzip_threaded

from bale.errors import InvalidArgument

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"

# isal level 1 compresses several times faster than `gzip -6` for a few percent more bytes;
# threads only pay from about a megabyte on (each block is compressed on its own).
GZIP_LEVEL = 1
ZSTD_LEVEL = 3
_BLOCK = 1 << 20


class Sink(Protocol):
    """Anything bytes can be written to: a file, the content store's ingest writer."""

    def write(self, data: bytes, /) -> int | None: ...


class _Prefixed(io.RawIOBase):
    """A stream with some already-read bytes put back in front."""

    def __init__(self, prefix: bytes, rest: BinaryIO) -> None:
        self._prefix = prefix
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._prefix:
            n = min(len(view), len(self._prefix))
            view[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        data = self._rest.read(len(view))
        view[: len(data)] = data
        return len(data)


def detect(prefix: bytes) -> str:
    """'gzip', 'zstd' or '' (plain tar) from the first bytes of a layer."""
    if prefix.startswith(GZIP_MAGIC):
        return "gzip"
    if prefix.startswith(ZSTD_MAGIC):
        return "zstd"
    return ""


def decompressed(stream: BinaryIO) -> tuple[BinaryIO, str]:
    """The uncompressed tar stream of a layer and the compression that was found."""
    prefix = b""
    while len(prefix) < 4:
        chunk = stream.read(4 - len(prefix))
        if not chunk:
            break
        prefix += chunk
    kind = detect(prefix)
    raw = io.BufferedReader(_Prefixed(prefix, stream), _BLOCK)
    if kind == "gzip":
        return igzip.IGzipFile(fileobj=raw, mode="rb"), kind  # type: ignore[no-untyped-call,return-value]
    if kind == "zstd":
        reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
        return io.BufferedReader(reader, _BLOCK), kind
    return raw, kind


class HashingReader(io.RawIOBase):
    """Hashes every byte read through it (the diff id of an uncompressed layer)."""

    def __init__(self, inner: BinaryIO) -> None:
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


class LayerWriter:
    """Takes the uncompressed tar, hashes it (diff id), compresses it, hashes the result.

    One pass: nothing is buffered beyond a compression block.
    """

    def __init__(self, sink: Sink, compression: str = "gzip", *, threads: int = 0) -> None:
        self.compression = compression
        self._out = _CountingSink(sink)
        self._tar_hash = hashlib.sha256()
        self.tar_size = 0
        self._gzip: Any = None
        self._zstd: Any = None
        if threads <= 0:
            threads = max(1, min(4, len(os.sched_getaffinity(0))))
        if compression == "gzip":
            # Same output whatever the thread count: blocks are fixed-size and chained by
            # a 32 KiB dictionary, the header carries no time or name.
            self._gzip = igzip_threaded.open(  # type: ignore[no-untyped-call]
                self._out, "wb", compresslevel=GZIP_LEVEL, threads=threads, block_size=_BLOCK
            )
        elif compression == "zstd":
            params = zstandard.ZstdCompressionParameters.from_level(
                ZSTD_LEVEL, threads=threads if threads > 1 else 0, write_checksum=True
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
