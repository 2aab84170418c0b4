"""The build context: selecting COPY sources as Docker does, and checksumming them.

File hashes are cached by stat information (device, inode, size, mtime, ctime, mode), so a
rebuild re-reads only files that changed. A checksum covers names, types, modes, link targets
and contents, never mtimes or inode numbers; owners only when the copy keeps them. Nothing
outside the context root is ever reached: sources are cleaned of `..` first, and symlinks
are copied as links, never followed.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import posixpath
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from bale.errors import InvalidArgument, NotFound
from bale.store.layers.rootpath import resolve

_GLOB = set("*?[")


def clean(path: str) -> str:
    """A context-relative path with `..` that cannot climb above the root ("." for the root)."""
    cleaned = posixpath.normpath("/" + path.replace("\\", "/")).lstrip("/")
    return cleaned or "."


@dataclass(frozen=True)
class Source:
    """One matched source: `rel` is what is read (a top-level link already followed inside
    the root, as BuildKit follows COPY sources), `name` what it is copied as."""

    rel: str
    is_dir: bool
    name: str = ""

    @property
    def basename(self) -> str:
        return self.name or posixpath.basename(self.rel)


class HashCache(Protocol):
    """Remembers file digests by path and stat (see bale.builder.cache.FileHashes)."""

    def get(self, path: str, stat_key: str) -> str | None: ...

    def put(self, path: str, stat_key: str, digest: str) -> None: ...


class BuildContext:
    def __init__(
        self,
        root: Path,
        excluded: Callable[[str], bool] = lambda _: False,
        hashes: HashCache | None = None,
    ) -> None:
        self.root = root.resolve()
        self._excluded = excluded
        self._hashes = hashes
        self._under: dict[str, list[str]] = {}

    def narrowed(self, excluded: Callable[[str], bool]) -> BuildContext:
        """The same context with more paths left out (COPY --exclude)."""
        own = self._excluded
        return BuildContext(self.root, lambda rel: own(rel) or excluded(rel), self._hashes)

    def host(self, rel: str) -> str:
        return os.path.join(self.root, rel) if rel != "." else str(self.root)

    def excluded(self, rel: str) -> bool:
        return rel != "." and self._excluded(rel)

    def files(self) -> list[str]:
        """Every context path not excluded by .dockerignore, sorted."""
        return self.below(".")

    def below(self, rel: str) -> list[str]:
        """The paths under directory `rel` that are not excluded, sorted; an excluded
        directory is kept when something in it is re-included (`!` in .dockerignore)."""
        if rel not in self._under:
            out: set[str] = set()
            start = self.host(rel)
            for dirpath, dirnames, filenames in os.walk(start):
                dirnames.sort()
                here = os.path.relpath(dirpath, self.root)
                for name in dirnames + filenames:
                    path = name if here == "." else f"{here}/{name}"
                    if not self.excluded(path):
                        out.add(path)
                        parent = posixpath.dirname(path)
                        while parent and parent != rel and parent not in out:
                            out.add(parent)
                            parent = posixpath.dirname(parent)
            self._under[rel] = sorted(out)
        return self._under[rel]

    def match(self, pattern: str) -> list[Source]:
        """Sources a COPY/ADD source pattern names (globs match one path level per part)."""
        rel = clean(pattern)
        if not _GLOB & set(rel):
            path = self.host(rel)
            if not os.path.lexists(path) or (
                self.excluded(rel) and not (os.path.isdir(path) and self.below(rel))
            ):
                raise NotFound(
                    f'failed to compute cache key: "/{rel}": not found',
                    hint="check the path is inside the build context and not in .dockerignore",
                )
            return [self._followed(rel)]
        parts = rel.split("/")
        found = []
        for candidate in self.files():
            cparts = candidate.split("/")
            if len(cparts) == len(parts) and all(
                fnmatch.fnmatchcase(c, p) for c, p in zip(cparts, parts, strict=True)
            ):
                found.append(self._followed(candidate))
        if not found:
            raise NotFound(
                f"failed to compute cache key: no source files were specified for {pattern!r}"
            )
        return found

    def _followed(self, rel: str) -> Source:
        """`rel`, with a symlink followed as the root sees it (never out of the root)."""
        path = self.host(rel)
        if not os.path.islink(path):
            return Source(rel, os.path.isdir(path))
        target = resolve(str(self.root), rel, follow_final=True)
        if not os.path.exists(target):
            raise NotFound(
                f'failed to compute cache key: "/{rel}": not found',
                hint="it is a symbolic link to a path that is not in the build context",
            )
        target_rel = os.path.relpath(target, self.root)
        return Source(target_rel, os.path.isdir(target), posixpath.basename(rel))

    def walk(self, source: Source) -> list[str]:
        """`source` and, for a directory, every non-excluded path below it."""
        if not source.is_dir:
            return [source.rel]
        return [source.rel, *self.below(source.rel)]

    # -- checksums -----------------------------------------------------------------------

    def checksum(self, sources: list[Source], *, owners: bool = False) -> str:
        """Digest of names, types, modes, link targets and contents of everything the
        sources cover, and of owners with `owners` (a copy that keeps them)."""
        h = hashlib.sha256()
        for source in sources:
            for rel in self.walk(source):
                h.update(self._entry_digest(rel, owners).encode())
                h.update(b"\0")
        return h.hexdigest()

    def _entry_digest(self, rel: str, owners: bool) -> str:
        path = self.host(rel)
        st = os.lstat(path)
        mode = st.st_mode
        kind = stat.S_IFMT(mode)
        owner = f"{st.st_uid}:{st.st_gid}" if owners else ""
        head = f"{rel}\0{kind:o}\0{stat.S_IMODE(mode):o}\0{owner}\0"
        if stat.S_ISLNK(mode):
            return head + os.readlink(path)
        if stat.S_ISREG(mode):
            return head + self._file_digest(path, st)
        return head

    def _file_digest(self, path: str, st: os.stat_result) -> str:
        key = f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{st.st_mode}"
        if self._hashes is not None:
            known = self._hashes.get(path, key)
            if known is not None:
                return known
        h = hashlib.sha256()
        try:
            with open(path, "rb") as f:
                while chunk := f.read(1 << 20):
                    h.update(chunk)
        except OSError as exc:
            raise InvalidArgument(f"cannot read context file {path}: {exc.strerror}") from None
        digest = h.hexdigest()
        if self._hashes is not None:
            self._hashes.put(path, key, digest)
        return digest
