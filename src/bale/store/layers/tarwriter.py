"""Deterministic tar entries written from files on disk.

Same tree, same bytes: numeric owners only (no user or group names), integer mtimes
(optionally clamped to SOURCE_DATE_EPOCH), PAX headers only when a field needs them.
"""

from __future__ import annotations

import os
import stat
import tarfile
from collections.abc import Mapping

from bale.errors import FailedPrecondition
from bale.store.compression import LayerWriter

BLOCK = 512
_CHUNK = 1 << 20
# Overlay's own bookkeeping is never part of a layer.
_SKIP_XATTR_PREFIX = "trusted.overlay."


def read_xattrs(path: str) -> dict[str, bytes]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    out: dict[str, bytes] = {}
    for name in sorted(names):
        if name.startswith(_SKIP_XATTR_PREFIX):
            continue
        try:
            out[name] = os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            continue
    return out


def _header(info: tarfile.TarInfo) -> bytes:
    try:
        return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
    except UnicodeEncodeError:
        # A name or xattr value that is not UTF-8: keep its raw bytes.
        info.pax_headers = {**info.pax_headers, "hdrcharset": "BINARY"}
        return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


class TarEmitter:
    """Writes tar entries to a LayerWriter; hardlinks are recorded as first-path links."""

    def __init__(self, out: LayerWriter, *, clamp_mtime: int | None = None) -> None:
        self._out = out
        self._clamp = clamp_mtime
        self._links: dict[tuple[int, int], str] = {}

    def _mtime(self, value: float) -> int:
        seconds = int(value)
        if self._clamp is not None and seconds > self._clamp:
            return self._clamp
        return max(seconds, 0)

    def whiteout(self, name: str, mtime: float = 0) -> None:
        info = tarfile.TarInfo(name)
        info.mode = 0o644
        info.uname = info.gname = ""
        info.mtime = self._mtime(mtime)
        self._out.write(_header(info))

    def directory(self, name: str, perm: int, owner: tuple[int, int], mtime: float) -> None:
        """A directory that exists nowhere on disk (one a COPY makes)."""
        info = tarfile.TarInfo(name)
        info.type = tarfile.DIRTYPE
        info.mode = perm
        info.uid, info.gid = owner
        info.uname = info.gname = ""
        info.mtime = self._mtime(mtime)
        self._out.write(_header(info))

    def file_bytes(
        self, name: str, data: bytes, perm: int, owner: tuple[int, int], mtime: float
    ) -> None:
        """A regular file with the given contents (a heredoc, a download)."""
        info = tarfile.TarInfo(name)
        info.mode = perm
        info.uid, info.gid = owner
        info.uname = info.gname = ""
        info.mtime = self._mtime(mtime)
        info.size = len(data)
        self._out.write(_header(info))
        self._out.write(data)
        pad = -len(data) % BLOCK
        if pad:
            self._out.write(b"\0" * pad)

    def entry(
        self,
        name: str,
        path: str,
        st: os.stat_result,
        *,
        xattrs: Mapping[str, bytes] | None = None,
        owner: tuple[int, int] | None = None,
        perm: int | None = None,
    ) -> None:
        """Archive the file at host `path` as `name` (relative, no leading slash); `owner`
        and `perm` replace what the file has on disk."""
        info = tarfile.TarInfo(name)
        info.mode = stat.S_IMODE(st.st_mode) if perm is None else perm
        info.uid, info.gid = (st.st_uid, st.st_gid) if owner is None else owner
        info.uname = info.gname = ""
        info.mtime = self._mtime(st.st_mtime)
        mode = st.st_mode
        copy = 0
        if stat.S_ISREG(mode):
            key = (st.st_dev, st.st_ino)
            first = self._links.get(key) if st.st_nlink > 1 else None
            if first is not None:
                info.type = tarfile.LNKTYPE
                info.linkname = first
            else:
                if st.st_nlink > 1:
                    self._links[key] = name
                info.type = tarfile.REGTYPE
                info.size = copy = st.st_size
        elif stat.S_ISDIR(mode):
            info.type = tarfile.DIRTYPE
        elif stat.S_ISLNK(mode):
            info.type = tarfile.SYMTYPE
            info.linkname = os.readlink(path)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
            info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        elif stat.S_ISFIFO(mode):
            info.type = tarfile.FIFOTYPE
        else:
            return  # sockets are not archived, as with tar
        attrs = read_xattrs(path) if xattrs is None else xattrs
        if attrs:
            info.pax_headers = {
                f"SCHILY.xattr.{k}": v.decode("utf-8", "surrogateescape") for k, v in attrs.items()
            }
        self._out.write(_header(info))
        if copy:
            self._copy(path, copy)

    def _copy(self, path: str, size: int) -> None:
        left = size
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            while left > 0:
                chunk = os.read(fd, min(_CHUNK, left))
                if not chunk:
                    raise FailedPrecondition(f"{path} shrank while it was being archived")
                self._out.write(chunk)
                left -= len(chunk)
        finally:
            os.close(fd)
        pad = -size % BLOCK
        if pad:
            self._out.write(b"\0" * pad)

    def finish(self) -> None:
        self._out.write(b"\0" * (2 * BLOCK))
