"""The build context as a node receives it: what `.dockerignore` keeps, as one tar in
name order, zstd-compressed, named by the digest of the uncompressed tar, so a node that
has it already is not sent it again. Extraction checks that digest and keeps no name that
would leave the directory."""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import time
from pathlib import Path
from typing import IO, Any, BinaryIO

import zstandard

from bale.cli.tar_extract import extract_confined
from bale.errors import DigestMismatch, InvalidArgument
from bale.frontends.dockerignore import load_ignore

KEEP = 8  # contexts a node keeps (the most recently used)


class _Tee:
    """A write-only file that hashes what goes through it on the way to `out`."""

    def __init__(self, out: Any) -> None:
        self._out = out
        self.hash = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self._out.write(data)
        return len(data)

    def flush(self) -> None:
        pass


def pack(context: Path, dockerfile: Path | None) -> tuple[str, IO[bytes]]:
    """(sha256 digest of the tar, a file positioned at 0 holding it compressed)."""
    ignore = load_ignore(context, dockerfile)
    out = tempfile.TemporaryFile(prefix="bale-context-")  # noqa: SIM115 - the caller's
    compressor = zstandard.ZstdCompressor(level=3).stream_writer(out, closefd=False)
    tee = _Tee(compressor)
    with tarfile.open(fileobj=tee, mode="w|", format=tarfile.GNU_FORMAT) as tar:  # type: ignore[call-overload]
        for rel in ignore.walk(context):
            info = tar.gettarinfo(str(context / rel), arcname=rel)
            info.mtime = int(info.mtime)
            info.uname = info.gname = ""
            if info.isfile():
                with open(context / rel, "rb") as f:
                    tar.addfile(info, f)
            elif info.isdir() or info.issym() or info.islnk():
                tar.addfile(info)
            # devices, sockets and fifos are not part of a context
    compressor.flush(zstandard.FLUSH_FRAME)
    compressor.close()  # type: ignore[no-untyped-call]
    out.seek(0)
    return "sha256:" + tee.hash.hexdigest(), out


class _HashingReader:
    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.hash = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data: bytes = self._stream.read(n)
        self.hash.update(data)
        return data


def contexts_dir(root: Path) -> Path:
    return root / "node" / "contexts"


def cached(root: Path, digest: str) -> Path | None:
    path = contexts_dir(root) / _hex(digest)
    if path.is_dir():
        os.utime(path)  # most recently used
        return path
    return None


def _hex(digest: str) -> str:
    algo, _, hexpart = digest.partition(":")
    if algo != "sha256" or len(hexpart) != 64 or not all(c in "0123456789abcdef" for c in hexpart):
        raise InvalidArgument(f"invalid context digest {digest!r}")
    return hexpart


def unpack(root: Path, digest: str, stream: BinaryIO, size: int) -> Path:
    """Extract exactly `size` compressed bytes from `stream` as context `digest`."""
    base = contexts_dir(root)
    base.mkdir(parents=True, exist_ok=True)
    final = base / _hex(digest)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=base))
    try:
        limited = _Limited(stream, size)
        reader = zstandard.ZstdDecompressor().stream_reader(limited, closefd=False)  # type: ignore[arg-type]
        hashing = _HashingReader(reader)
        with tarfile.open(fileobj=hashing, mode="r|") as tar:  # type: ignore[call-overload]
            extract_confined(tar, tmp, "tar")
        while hashing.read(1 << 16):
            pass  # the tar's end padding counts in its digest
        got = "sha256:" + hashing.hash.hexdigest()
        if got != digest:
            raise DigestMismatch(f"context arrived with digest {got}, not {digest}")
        try:
            os.rename(tmp, final)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)  # a concurrent build unpacked it first
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _prune(base)
    return final


def _prune(base: Path) -> None:
    entries = sorted(
        (p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    now = time.time()
    for old in entries[KEEP:]:
        if now - old.stat().st_mtime > 60:  # not one a build is starting with
            shutil.rmtree(old, ignore_errors=True)


class _Limited:
    def __init__(self, stream: BinaryIO, size: int) -> None:
        self._stream = stream
        self._left = size

    def read(self, n: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        n = self._left if n < 0 else min(n, self._left)
        data = self._stream.read(n)
        if not data:
            raise InvalidArgument("the context stream ended early")
        self._left -= len(data)
        return data
