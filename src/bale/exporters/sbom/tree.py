"""Read-only file trees a scanner looks into: an image's merged layers, or a directory.

`LayeredTree` merges OCI layer tars (gzip, zstd or plain; oldest first) as overlayfs
would: a newer layer's entry wins, `.wh.NAME` deletes NAME and what is under it, a
`.wh..wh..opq` marker hides what lower layers hold in its directory, a non-directory
hides a lower directory's contents. It reads each layer once to index the headers, and
again only for the files a scanner asks for, so content is never held beyond what is
asked for. Every read is capped (see `Limits`); a hostile layer — a truncated stream, an
oversized header, endless paths, symlink loops — costs a recorded problem, never a
crash or an unbounded read. Nothing is ever extracted or executed.
"""

from __future__ import annotations

import os
import posixpath
import re
import stat
import tarfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, BinaryIO, Literal, Protocol, cast

from bale.errors import BaleError
from bale.store.compression import Readable, decompressed
from bale.trees import walk

Kind = Literal["file", "dir", "symlink", "other"]
LayerOpener = Callable[[], BinaryIO | Readable]
_MAX_PROBLEMS = 50


@dataclass(frozen=True)
class Limits:
    """Caps that keep a hostile image from exhausting memory, disk or time."""

    max_entries: int = 2_000_000
    max_path: int = 4096
    max_depth: int = 256
    max_file: int = 64 << 20  # bytes of one package database or manifest
    max_binary: int = 512 << 20  # bytes of one executable read for its Go build info
    max_header: int = 1 << 20  # one PAX / GNU long-name header
    max_layer_bytes: int = 64 << 30  # decompressed bytes read from one layer in one pass
    symlink_hops: int = 40


@dataclass(frozen=True)
class Entry:
    """One path in the merged tree. `layer` and `member` locate its content."""

    path: str
    kind: Kind
    mode: int = 0o644
    size: int = 0
    link: str = ""
    layer: int = -1
    member: int = -1

    @property
    def executable(self) -> bool:
        return self.kind == "file" and bool(self.mode & 0o111)


class FileTree(Protocol):
    """What scanners need of a tree: its index, symlink resolution and file contents."""

    problems: list[str]

    def entries(self) -> Iterable[Entry]: ...

    def resolve(self, path: str) -> Entry | None: ...

    def files_matching(self, pattern: re.Pattern[str]) -> list[Entry]: ...

    def open_each(self, entries: Iterable[Entry]) -> Iterator[tuple[Entry, Readable]]: ...

    def origin(self, entry: Entry) -> str: ...


def normalize(name: str) -> str | None:
    """A tar member name as a clean relative path; None for the root itself."""
    parts: list[str] = []
    for part in name.replace("\\", "/").split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "/".join(parts) or None


class _Budget(Exception):
    pass


class _Counted:
    """A reader that stops once `limit` bytes have come through it."""

    def __init__(self, inner: Readable, limit: int) -> None:
        self._inner = inner
        self._left = limit

    def read(self, n: int = -1) -> bytes:
        if self._left <= 0:
            raise _Budget
        data = self._inner.read(n if 0 <= n <= self._left else self._left)
        self._left -= len(data)
        return data


class _Capped:
    """At most `limit` bytes of a member's content."""

    def __init__(self, inner: IO[bytes], limit: int) -> None:
        self._inner = inner
        self._left = limit

    def read(self, n: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        n = self._left if n < 0 or n > self._left else n
        data = self._inner.read(n)
        self._left -= len(data)
        return data


_EXTENDED = {tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE, tarfile.XGLTYPE}


def _bounded_tarinfo(limit: int) -> type[tarfile.TarInfo]:
    class Bounded(tarfile.TarInfo):
        # tarfile reads an extended header whole into memory; refuse oversized ones.
        # `_proc_member` is the hook tarfile documents for subclasses.
        def _proc_member(self, tf: tarfile.TarFile) -> tarfile.TarInfo:
            if self.type in _EXTENDED and self.size > limit:
                raise tarfile.HeaderError(f"extended header of {self.size} bytes")
            return cast(tarfile.TarInfo, super()._proc_member(tf))  # type: ignore[misc]

    return Bounded


# What reading a hostile or damaged layer can raise; each ends that layer, not the scan.
READ_ERRORS = (tarfile.TarError, EOFError, OSError, ValueError, BaleError, _Budget)


class _IndexedTree:
    """The merged index and the lookups shared by every tree."""

    def __init__(self, limits: Limits | None) -> None:
        self.limits = limits or Limits()
        self.problems: list[str] = []
        self._dropped = 0
        self._index: dict[str, Entry] | None = None
        self._children: dict[str, set[str]] = {}

    def problem(self, text: str) -> None:
        if len(self.problems) < _MAX_PROBLEMS:
            self.problems.append(text)
        else:
            self._dropped += 1
            self.problems[-1] = f"… and {self._dropped} more problems"

    def _build(self) -> dict[str, Entry]:
        raise NotImplementedError

    @property
    def index(self) -> dict[str, Entry]:
        if self._index is None:
            self._index = {}
            self._index = self._build()
        return self._index

    def entries(self) -> Iterable[Entry]:
        return self.index.values()

    def get(self, path: str) -> Entry | None:
        norm = normalize(path)
        return self.index.get(norm) if norm else None

    def files_matching(self, pattern: re.Pattern[str]) -> list[Entry]:
        """Regular files whose stored path matches; symlinks are not followed, so a
        file reached through a linked directory (`/lib` → `usr/lib`) counts once."""
        return sorted(
            (e for e in self.index.values() if e.kind == "file" and pattern.search(e.path)),
            key=lambda e: e.path,
        )

    def resolve(self, path: str) -> Entry | None:
        """The entry at `path` after following symlinks (in every component) inside
        the tree; None when it is missing or the links loop."""
        pending = [p for p in path.split("/") if p not in ("", ".")]
        parts: list[str] = []
        hops = 0
        entry: Entry | None = None
        while pending:
            part = pending.pop(0)
            if part == "..":
                if parts:
                    parts.pop()
                continue
            candidate = "/".join([*parts, part])
            entry = self.index.get(candidate)
            if entry is None:
                # A directory that only exists implicitly (a layer without its entry).
                if pending and candidate in self._children:
                    parts.append(part)
                    continue
                return None
            if entry.kind == "symlink":
                hops += 1
                if hops > self.limits.symlink_hops:
                    return None
                target = [p for p in entry.link.split("/") if p not in ("", ".")]
                if entry.link.startswith("/"):
                    parts = []
                pending = target + pending
                continue
            parts.append(part)
        if not parts:
            return None
        return self.index.get("/".join(parts))

    # Index maintenance, in overlay order.
    def _remove_tree(self, index: dict[str, Entry], path: str, *, keep_root: bool) -> None:
        """Drop what is under `path` (and `path` itself unless `keep_root`)."""
        stack = list(self._children.pop(path, ()))
        while stack:
            current = stack.pop()
            stack.extend(self._children.pop(current, ()))
            index.pop(current, None)
        if not keep_root:
            index.pop(path, None)
            siblings = self._children.get(posixpath.dirname(path))
            if siblings is not None:
                siblings.discard(path)

    def _add(self, index: dict[str, Entry], entry: Entry) -> None:
        if entry.kind != "dir" and entry.path in self._children:
            # A non-directory over a directory (explicit or implied) hides its contents.
            self._remove_tree(index, entry.path, keep_root=True)
        index[entry.path] = entry
        child = entry.path
        while child:
            parent = posixpath.dirname(child)
            siblings = self._children.setdefault(parent, set())
            if child in siblings:
                break
            siblings.add(child)
            child = parent

    def _acceptable(self, path: str, count: int) -> bool:
        if len(path) > self.limits.max_path or path.count("/") >= self.limits.max_depth:
            self.problem(f"skipped a path of {len(path)} bytes / {path.count('/') + 1} levels")
            return False
        if count >= self.limits.max_entries:
            self.problem(f"more than {self.limits.max_entries} entries: the rest is not indexed")
            return False
        return True


class LayeredTree(_IndexedTree):
    """The merged view of an image's layers.

    `layers` open each layer's (possibly compressed) tar stream, oldest first; they are
    called once to index and once more for a layer holding a file that is read.
    `layer_ids` (the layers' digests or diff IDs) name where a package was found."""

    def __init__(
        self,
        layers: Sequence[LayerOpener],
        *,
        layer_ids: Sequence[str] = (),
        limits: Limits | None = None,
    ) -> None:
        super().__init__(limits)
        self._layers = list(layers)
        self._layer_ids = list(layer_ids)

    def origin(self, entry: Entry) -> str:
        if 0 <= entry.layer < len(self._layer_ids):
            return self._layer_ids[entry.layer]
        return ""

    def _members(self, layer: int) -> Iterator[tuple[int, tarfile.TarFile, tarfile.TarInfo]]:
        """(ordinal, archive, member) for each member of one layer; read errors end the
        layer with a recorded problem."""
        raw: BinaryIO | Readable | None = None
        try:
            raw = self._layers[layer]()
            _, plain = decompressed(raw)
            stream = _Counted(plain, self.limits.max_layer_bytes)
            tarinfo = _bounded_tarinfo(self.limits.max_header)
            with tarfile.open(fileobj=cast(IO[bytes], stream), mode="r|", tarinfo=tarinfo) as tf:
                for ordinal, member in enumerate(tf):
                    yield ordinal, tf, member
        except _Budget:
            self.problem(f"layer {layer}: stopped after {self.limits.max_layer_bytes} bytes")
        except READ_ERRORS as exc:
            self.problem(f"layer {layer}: {exc}")
        finally:
            close = getattr(raw, "close", None)
            if close is not None:
                close()

    def _build(self) -> dict[str, Entry]:
        index: dict[str, Entry] = {}
        for layer in range(len(self._layers)):
            own: dict[str, Entry] = {}
            whiteouts: list[str] = []
            opaque: list[str] = []
            for ordinal, _, member in self._members(layer):
                path = normalize(member.name)
                if path is None:
                    continue
                if not self._acceptable(path, len(index) + len(own)):
                    continue
                parent, base = posixpath.split(path)
                if base == ".wh..wh..opq":
                    opaque.append(parent)
                    continue
                if base.startswith(".wh."):
                    whiteouts.append(posixpath.join(parent, base[4:]))
                    continue
                entry = self._entry(path, layer, ordinal, member, own, index)
                if entry is not None:
                    own[path] = entry
            for directory in opaque:
                self._remove_tree(index, directory, keep_root=True)
            for path in whiteouts:
                self._remove_tree(index, path, keep_root=False)
            for entry in own.values():
                self._add(index, entry)
        return index

    def _entry(
        self,
        path: str,
        layer: int,
        ordinal: int,
        member: tarfile.TarInfo,
        own: dict[str, Entry],
        lower: dict[str, Entry],
    ) -> Entry | None:
        mode = member.mode & 0o7777
        if member.islnk():
            target_path = normalize(member.linkname) or ""
            target = own.get(target_path) or lower.get(target_path)
            if target is None or target.kind != "file":
                self.problem(f"layer {layer}: hard link {path} to missing {member.linkname}")
                return None
            return Entry(path, "file", mode, target.size, "", target.layer, target.member)
        if member.isreg():
            return Entry(path, "file", mode, member.size, "", layer, ordinal)
        if member.isdir():
            return Entry(path, "dir", mode)
        if member.issym():
            return Entry(path, "symlink", mode, 0, member.linkname[: self.limits.max_path])
        return Entry(path, "other", mode)

    def open_each(self, entries: Iterable[Entry]) -> Iterator[tuple[Entry, Readable]]:
        """Each entry's content (capped at `Limits.max_binary`), layer by layer in one
        pass per layer; read each before advancing the iterator. Of several hard links
        to one file, only the first asked for is yielded."""
        wanted: dict[int, dict[int, list[Entry]]] = {}
        for entry in entries:
            if entry.kind == "file" and entry.layer >= 0:
                wanted.setdefault(entry.layer, {}).setdefault(entry.member, []).append(entry)
        for layer in sorted(wanted):
            members = wanted[layer]
            last = max(members)
            for ordinal, archive, member in self._members(layer):
                # Hard links share one member, which a stream can be read from once.
                entry_list = members.get(ordinal)
                handle = archive.extractfile(member) if entry_list else None
                if entry_list and handle is not None:
                    yield entry_list[0], _Capped(handle, self.limits.max_binary)
                if ordinal >= last:
                    break


class DirectoryTree(_IndexedTree):
    """A host directory (the build context, for `BUILDKIT_SBOM_SCAN_CONTEXT`), walked
    without following symlinks; links resolve inside it as they would in an image.
    `excluded` (a `/`-separated relative path → bool, as `.dockerignore` answers) leaves
    paths out, as they are left out of the context a build sees."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        limits: Limits | None = None,
        excluded: Callable[[str], bool] | None = None,
    ) -> None:
        super().__init__(limits)
        self.root = os.fspath(root)
        self._excluded = excluded or (lambda _path: False)

    def origin(self, entry: Entry) -> str:
        return ""

    def _build(self) -> dict[str, Entry]:
        index: dict[str, Entry] = {}
        for top, dirs, files in walk(self.root, onerror=lambda e: self.problem(str(e))):
            dirs.sort()
            for name in sorted(dirs) + sorted(files):
                full = os.path.join(top, name)
                path = os.path.relpath(full, self.root).replace(os.sep, "/")
                if self._excluded(path) or not self._acceptable(path, len(index)):
                    if name in dirs:
                        dirs.remove(name)
                    continue
                try:
                    st = os.lstat(full)
                except OSError as exc:
                    self.problem(str(exc))
                    continue
                self._add(index, self._stat_entry(path, full, st))
        return index

    @staticmethod
    def _stat_entry(path: str, full: str, st: os.stat_result) -> Entry:
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISREG(st.st_mode):
            return Entry(path, "file", mode, st.st_size)
        if stat.S_ISDIR(st.st_mode):
            return Entry(path, "dir", mode)
        if stat.S_ISLNK(st.st_mode):
            return Entry(path, "symlink", mode, 0, os.readlink(full))
        return Entry(path, "other", mode)

    def open_each(self, entries: Iterable[Entry]) -> Iterator[tuple[Entry, Readable]]:
        for entry in entries:
            if entry.kind != "file":
                continue
            full = os.path.join(self.root, *entry.path.split("/"))
            try:
                fd = os.open(full, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
            except OSError as exc:
                self.problem(f"{entry.path}: {exc.strerror}")
                continue
            with os.fdopen(fd, "rb") as handle:
                yield entry, _Capped(handle, self.limits.max_binary)


def read_capped(stream: Readable, limit: int) -> bytes | None:
    """All of `stream` if it fits in `limit` bytes, else None."""
    chunks: list[bytes] = []
    total = 0
    while chunk := stream.read(min(1 << 20, limit + 1 - total)):
        chunks.append(chunk)
        total += len(chunk)
        if total > limit:
            return None
    return b"".join(chunks)
