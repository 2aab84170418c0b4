"""COPY and ADD into a mounted rootfs, with Docker's source and destination rules."""

from __future__ import annotations

import os
import posixpath
import shutil
import stat
import tarfile

from bale.builder.context import BuildContext, Source
from bale.builder.users import set_owner
from bale.errors import InvalidArgument
from bale.frontends.graph import CopyOp, InlineFile
from bale.frontends.graph.modes import Mode, parse_chmod
from bale.store.compression import sniff
from bale.store.layers.rootpath import resolve

# Who owns what a copy writes: (uid, gid), or None to keep the source's owners (a COPY
# --from another stage or image without --chown, as BuildKit keeps them).
Owner = tuple[int, int] | None


class _Copier:
    """Writes into one rootfs; every path it makes stays inside it."""

    def __init__(self, rootfs: str, owner: Owner, mode: Mode | None) -> None:
        self.rootfs = rootfs
        self.owner = owner
        self.mode = mode

    def image_path(self, host: str) -> str:
        return "/" + os.path.relpath(host, self.rootfs).lstrip(".")

    def make_dirs(self, path: str) -> str:
        """The directory `path` (image path), made with its missing parents: 0755 and owned
        like the copied files, as BuildKit's copy makes them."""
        parts = [p for p in path.split("/") if p]
        current = ""
        host = self.rootfs
        for part in parts:
            current = f"{current}/{part}"
            host = resolve(self.rootfs, current, follow_final=True)
            if not os.path.lexists(host):
                os.mkdir(host, 0o755)
                set_owner(host, *(self.owner or (0, 0)))
            elif not os.path.isdir(host):
                raise InvalidArgument(f"cannot copy to non-directory: {current}")
        return host

    def dest_file(self, dest: str, basename: str, into_dir: bool) -> str:
        if into_dir:
            return os.path.join(self.make_dirs(dest), basename)
        existing = resolve(self.rootfs, dest, follow_final=True)
        if os.path.isdir(existing):
            return os.path.join(existing, basename)
        self.make_dirs(posixpath.dirname(dest))
        return resolve(self.rootfs, dest, follow_final=False)

    def _owner_of(self, st: os.stat_result) -> tuple[int, int]:
        return self.owner if self.owner is not None else (st.st_uid, st.st_gid)

    def _perm(self, st: os.stat_result, is_dir: bool) -> int:
        return self.mode(st.st_mode, is_dir) if self.mode is not None else stat.S_IMODE(st.st_mode)

    def write_bytes(self, target: str, data: bytes) -> None:
        self._replaceable(target, directory=False)
        with open(target, "wb") as f:
            f.write(data)
        os.chmod(target, self.mode(0o100644, False) if self.mode is not None else 0o644)
        set_owner(target, *(self.owner or (0, 0)))

    def _replaceable(self, target: str, *, directory: bool) -> None:
        """Clear the way for an entry, with BuildKit's errors where it refuses."""
        if not os.path.lexists(target):
            return
        is_dir = os.path.isdir(target) and not os.path.islink(target)
        if directory:
            if not is_dir:
                raise InvalidArgument(f"cannot copy to non-directory: {self.image_path(target)}")
            return
        if is_dir:
            raise InvalidArgument(
                f"cannot replace to directory {self.image_path(target)} with file"
            )
        os.unlink(target)

    def entry(self, host: str, target: str) -> None:
        st = os.lstat(host)
        owner = self._owner_of(st)
        if stat.S_ISLNK(st.st_mode):
            self._replaceable(target, directory=False)
            os.symlink(os.readlink(host), target)
            set_owner(target, *owner)
            return
        if stat.S_ISDIR(st.st_mode):
            self._replaceable(target, directory=True)
            if not os.path.lexists(target):
                os.mkdir(target)
            os.chmod(target, self._perm(st, True))
            set_owner(target, *owner)
            os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
            return
        if not stat.S_ISREG(st.st_mode):
            return  # sockets, fifos and devices in a context are not copied, as with Docker
        self._replaceable(target, directory=False)
        shutil.copyfile(host, target, follow_symlinks=False)
        os.chmod(target, self._perm(st, False))
        set_owner(target, *owner)
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))

    def directory(self, source: BuildContext, src: Source, target_root: str) -> None:
        """The contents of a source directory (not the directory itself) into `target_root`."""
        host_root = source.host(src.rel)
        prefix = "" if src.rel == "." else src.rel + "/"
        dirs: list[tuple[str, str]] = []
        for rel in source.walk(src)[1:]:
            inner = rel[len(prefix) :]
            target = resolve(
                self.rootfs, os.path.relpath(os.path.join(target_root, inner), self.rootfs)
            )
            host = os.path.join(host_root, inner)
            self.entry(host, target)
            if os.path.isdir(host) and not os.path.islink(host):
                dirs.append((host, target))
        # Directory times last: writing inside a directory changes its mtime.
        for host, target in reversed(dirs):
            st = os.lstat(host)
            os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))


def apply_copy(
    op: CopyOp,
    source: BuildContext,
    rootfs: str,
    owner: Owner = (0, 0),
    downloads: tuple[InlineFile, ...] = (),
) -> None:
    """Copy what `op` names from `source` into `rootfs`; `downloads` are its URLs' files."""
    matched: list[Source] = []
    for pattern in op.sources:
        matched.extend(source.match(pattern))
    contents = (*op.contents, *downloads)
    count = len(matched) + len(contents)
    into_dir = op.dest.endswith("/")
    if count > 1 and not into_dir:
        raise InvalidArgument(
            "When using COPY with more than one source file, "
            "the destination must be a directory and end with a /"
        )
    dest = op.dest.rstrip("/") or "/"
    copier = _Copier(rootfs, owner, parse_chmod(op.chmod))
    for item in contents:
        copier.write_bytes(copier.dest_file(dest, item.path, into_dir), item.data)
    for src in matched:
        host = source.host(src.rel)
        if op.parents and src.rel != ".":
            # --parents: `a/b/c.txt` lands at `<dest>/a/b/c.txt`.
            target = posixpath.join(dest, src.path)
            if src.is_dir:
                copier.directory(source, src, copier.make_dirs(target))
            else:
                copier.make_dirs(posixpath.dirname(target))
                copier.entry(host, resolve(rootfs, target))
        elif src.is_dir:
            copier.directory(source, src, copier.make_dirs(dest))
        elif op.add and _is_archive(host):
            _extract(host, copier.make_dirs(dest))
        else:
            copier.entry(host, copier.dest_file(dest, src.basename, into_dir))


def _is_archive(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError:
        return False
    if sniff(head[:8]):
        return True
    return len(head) == 512 and head[257:262] == b"ustar"


def _extract(archive: str, target_dir: str) -> None:
    """ADD of a local tar: unpacked with every path kept inside the rootfs."""
    from bale.store.layers.apply import apply_layer  # only ADD of a tar needs it

    with open(archive, "rb") as raw:
        try:
            apply_layer(raw, target_dir)
        except tarfile.TarError as exc:
            raise InvalidArgument(f"ADD could not extract {archive}: {exc}") from None
