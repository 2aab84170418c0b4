"""COPY and ADD with Docker's source and destination rules, written to a `Tree`: a mounted
rootfs, or the layer itself (see copy_tree)."""

from __future__ import annotations

import io
import os
import posixpath
import stat
import tarfile
from typing import BinaryIO, cast

from bale.builder.context import BuildContext, Source
from bale.builder.copy_tree import RootfsTree, Tree
from bale.errors import InvalidArgument
from bale.frontends.graph import CopyOp, InlineFile
from bale.frontends.graph.modes import Mode, parse_chmod
from bale.store.compression import sniff

# Who owns what a copy writes: (uid, gid), or None to keep the source's owners (a COPY
# --from another stage or image without --chown, as BuildKit keeps them).
Owner = tuple[int, int] | None


class _Copier:
    """Applies the rules; `tree` is where entries go."""

    def __init__(self, tree: Tree, owner: Owner, mode: Mode | None) -> None:
        self.tree = tree
        self.owner = owner
        self.mode = mode

    def make_dirs(self, path: str) -> str:
        """The directory `path` (image path), made with its missing parents: 0755 (or the
        --chmod mode) and owned like the copied files, as BuildKit's copy makes them. Returns
        it resolved."""
        perm = self.mode(0o040755, True) if self.mode is not None else 0o755
        current = "/"
        for part in (p for p in path.split("/") if p):
            current = self.tree.resolve(posixpath.join(current, part), follow_final=True)
            kind = self.tree.kind(current)
            if kind is None:
                self.tree.mkdir(current, self.owner or (0, 0), perm)
            elif kind != "dir":
                raise InvalidArgument(f"cannot copy to non-directory: {current}")
        return current

    def dest_file(self, dest: str, basename: str, into_dir: bool) -> str:
        if into_dir:
            return posixpath.join(self.make_dirs(dest), basename)
        existing = self.tree.resolve(dest, follow_final=True)
        if self.tree.kind(existing) == "dir":
            return posixpath.join(existing, basename)
        self.make_dirs(posixpath.dirname(dest))
        return self.tree.resolve(dest, follow_final=False)

    def _owner_of(self, st: os.stat_result) -> tuple[int, int]:
        return self.owner if self.owner is not None else (st.st_uid, st.st_gid)

    def _perm(self, st: os.stat_result, is_dir: bool) -> int:
        return self.mode(st.st_mode, is_dir) if self.mode is not None else stat.S_IMODE(st.st_mode)

    def write_bytes(self, target: str, item: InlineFile) -> None:
        self._replaceable(target, directory=False)
        perm = self.mode(0o100644, False) if self.mode is not None else 0o644
        self.tree.put_bytes(target, item.data, perm, self.owner or (0, 0), item.mtime)

    def _replaceable(self, target: str, *, directory: bool) -> None:
        """Clear the way for an entry, with BuildKit's errors where it refuses."""
        kind = self.tree.kind(target)
        if kind is None:
            return
        if directory:
            if kind != "dir":
                raise InvalidArgument(f"cannot copy to non-directory: {target}")
            return
        if kind == "dir":
            raise InvalidArgument(f"cannot replace to directory {target} with file")
        self.tree.unlink(target)

    def entry(self, host: str, target: str) -> None:
        st = os.lstat(host)
        owner = self._owner_of(st)
        if stat.S_ISLNK(st.st_mode):
            self._replaceable(target, directory=False)
            self.tree.put(target, host, st, 0o777, owner)
        elif stat.S_ISDIR(st.st_mode):
            self._replaceable(target, directory=True)
            self.tree.put(target, host, st, self._perm(st, True), owner)
        elif stat.S_ISREG(st.st_mode):
            self._replaceable(target, directory=False)
            self.tree.put(target, host, st, self._perm(st, False), owner)
        elif stat.S_ISSOCK(st.st_mode):
            # BuildKit's context transfer sends a socket as an empty regular file.
            self._replaceable(target, directory=False)
            self.tree.put_bytes(target, b"", self._perm(st, False), owner, st.st_mtime)
        # Fifos and devices in a context are not copied, as with Docker.

    def directory(self, source: BuildContext, src: Source, target_root: str) -> None:
        """The contents of a source directory (not the directory itself) into `target_root`."""
        host_root = source.host(src.rel)
        prefix = "" if src.rel == "." else src.rel + "/"
        dirs: list[tuple[str, str]] = []
        for rel in source.walk(src)[1:]:
            inner = rel[len(prefix) :]
            target = self.tree.resolve(posixpath.join(target_root, inner), follow_final=False)
            host = os.path.join(host_root, inner)
            self.entry(host, target)
            if os.path.isdir(host) and not os.path.islink(host):
                dirs.append((host, target))
        # Directory times last: writing inside a directory changes its mtime.
        for host, target in reversed(dirs):
            self.tree.finish_dir(target, os.lstat(host))


def apply_copy(
    op: CopyOp,
    source: BuildContext,
    rootfs: str | Tree,
    owner: Owner = (0, 0),
    downloads: tuple[InlineFile, ...] = (),
) -> None:
    """Copy what `op` names from `source` into `rootfs` (a directory or a Tree);
    `downloads` are its URLs' files."""
    tree = RootfsTree(rootfs) if isinstance(rootfs, str) else rootfs
    matched = source.sources(op.sources, parents=op.parents)
    contents = (*op.contents, *downloads)
    # Directories (their contents) and extracted archives always land in the destination
    # as a directory; only several files need it to be written as one.
    files = [s for s in matched if not s.is_dir and not (op.add and is_archive(source.host(s.rel)))]
    count = len(files) + len(contents)
    into_dir = op.dest.endswith("/")
    if count > 1 and not into_dir:
        raise InvalidArgument(
            "When using COPY with more than one source file, "
            "the destination must be a directory and end with a /"
        )
    dest = op.dest.rstrip("/") or "/"
    copier = _Copier(tree, owner, parse_chmod(op.chmod))
    if not matched and not contents:
        # Wildcards that matched nothing (or only excluded paths): the destination is still
        # made, as BuildKit's copy creates its destination path.
        copier.make_dirs(dest)
    for item in contents:
        if op.unpack_urls and item in downloads and _is_archive_head(item.data[:512]):
            chown = owner if op.chown else None
            _extract_to(tree, copier.make_dirs(dest), item.data, chown)
            continue
        copier.write_bytes(copier.dest_file(dest, item.path, into_dir), item)
    for src in matched:
        host = source.host(src.rel)
        if op.parents and src.rel != ".":
            # --parents: `a/b/c.txt` lands at `<dest>/a/b/c.txt`.
            target = posixpath.join(dest, src.path)
            if src.is_dir:
                copier.directory(source, src, copier.make_dirs(target))
            else:
                copier.make_dirs(posixpath.dirname(target))
                copier.entry(host, tree.resolve(target, follow_final=False))
        elif src.is_dir:
            copier.directory(source, src, copier.make_dirs(dest))
        elif op.add and is_archive(host):
            chown = owner if op.chown else None
            _extract_to(tree, copier.make_dirs(dest), host, chown)
        else:
            copier.entry(host, copier.dest_file(dest, src.basename, into_dir))


def is_archive(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError:
        return False
    return _is_archive_head(head)


def _is_archive_head(head: bytes) -> bool:
    if sniff(head[:8]):
        return True
    return len(head) == 512 and head[257:262] == b"ustar"


def _open(archive: bytes | str) -> BinaryIO:
    return io.BytesIO(archive) if isinstance(archive, bytes) else open(archive, "rb")


def _extract_to(tree: Tree, target: str, archive: bytes | str, owner: Owner) -> None:
    """ADD of an archive (its bytes, or its host path): unpacked with every path kept inside
    the rootfs; with --chown (`owner`) what it unpacked is owned so, as BuildKit."""
    from bale.store.compression import decompressed
    from bale.store.layers.apply import apply_layer  # only ADD of a tar needs it
    from bale.store.layers.rootpath import resolve

    if not isinstance(tree, RootfsTree):
        raise InvalidArgument("an archive can only be extracted into a filesystem")
    host = tree.host(target)
    with _open(archive) as raw:
        apply_layer(raw, host)
    if owner is None:
        return
    with _open(archive) as raw:
        plain = cast(BinaryIO, decompressed(raw)[1])
        with tarfile.open(fileobj=plain, mode="r|") as tar:
            for info in tar:
                path = resolve(host, posixpath.normpath("/" + info.name).lstrip("/"))
                if path != host and os.path.lexists(path):
                    os.lchown(path, *owner)
