"""Deterministic tar output for archives, written to a temp file and renamed into place."""

from __future__ import annotations

import io
import tarfile
from typing import BinaryIO

from bale.store.atomic import atomic_output
from bale.store.compression import Readable

__all__ = ["ArchiveWriter", "atomic_output"]


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
