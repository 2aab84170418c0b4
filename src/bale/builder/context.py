"""The build context: selecting COPY sources as Docker does, and checksumming them.

Every path is resolved inside the root, component by component, as a chroot would see it: a
symlink met on the way (`linkdir -> /etc`) is followed with the root as `/`, never out of it.
What `.dockerignore` excludes is never read, whatever name leads to it (a link to an
excluded file is not found, as BuildKit never sends that file).

File hashes are cached by stat information (device, inode, size, mtime, ctime, mode), so a
rebuild re-reads only files that changed. A checksum covers names, types, modes, link targets
and contents, never mtimes or inode numbers; owners only when the copy keeps them. Nothing
outside the context root is ever reached: sources are cleaned of `..` first, and symlinks
are copied as links, never followed.
"""

from __future__ import annotations

import errno
import fnmatch
import hashlib
import os
import posixpath
import stat
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from bale.errors import InvalidArgument, NotFound
from bale.store.layers.rootpath import resolve
from bale.trees import walk

_GLOB = set("*?[")


def clean(path: str) -> str:
    """A context-relative path with `..` that cannot climb above the root ("." for the root)."""
    cleaned = posixpath.normpath("/" + path.replace("\\", "/")).lstrip("/")
    return cleaned or "."


@dataclass(frozen=True)
class Source:
    """One matched source: `rel` is what is read (its links already resolved inside the
    root, as BuildKit follows COPY sources), `named` the path the Dockerfile named."""

    rel: str
    is_dir: bool
    named: str = ""

    @property
    def basename(self) -> str:
        return posixpath.basename(self.named or self.rel)

    @property
    def path(self) -> str:
        """The path as named (what `--parents` keeps below the destination)."""
        return self.named or self.rel


def entries_checksum(entries: list[tuple[str, str]]) -> str:
    h = hashlib.sha256()
    for _, entry in entries:
        h.update(entry.encode())
        h.update(b"\0")
    return h.hexdigest()


class HashCache(Protocol):
    """Remembers file digests by path and stat (see bale.builder.cache.FileHashes)."""

    def get(self, path: str, stat_key: str) -> str | None: ...

    def put(self, path: str, stat_key: str, digest: str) -> None: ...

    def preload(self, root: str) -> None: ...


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
            for dirpath, dirnames, filenames in walk(start, onerror=self._walk_error):
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

    def _walk_error(self, exc: OSError) -> None:
        # A directory that cannot be listed is left out (as before), but one nested deeper
        # than a path can name would be left out silently with all below it: say so.
        if exc.errno == errno.ENAMETOOLONG:
            rel = os.path.relpath(str(exc.filename), self.root)
            shown = rel if len(rel) <= 80 else f"{rel[:40]}...{rel[-20:]}"
            raise InvalidArgument(
                f"build context path too long: '{shown}' ({len(rel)} characters)",
                hint="a path, with the directory the context is in, must be shorter than "
                "4096 characters",
            )

    def sources(self, patterns: Sequence[str], *, parents: bool = False) -> list[Source]:
        """What a COPY/ADD's source patterns name. A wildcard may match nothing (BuildKit's
        AllowEmptyWildcard); a plain path must exist."""
        out: list[Source] = []
        for pattern in patterns:
            if parents and ("/./" in pattern or "**" in pattern):
                out.extend(self._match_pivot(pattern))
            else:
                out.extend(self.match(pattern, allow_empty=True))
        return out

    def _match_pivot(self, pattern: str) -> list[Source]:
        """COPY --parents `PARENT/./PATTERN`: what PATTERN (`**` for any number of
        directories) names below each directory PARENT matches, kept as the path below
        PARENT; without `/./` the whole path is kept."""
        from bale.frontends.dockerignore import DockerIgnore

        head, pivot, tail = pattern.partition("/./")
        if not pivot:
            head, tail = ".", pattern
        rules = DockerIgnore.parse(clean(tail))
        out: list[Source] = []
        for parent in self.match(head, allow_empty=True):
            if not parent.is_dir:
                continue
            prefix = "" if parent.rel == "." else parent.rel + "/"
            taken: set[str] = set()
            for rel in self.below(parent.rel):
                inner = rel[len(prefix) :]
                up = posixpath.dirname(inner)
                while up and up not in taken:
                    up = posixpath.dirname(up)
                if up or not rules.excluded(inner):
                    continue  # under a directory already taken, or not named
                taken.add(inner)
                host = self.host(rel)
                out.append(Source(rel, os.path.isdir(host) and not os.path.islink(host), inner))
        if not out and not _GLOB & set(pattern):
            raise NotFound(f'failed to compute cache key: "/{clean(head + "/" + tail)}": not found')
        return out

    def match(self, pattern: str, *, allow_empty: bool = False) -> list[Source]:
        """Sources a COPY/ADD source pattern names (globs match one path level per part)."""
        rel = clean(pattern)
        if not _GLOB & set(rel):
            found = self._resolved(rel)
            if found is None:
                raise NotFound(
                    f'failed to compute cache key: "/{rel}": not found',
                    hint=(
                        "a symbolic link on the way leads to a path that is not in the build "
                        "context (links resolve inside it)"
                        if self._through_link(rel)
                        else "check the path is inside the build context and not in .dockerignore"
                    ),
                )
            return [found]
        parts = rel.split("/")
        matched = []
        for candidate in self.files():
            cparts = candidate.split("/")
            if len(cparts) == len(parts) and all(
                fnmatch.fnmatchcase(c, p) for c, p in zip(cparts, parts, strict=True)
            ):
                found = self._resolved(candidate)
                if found is not None:
                    matched.append(found)
        if not matched and not allow_empty:
            raise NotFound(
                f"failed to compute cache key: no source files were specified for {pattern!r}"
            )
        return matched

    def resolve(self, rel: str) -> str:
        """`rel` with every symlink resolved inside the root: a root-relative real path
        ("." for the root). Raises NotFound when it is missing or excluded."""
        found = self._resolved(clean(rel))
        if found is None:
            raise NotFound(f'"/{clean(rel)}": not found in the build context')
        return found.rel

    def _resolved(self, rel: str) -> Source | None:
        """`rel` as the root sees it (links followed, never out of the root), or None when it
        is not there or `.dockerignore` leaves it out."""
        if rel == ".":
            return Source(".", True)
        target = resolve(str(self.root), rel, follow_final=True)
        if not os.path.lexists(target) or os.path.islink(target):
            return None  # missing, or a link that loops or leads nowhere
        real = os.path.relpath(target, self.root).replace(os.sep, "/")
        is_dir = os.path.isdir(target)
        if self._hidden(real, is_dir):
            return None
        return Source(real, is_dir, rel if rel != real else "")

    def _through_link(self, rel: str) -> bool:
        parts = rel.split("/")
        return any(
            os.path.islink(os.path.join(self.root, *parts[: i + 1])) for i in range(len(parts))
        )

    def _hidden(self, rel: str, is_dir: bool) -> bool:
        """Excluded (dockerignore rules match parent directories too), unless a directory
        with something in it that a `!` rule re-includes."""
        if rel == "." or not self.excluded(rel):
            return False
        return not (is_dir and self.below(rel))

    def hidden_below(self, rel: str) -> list[str]:
        """What `.dockerignore` leaves out under directory `rel`, as the fewest paths
        (relative to `rel`): a RUN bind mount of the context hides them."""
        out: list[str] = []
        start = self.host(rel)
        prefix = "" if rel == "." else rel + "/"
        for dirpath, dirnames, filenames in walk(start, onerror=self._walk_error):
            here = os.path.relpath(dirpath, start).replace(os.sep, "/")
            here = "" if here == "." else here + "/"
            keep = []
            for name in sorted(dirnames):
                path = prefix + here + name
                if self.excluded(path) and not self.below(path):
                    out.append(here + name)
                else:
                    keep.append(name)
            dirnames[:] = keep
            out.extend(here + name for name in filenames if self.excluded(prefix + here + name))
        return sorted(out)

    def walk(self, source: Source) -> list[str]:
        """`source` and, for a directory, every non-excluded path below it."""
        if not source.is_dir:
            return [source.rel]
        return [source.rel, *self.below(source.rel)]

    # -- checksums -----------------------------------------------------------------------

    def checksum(self, sources: list[Source], *, owners: bool = False) -> str:
        """Digest of names, types, modes, link targets and contents of everything the
        sources cover, and of owners with `owners` (a copy that keeps them)."""
        return entries_checksum(self.entries(sources, owners=owners))

    def entries(self, sources: list[Source], *, owners: bool = False) -> list[tuple[str, str]]:
        """(path, digest of its name, type, mode, link or content) for everything the sources
        cover, in order. Files not hashed before are read in parallel."""
        root = str(self.root)
        hashes = self._hashes
        if hashes is not None:
            hashes.preload(root)
        heads: list[str] = []
        tails: list[str] = []
        todo: list[tuple[int, str, os.stat_result, str]] = []
        for source in sources:
            for rel in self.walk(source):
                path = root if rel == "." else f"{root}/{rel}"
                st = os.lstat(path)
                mode = st.st_mode
                owner = f"{st.st_uid}:{st.st_gid}" if owners else ""
                heads.append(f"{rel}\0{stat.S_IFMT(mode):o}\0{stat.S_IMODE(mode):o}\0{owner}\0")
                tail = ""
                if stat.S_ISLNK(mode):
                    tail = os.readlink(path)
                elif stat.S_ISREG(mode):
                    key = _stat_key(st)
                    known = hashes.get(path, key) if hashes is not None else None
                    if known is None:
                        todo.append((len(tails), path, st, key))
                    else:
                        tail = known
                tails.append(tail)
        if len(todo) > 1:
            # hashlib drops the GIL on large buffers: threads use every core.
            with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 2)) as pool:
                digests = list(pool.map(lambda item: self._hash_file(*item[1:]), todo))
        else:
            digests = [self._hash_file(*item[1:]) for item in todo]
        for (index, *_), digest in zip(todo, digests, strict=True):
            tails[index] = digest
        paths = [h.split("\0", 1)[0] for h in heads]
        return [(p, h + t) for p, h, t in zip(paths, heads, tails, strict=True)]

    def _hash_file(self, path: str, st: os.stat_result, key: str = "") -> str:
        h = hashlib.sha256()
        try:
            with open(path, "rb") as f:
                while chunk := f.read(1 << 20):
                    h.update(chunk)
        except OSError as exc:
            raise InvalidArgument(f"cannot read context file {path}: {exc.strerror}") from None
        digest = h.hexdigest()
        if self._hashes is not None:
            self._hashes.put(path, key or _stat_key(st), digest)
        return digest


def _stat_key(st: os.stat_result) -> str:
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{st.st_mode}"
