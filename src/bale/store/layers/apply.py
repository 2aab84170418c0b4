"""Layer apply: extract an OCI layer tar (gzip, zstd or plain) onto a directory.

Whiteouts (`.wh.<name>`) delete, an opaque marker (`.wh..wh..opq`) hides what lower layers
put in its directory. Owners, modes, times, xattrs, hardlinks and symlinks are kept; device
nodes only when we may create them. Every path is resolved inside the target (see
rootpath): `../x`, `/x`, a symlink or a hardlink leading out, and writes through symlinks
all land inside it, and a hardlink to something absent is refused.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass

import zstandard

from bale.errors import DigestMismatch, InvalidArgument, Unavailable
from bale.oci import Digest
from bale.store.compression import Readable, decompressed
from bale.store.layers.diff import OPAQUE_MARKER, WHITEOUT_PREFIX
from bale.store.layers.rootpath import clean, resolve
from bale.store.layers.tarstream import (
    BLOCKDEV,
    CHAR,
    DIR,
    FIFO,
    LINK,
    REG,
    SYMLINK,
    Entry,
    TarStream,
)
from bale.trees import remove_tree


@dataclass(frozen=True)
class ApplyResult:
    diff_id: Digest  # sha256 of the uncompressed tar as read
    size: int  # uncompressed bytes
    compression: str  # what was detected: "gzip", "zstd" or ""


class _Extractor:
    def __init__(self, root: str, devices: bool = True) -> None:
        self.root = root
        self.created: set[str] = set()
        # Directories already resolved inside the root (real directories, no symlink left
        # in their host path): their children need no walk. Dropped whenever a directory or
        # symlink is removed, since that may change what a path resolves to.
        self.dirs: dict[str, str] = {"": root}
        self.dir_times: list[tuple[str, int]] = []
        self.may_mknod = os.geteuid() == 0
        self.devices = devices and self.may_mknod

    def parent_of(self, name: str) -> tuple[str, str]:
        parent, _, base = name.rpartition("/")
        host_parent = self.dirs.get(parent)
        if host_parent is None:
            host_parent = resolve(self.root, parent, follow_final=True, create_dirs=True)
            try:
                st = os.lstat(host_parent)
            except FileNotFoundError:
                os.mkdir(host_parent, 0o755)
            else:
                if not stat.S_ISDIR(st.st_mode):
                    raise InvalidArgument(f"layer entry {name!r}: parent is not a directory")
            self.dirs[parent] = host_parent
        return host_parent, base

    def remove(self, path: str) -> None:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            remove_tree(path)
        else:
            os.unlink(path)
        if stat.S_ISDIR(st.st_mode) or stat.S_ISLNK(st.st_mode):
            self.dirs = {"": self.root}

    def whiteout(self, name: str, base: str) -> None:
        parent_name = name.rpartition("/")[0]
        host_parent = resolve(self.root, parent_name, follow_final=True)
        if not os.path.isdir(host_parent) or os.path.islink(host_parent):
            return
        if base == OPAQUE_MARKER:
            for child in os.listdir(host_parent):
                rel = f"{parent_name}/{child}" if parent_name else child
                if rel not in self.created:
                    self.remove(os.path.join(host_parent, child))
            return
        hidden = base[len(WHITEOUT_PREFIX) :]
        if hidden in ("", ".", "..") or "/" in hidden:
            raise InvalidArgument(f"invalid whiteout {name!r}")
        self.remove(os.path.join(host_parent, hidden))

    def member(self, tar: TarStream, entry: Entry) -> None:
        name = clean(entry.name)
        if not name:
            return  # the root itself keeps the snapshot's metadata
        base = name.rpartition("/")[2]
        if base.startswith(WHITEOUT_PREFIX):
            self.whiteout(name, base)
            return
        host_parent, base = self.parent_of(name)
        target = f"{host_parent}/{base}"
        kind = entry.kind
        if kind == REG:
            self.write_file(tar, entry, target)
        elif kind == DIR:
            self.directory(entry, target, name)
        elif kind == SYMLINK:
            self.create(target, lambda: os.symlink(entry.linkname, target))
        elif kind == LINK:
            self.hardlink(entry, target, name)
            return  # a hardlink shares its source's metadata
        elif kind in (CHAR, BLOCKDEV):
            if not self.devices:
                self.remove(target)
                return
            mode = (stat.S_IFCHR if kind == CHAR else stat.S_IFBLK) | 0o600
            device = os.makedev(entry.devmajor, entry.devminor)
            self.create(target, lambda: os.mknod(target, mode, device))
        elif kind == FIFO:
            self.create(target, lambda: os.mkfifo(target, 0o600))
        else:
            return  # other tar types carry nothing a rootfs needs
        self.created.add(name)
        if kind != REG:
            self.metadata(entry, target, target)

    def create(self, target: str, make: Callable[[], None]) -> None:
        """Make `target`, replacing whatever is there (tried first: usually nothing is)."""
        try:
            make()
        except FileExistsError:
            self.remove(target)
            make()

    def directory(self, entry: Entry, target: str, name: str) -> None:
        try:
            os.mkdir(target, 0o700)
        except FileExistsError:
            if not stat.S_ISDIR(os.lstat(target).st_mode):
                self.remove(target)
                os.mkdir(target, 0o700)
            else:
                self.drop_xattrs(target, entry)
        self.dirs[name] = target

    def drop_xattrs(self, target: str, entry: Entry) -> None:
        """A directory that was kept loses the extended attributes the layer no longer has."""
        wanted = {attr for attr, _ in entry.xattrs}
        try:
            present = os.listxattr(target, follow_symlinks=False)
        except OSError:
            return
        for attr in present:
            if attr not in wanted and not attr.startswith(("trusted.overlay.", "security.")):
                try:
                    os.removexattr(target, attr, follow_symlinks=False)
                except OSError:
                    continue

    def hardlink(self, entry: Entry, target: str, name: str) -> None:
        self.remove(target)  # first: a link to what it replaces is to something absent
        source = resolve(self.root, clean(entry.linkname))
        try:
            st = os.lstat(source)
        except FileNotFoundError:
            raise InvalidArgument(
                f"layer entry {entry.name!r} links to {entry.linkname!r}, which is not there"
            ) from None
        if stat.S_ISDIR(st.st_mode):
            raise InvalidArgument(f"layer entry {entry.name!r} is a hardlink to a directory")
        os.link(source, target, follow_symlinks=False)
        self.created.add(name)

    def write_file(self, tar: TarStream, entry: Entry, target: str) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(target, flags, 0o600)
        except FileExistsError:
            self.remove(target)
            fd = os.open(target, flags, 0o600)
        try:
            tar.write_payload(fd)
            self.metadata(entry, fd, target)
        finally:
            os.close(fd)

    def metadata(self, entry: Entry, where: int | str, target: str) -> None:
        """Owner, xattrs, mode and time of `target`, through its descriptor when given one."""
        by_path = isinstance(where, str)
        try:
            if isinstance(where, str):
                os.lchown(where, entry.uid, entry.gid)
            else:
                os.fchown(where, entry.uid, entry.gid)
        except PermissionError:
            if self.may_mknod:
                raise
        for attr, value in entry.xattrs:
            try:
                os.setxattr(where, attr, value, follow_symlinks=not by_path)
            except OSError:
                continue  # an xattr namespace this filesystem or user cannot hold
        kind = entry.kind
        if kind != SYMLINK:
            # After chown, which clears set-uid bits.
            os.chmod(where, entry.mode & 0o7777)
        if kind == DIR:
            self.dir_times.append((target, entry.mtime))
        else:
            os.utime(where, (entry.mtime, entry.mtime), follow_symlinks=not by_path)

    def finish(self) -> None:
        # Directory times last, deepest first: creating children changes them.
        for path, mtime in sorted(self.dir_times, key=lambda t: t[0].count("/"), reverse=True):
            try:
                os.utime(path, (mtime, mtime), follow_symlinks=False)
            except FileNotFoundError:
                continue


def apply_layer(
    stream: Readable,
    target: str | os.PathLike[str],
    *,
    expect_diff_id: Digest | None = None,
    devices: bool = True,
) -> ApplyResult:
    """Extract the layer read from `stream` onto the directory `target`.

    Device nodes are made only as root, and never with `devices=False` (what a user's output
    directory gets: a node there would open the host's device to whoever can reach it).

    With `expect_diff_id`, a layer whose uncompressed tar hashes differently raises
    DigestMismatch (after extraction: the caller discards the snapshot).
    """
    root = os.path.abspath(os.fspath(target))
    if not os.path.isdir(root):
        raise InvalidArgument(f"cannot apply a layer to {root}: not a directory")
    kind, plain = decompressed(stream)
    tar = TarStream(plain)
    extractor = _Extractor(root, devices)
    try:
        for entry in tar.entries():
            extractor.member(tar, entry)
        tar.read_rest()
    except (zstandard.ZstdError, EOFError) as exc:
        raise InvalidArgument(f"invalid layer tar: {exc}") from exc
    except OSError as exc:
        if exc.errno is None:  # a corrupt gzip stream
            raise InvalidArgument(f"invalid layer: {exc}") from exc
        where = f" ({exc.filename})" if exc.filename else ""
        raise Unavailable(f"cannot extract layer into {root}{where}: {exc.strerror}") from exc
    finally:
        tar.close()
    extractor.finish()
    diff_id = Digest("sha256", tar.hasher.hexdigest())
    if expect_diff_id is not None and diff_id != expect_diff_id:
        raise DigestMismatch(f"layer diff id is {diff_id}, expected {expect_diff_id}")
    return ApplyResult(diff_id=diff_id, size=tar.size, compression=kind)
