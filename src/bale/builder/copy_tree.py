"""Where a COPY writes: a mounted rootfs (`RootfsTree`), or straight into the layer
(`LayerTree`), which records what the copy makes over a read-only view of its parent and
writes it as one tar, reading each source file once and never copying it first.

Paths are image paths ("/usr/lib"), resolved inside the tree as a chroot would resolve them:
symlinks met on the way are followed with the tree's root as `/`.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import stat
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from bale.builder.users import set_owner
from bale.errors import InvalidArgument
from bale.store.layers.rootpath import resolve as resolve_in_root

if TYPE_CHECKING:
    from bale.store.layers.tarwriter import TarEmitter

Kind = Literal["dir", "file", "link", "other"]
_MAX_LINKS = 40


class Tree(Protocol):
    def resolve(self, path: str, *, follow_final: bool) -> str:
        """`path` with its links resolved inside the tree (the last one with follow_final)."""
        ...

    def kind(self, path: str) -> Kind | None:
        """What is at a resolved `path` (a link is not followed), or None."""
        ...

    def mkdir(self, path: str, owner: tuple[int, int], perm: int = 0o755) -> None: ...

    def unlink(self, path: str) -> None: ...

    def put(
        self, path: str, host: str, st: os.stat_result, perm: int, owner: tuple[int, int]
    ) -> None:
        """Copy the file, directory or link at `host` (lstat `st`) to `path`."""
        ...

    def put_bytes(
        self,
        path: str,
        data: bytes,
        perm: int,
        owner: tuple[int, int],
        mtime: float | None = None,
    ) -> None: ...

    def finish_dir(self, path: str, st: os.stat_result) -> None:
        """A copied directory takes its source's times once everything is in it."""
        ...


def _kind_of(st: os.stat_result) -> Kind:
    if stat.S_ISDIR(st.st_mode):
        return "dir"
    if stat.S_ISLNK(st.st_mode):
        return "link"
    if stat.S_ISREG(st.st_mode):
        return "file"
    return "other"


class RootfsTree:
    """A rootfs directory on the host; every path it makes stays inside it."""

    def __init__(self, rootfs: str) -> None:
        self.rootfs = rootfs

    def host(self, path: str) -> str:
        return os.path.join(self.rootfs, path.lstrip("/"))

    def resolve(self, path: str, *, follow_final: bool) -> str:
        host = resolve_in_root(self.rootfs, path, follow_final=follow_final)
        return "/" + os.path.relpath(host, self.rootfs).lstrip(".")

    def kind(self, path: str) -> Kind | None:
        try:
            return _kind_of(os.lstat(self.host(path)))
        except FileNotFoundError:
            return None

    def mkdir(self, path: str, owner: tuple[int, int], perm: int = 0o755) -> None:
        host = self.host(path)
        os.mkdir(host, 0o755)
        set_owner(host, *owner)
        if perm != 0o755:
            os.chmod(host, perm)

    def unlink(self, path: str) -> None:
        os.unlink(self.host(path))

    def put(
        self, path: str, host: str, st: os.stat_result, perm: int, owner: tuple[int, int]
    ) -> None:
        target = self.host(path)
        if stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(host), target)
            set_owner(target, *owner)
            return
        if stat.S_ISDIR(st.st_mode):
            if not os.path.lexists(target):
                os.mkdir(target)
        else:
            shutil.copyfile(host, target, follow_symlinks=False)
        set_owner(target, *owner)
        os.chmod(target, perm)  # after chown, which clears set-uid bits
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))

    def put_bytes(
        self,
        path: str,
        data: bytes,
        perm: int,
        owner: tuple[int, int],
        mtime: float | None = None,
    ) -> None:
        target = self.host(path)
        with open(target, "wb") as f:
            f.write(data)
        set_owner(target, *owner)
        os.chmod(target, perm)
        if mtime is not None:
            os.utime(target, (mtime, mtime))

    def finish_dir(self, path: str, st: os.stat_result) -> None:
        os.utime(self.host(path), ns=(st.st_atime_ns, st.st_mtime_ns))


@dataclass
class _Pending:
    kind: Kind
    perm: int = 0o755
    owner: tuple[int, int] = (0, 0)
    host: str = ""  # the source on the host (files, links, copied directories)
    st: os.stat_result | None = None
    data: bytes | None = None
    link: str = ""  # a link's target
    mtime: float = 0.0


class LayerTree:
    """What a COPY makes, over `parent` (a read-only host view of the parent state, or None
    for an empty one): nothing is written until `emit` writes the layer."""

    def __init__(self, parent: str | None) -> None:
        self.parent = parent
        self.pending: dict[str, _Pending] = {}
        self.removed: set[str] = set()
        self._now = time.time()

    def _lstat_parent(self, path: str) -> os.stat_result | None:
        if self.parent is None or path in self.removed:
            return None
        try:
            return os.lstat(os.path.join(self.parent, path.lstrip("/")))
        except (FileNotFoundError, NotADirectoryError):
            return None

    def kind(self, path: str) -> Kind | None:
        found = self.pending.get(path)
        if found is not None:
            return found.kind
        st = self._lstat_parent(path)
        return _kind_of(st) if st is not None else None

    def _link_target(self, path: str) -> str:
        found = self.pending.get(path)
        if found is not None:
            return found.link
        assert self.parent is not None
        return os.readlink(os.path.join(self.parent, path.lstrip("/")))

    def resolve(self, path: str, *, follow_final: bool) -> str:
        parts = [p for p in path.split("/") if p not in ("", ".")]
        done: list[str] = []
        links = 0
        while parts:
            name = parts.pop(0)
            if name == "..":
                if done:
                    done.pop()
                continue
            candidate = "/" + "/".join([*done, name])
            if (not parts and not follow_final) or self.kind(candidate) != "link":
                done.append(name)
                continue
            links += 1
            if links > _MAX_LINKS:
                raise InvalidArgument(f"too many levels of symbolic links resolving {path}")
            target = self._link_target(candidate)
            if target.startswith("/"):
                done = []
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
        return "/" + "/".join(done)

    def mkdir(self, path: str, owner: tuple[int, int], perm: int = 0o755) -> None:
        self.pending[path] = _Pending("dir", perm, owner, mtime=self._now)

    def unlink(self, path: str) -> None:
        self.pending.pop(path, None)
        self.removed.add(path)

    def put(
        self, path: str, host: str, st: os.stat_result, perm: int, owner: tuple[int, int]
    ) -> None:
        kind = _kind_of(st)
        link = os.readlink(host) if kind == "link" else ""
        self.pending[path] = _Pending(kind, perm, owner, host, st, link=link, mtime=st.st_mtime)

    def put_bytes(
        self,
        path: str,
        data: bytes,
        perm: int,
        owner: tuple[int, int],
        mtime: float | None = None,
    ) -> None:
        when = self._now if mtime is None else mtime
        self.pending[path] = _Pending("file", perm, owner, data=data, mtime=when)

    def finish_dir(self, path: str, st: os.stat_result) -> None:
        found = self.pending.get(path)
        if found is not None:
            found.mtime = st.st_mtime

    def emit(self, emitter: TarEmitter) -> None:
        """Write what the copy made, each directory before what it holds; directories above
        it that were already there are written as they are, as a snapshot diff has them."""
        names: set[str] = set(self.pending)
        for path in self.pending:
            parent = posixpath.dirname(path)
            while parent not in ("/", "") and parent not in names:
                names.add(parent)
                parent = posixpath.dirname(parent)
        for path in sorted(names, key=lambda p: p.split("/")):
            name = path.lstrip("/")
            entry = self.pending.get(path)
            if entry is None:
                st = self._lstat_parent(path)
                if st is not None:
                    assert self.parent is not None
                    emitter.entry(name, os.path.join(self.parent, name), st, xattrs={})
                continue
            if entry.kind == "dir":
                emitter.directory(name, entry.perm, entry.owner, entry.mtime)
            elif entry.data is not None:
                emitter.file_bytes(name, entry.data, entry.perm, entry.owner, entry.mtime)
            elif entry.st is not None:
                emitter.entry(
                    name, entry.host, entry.st, xattrs={}, owner=entry.owner, perm=entry.perm
                )
