"""Content-addressed blob store with containerd's ingest → commit protocol.

Layout under the store root:
    blobs/<alg>/<hex>          committed, read-only, immutable
    ingest/<sha256(ref)>/      in progress: `data`, `ref`, `lock`; never visible to readers

A blob becomes visible only by an atomic hard link of fully written, fsynced and verified data,
so a writer killed at any point leaves at most an ingest directory behind, which readers never
see and `ContentStore.abort` or garbage collection removes.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

from bale.errors import AlreadyExists, DigestMismatch, InvalidArgument, NotFound, Unavailable
from bale.oci.digest import Digest
from bale.trees import remove_tree

CHUNK = 1 << 20


@dataclass(frozen=True)
class BlobInfo:
    digest: Digest
    size: int
    path: Path


@dataclass(frozen=True)
class IngestStatus:
    ref: str
    offset: int
    started: float
    updated: float


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class VerifyingReader:
    """Reads a blob and fails at EOF when its hash or size is not the expected one."""

    def __init__(self, stream: BinaryIO, digest: Digest, size: int | None = None) -> None:
        self._stream = stream
        self._digest = digest
        self._size = size
        self._hash = digest.hasher()
        self._count = 0
        self._verified = False

    def read(self, n: int = -1) -> bytes:
        data = self._stream.read(n)
        if data:
            self._hash.update(data)
            self._count += len(data)
            if self._size is not None and self._count > self._size:
                raise DigestMismatch(
                    f"content {self._digest} is larger than its declared size {self._size}"
                )
        elif not self._verified:
            self._check()
        return data

    def _check(self) -> None:
        self._verified = True
        if self._size is not None and self._count != self._size:
            raise DigestMismatch(
                f"content {self._digest} is {self._count} bytes, expected {self._size}"
            )
        actual = self._hash.hexdigest()
        if actual != self._digest.hex:
            raise DigestMismatch(
                f"content digest mismatch: expected {self._digest}, got "
                f"{self._digest.algorithm}:{actual}"
            )

    def readinto(self, buffer: bytearray | memoryview) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._stream.close()

    def __enter__(self) -> VerifyingReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Writer:
    """An open ingest. Write bytes, then `commit`; or `close` to resume later; or `abort`."""

    def __init__(self, store: ContentStore, ref: str, directory: Path, lock_fd: int) -> None:
        self._store = store
        self.ref = ref
        self._dir = directory
        self._lock_fd = lock_fd
        self._data_path = directory / "data"
        self._file = open(self._data_path, "ab")  # noqa: SIM115 - lives as long as the writer
        self._hash = hashlib.sha256()
        # Resuming: re-hash what an earlier writer left so the digest covers all of it.
        with open(self._data_path, "rb") as existing:
            while chunk := existing.read(CHUNK):
                self._hash.update(chunk)
        self.offset = self._file.tell()
        self._closed = False

    def write(self, data: bytes | memoryview) -> int:
        self._file.write(data)
        self._hash.update(data)
        self.offset += len(data)
        return len(data)

    def digest(self) -> Digest:
        return Digest("sha256", self._hash.hexdigest())

    def commit(self, size: int | None = None, expected: Digest | None = None) -> Digest:
        """Verify, make durable and publish. Raises AlreadyExists when the blob was there."""
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        if size is not None and self.offset != size:
            self.abort()
            raise DigestMismatch(f"ingest {self.ref}: wrote {self.offset} bytes, expected {size}")
        actual = self.digest()
        if expected is not None:
            if expected.algorithm != "sha256":
                actual = self._rehash(expected.algorithm)
            if actual != expected:
                self.abort()
                raise DigestMismatch(
                    f"ingest {self.ref}: content digest mismatch: expected {expected}, got {actual}"
                )
        target = self._store.blob_path(actual)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(self._data_path, 0o444)
        try:
            # link() never replaces: the first committer wins, the others learn it exists.
            os.link(self._data_path, target)
        except FileExistsError:
            self._release(remove=True)
            raise AlreadyExists(f"content {actual} already exists") from None
        _fsync_dir(target.parent)
        # Past the link nothing can be rolled back; leftover ingest files are only garbage.
        self._release(remove=True)
        return actual

    def _rehash(self, algorithm: str) -> Digest:
        h = hashlib.new(algorithm)
        with open(self._data_path, "rb") as f:
            while chunk := f.read(CHUNK):
                h.update(chunk)
        return Digest(algorithm, h.hexdigest())

    def close(self) -> None:
        """Keep the ingest for a later writer with the same ref to resume."""
        if not self._file.closed:
            self._file.flush()
            self._file.close()
        self._release(remove=False)

    def abort(self) -> None:
        if not self._file.closed:
            self._file.close()
        self._release(remove=True)

    def _release(self, *, remove: bool) -> None:
        if self._closed:
            return
        self._closed = True
        if remove:
            remove_tree(self._dir, ignore_errors=True)
        os.close(self._lock_fd)

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        # An exception inside the block aborts; a normal exit without commit keeps the ingest.
        if exc_type is not None:
            self.abort()
        elif not self._closed:
            self.close()


class ContentStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._blobs = root / "blobs"
        self._ingest = root / "ingest"
        self._blobs.mkdir(parents=True, exist_ok=True)
        self._ingest.mkdir(parents=True, exist_ok=True)

    # -- reading -------------------------------------------------------------------------

    def blob_path(self, digest: Digest) -> Path:
        return self._blobs / digest.algorithm / digest.hex

    def exists(self, digest: Digest) -> bool:
        return self.blob_path(digest).is_file()

    def info(self, digest: Digest) -> BlobInfo:
        path = self.blob_path(digest)
        try:
            st = path.stat()
        except FileNotFoundError:
            raise NotFound(f"content {digest} not found") from None
        return BlobInfo(digest, st.st_size, path)

    def open(self, digest: Digest, size: int | None = None) -> VerifyingReader:
        """A reader that verifies the blob's digest (and size, when given) at EOF."""
        try:
            stream = open(self.blob_path(digest), "rb")  # noqa: SIM115 - returned to caller
        except FileNotFoundError:
            raise NotFound(f"content {digest} not found") from None
        return VerifyingReader(stream, digest, size)

    def read_bytes(self, digest: Digest, size: int | None = None, limit: int = 64 << 20) -> bytes:
        """Whole small blob (manifests, configs), verified."""
        info = self.info(digest)
        if info.size > limit:
            raise InvalidArgument(f"content {digest} is too large to read into memory")
        with self.open(digest, size) as reader:
            data = reader.read()
            reader.read()
        return data

    def walk(self) -> Iterator[BlobInfo]:
        for alg_dir in sorted(self._blobs.iterdir()):
            for path in sorted(alg_dir.iterdir()):
                try:
                    digest = Digest(alg_dir.name, path.name)
                except InvalidArgument:
                    continue
                yield BlobInfo(digest, path.stat().st_size, path)

    def verify(self, digest: Digest) -> None:
        """Re-hash a committed blob; DigestMismatch when it was altered."""
        with self.open(digest) as reader:
            while reader.read(CHUNK):
                pass

    # -- writing -------------------------------------------------------------------------

    def writer(self, ref: str, expected: Digest | None = None) -> Writer:
        """Open (or resume) the ingest named `ref`. AlreadyExists when `expected` is present."""
        if expected is not None and self.exists(expected):
            self._drop_finished_ingest(ref)
            raise AlreadyExists(f"content {expected} already exists")
        directory = self._ingest_dir(ref)
        directory.mkdir(parents=True, exist_ok=True)
        lock_fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock_fd)
            raise Unavailable(f"ingest {ref!r} is locked by another writer") from None
        # The directory may have been removed by a committer between mkdir and flock.
        try:
            current = os.stat(directory / "lock").st_ino
        except FileNotFoundError:
            current = -1
        if current != os.fstat(lock_fd).st_ino:
            os.close(lock_fd)
            return self.writer(ref, expected)
        data = directory / "data"
        try:
            st = data.stat()
        except FileNotFoundError:
            pass
        else:
            # A writer killed inside commit left data that is, or was about to become, a
            # published blob: appending would change that blob, so the ingest starts over.
            if st.st_nlink > 1 or is_read_only(data):
                data.unlink()
        (directory / "ref").write_text(ref)
        return Writer(self, ref, directory, lock_fd)

    def put(self, data: bytes, expected: Digest | None = None) -> tuple[Digest, bool]:
        """Store small content; returns (digest, created)."""
        digest = expected or Digest.of(data)
        if self.exists(digest):
            return digest, False
        ref = f"put-{digest}-{os.getpid()}-{time.monotonic_ns()}"
        writer = self.writer(ref)
        try:
            writer.write(data)
            writer.commit(len(data), digest)
        except AlreadyExists:
            return digest, False
        except BaseException:
            writer.abort()
            raise
        return digest, True

    def adopt(self, other: ContentStore, digest: Digest) -> bool:
        """Take blob `digest` from another store: a hard link (blobs never change once
        committed), a verified copy across filesystems. Returns whether it was added."""
        if self.exists(digest):
            return False
        source = other.blob_path(digest)
        target = self.blob_path(digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, target)
        except FileExistsError:
            return False
        except OSError:
            with other.open(digest) as stream:
                return self.ingest_stream(
                    cast(BinaryIO, stream), f"adopt-{digest.hex}-{os.getpid()}", digest
                )[1]
        _fsync_dir(target.parent)
        return True

    def ingest_stream(
        self, stream: BinaryIO, ref: str, expected: Digest | None = None, size: int | None = None
    ) -> tuple[Digest, bool]:
        """Copy a stream into the store, verifying it; returns (digest, created)."""
        try:
            writer = self.writer(ref, expected)
        except AlreadyExists:
            assert expected is not None
            return expected, False
        try:
            while chunk := stream.read(CHUNK):
                writer.write(chunk)
            return writer.commit(size, expected), True
        except AlreadyExists:
            return writer.digest(), False
        except BaseException:
            writer.abort()
            raise

    def delete(self, digest: Digest) -> int:
        """Remove a committed blob; returns the bytes freed."""
        path = self.blob_path(digest)
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            raise NotFound(f"content {digest} not found") from None
        return size

    # -- ingests -------------------------------------------------------------------------

    def _ingest_dir(self, ref: str) -> Path:
        if not ref:
            raise InvalidArgument("empty ingest ref")
        return self._ingest / hashlib.sha256(ref.encode()).hexdigest()

    def _drop_finished_ingest(self, ref: str) -> None:
        """The ingest of a writer killed between publishing its blob and cleaning up: the
        blob is there, so what is left of the ingest is garbage (unless someone holds it)."""
        directory = self._ingest_dir(ref)
        if not directory.is_dir():
            return
        try:
            lock_fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            return
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock_fd)
            return
        remove_tree(directory, ignore_errors=True)
        os.close(lock_fd)

    def ingests(self) -> list[IngestStatus]:
        out = []
        for d in sorted(self._ingest.iterdir()):
            try:
                ref = (d / "ref").read_text()
                st = (d / "data").stat()
            except FileNotFoundError:
                continue
            out.append(IngestStatus(ref, st.st_size, d.stat().st_ctime, st.st_mtime))
        return out

    def abort(self, ref: str) -> None:
        """Remove an ingest that no writer holds."""
        directory = self._ingest_dir(ref)
        if not directory.exists():
            raise NotFound(f"ingest {ref!r} not found")
        self._remove_unlocked(directory)

    def remove_stale_ingests(self) -> int:
        """Remove every ingest no live writer holds; returns the bytes freed."""
        freed = 0
        for d in list(self._ingest.iterdir()):
            freed += self._remove_unlocked(d)
        return freed

    def _remove_unlocked(self, directory: Path) -> int:
        lock = directory / "lock"
        try:
            fd = os.open(lock, os.O_RDWR)
        except FileNotFoundError:
            remove_tree(directory, ignore_errors=True)
            return 0
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return 0
            size = 0
            data = directory / "data"
            if data.exists():
                size = data.stat().st_size
            remove_tree(directory, ignore_errors=True)
            return size
        finally:
            os.close(fd)


def is_read_only(path: Path) -> bool:
    return not (path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
