"""Deterministic tar output for archives, written to a temp file and renamed into place."""

from __future__ import annotations

import io
import os
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from bale.errors import InvalidArgument
from bale.store.compression import Readable


class ArchiveWriter:
    """Adds files with fixed owners and times, so equal content gives equal archives."""

    def __init__(self, out: BinaryIO) -> None:
        self._tar = tarfile.open(  # noqa: SIM115 - closed by close()
            fileobj=out, mode="w|", format=tarfile.PAX_FORMAT
        )
        self._dirs: set[str] = set()

    def _info(self, name: str, size: int, mode: int = 0o444) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.size = size
        info.mode = mode
        info.mtime = 0
        info.uname = info.gname = ""
        return info

    def _parents(self, name: str) -> None:
        parts = name.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in self._dirs:
                self._dirs.add(d)
                info = self._info(d + "/", 0, 0o755)
                info.type = tarfile.DIRTYPE
                self._tar.addfile(info)

    def add_bytes(self, name: str, data: bytes) -> None:
        self._parents(name)
        self._tar.addfile(self._info(name, len(data)), io.BytesIO(data))

    def add_stream(self, name: str, size: int, stream: Readable) -> None:
        self._parents(name)
        self._tar.addfile(self._info(name, size), stream)

    def close(self) -> None:
        self._tar.close()

    def abandon(self) -> None:
        """Close after a failure, for an output the caller discards: left open, the tar stream
        would write to that output when collected, after it is closed."""
        try:
            self._tar.close()
        except Exception:
            pass


@contextmanager
def atomic_output(dest: Path | None, stdout: BinaryIO | None = None) -> Iterator[BinaryIO]:
    """A file that appears at `dest` only when the block succeeds (or stdout when dest is None)."""
    if dest is None:
        assert stdout is not None
        yield stdout
        stdout.flush()
        return
    if not dest.parent.is_dir():
        # As `docker save -o` and buildx's file outputs: the directory must exist.
        raise InvalidArgument(f"open {dest}: no such file or directory")
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
