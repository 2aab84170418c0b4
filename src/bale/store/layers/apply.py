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
import tarfile
from dataclasses import dataclass

import zstandard

from bale.errors import DigestMismatch, InvalidArgument, Unavailable
from bale.oci import Digest
from bale.store.compression import HashingReader, Readable, decompressed
from bale.store.layers.diff import OPAQUE_MARKER, WHITEOUT_PREFIX
from bale.store.layers.rootpath import clean, resolve
from bale.trees import remove_tree

_CHUNK = 1 << 20


@dataclass(frozen=True)
class ApplyResult:
    diff_id: Digest  # sha256 of the uncompressed tar as read
    size: int  # uncompressed bytes
    compression: str  # what was detected: "gzip", "zstd" or ""


def _remove(path: str) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        remove_tree(path)
    else:
        os.unlink(path)


class _Extractor:
    def __init__(self, root: str) -> None:
        self.root = root
        self.created: set[str] = set()
        self.dir_times: list[tuple[str, int]] = []
        self.may_mknod = os.geteuid() == 0

    def parent_of(self, name: str) -> tuple[str, str]:
        parent, _, base = name.rpartition("/")
        host_parent = resolve(self.root, parent, follow_final=True, create_dirs=True)
        if parent:
            try:
                st = os.lstat(host_parent)
            except FileNotFoundError:
                os.mkdir(host_parent, 0o755)
            else:
                if not stat.S_ISDIR(st.st_mode):
                    raise InvalidArgument(f"layer entry {name!r}: parent is not a directory")
        return host_parent, base

    def whiteout(self, name: str, base: str) -> None:
        parent_name = name.rpartition("/")[0]
        host_parent = resolve(self.root, parent_name, follow_final=True)
        if not os.path.isdir(host_parent) or os.path.islink(host_parent):
            return
        if base == OPAQUE_MARKER:
            for child in os.listdir(host_parent):
                rel = f"{parent_name}/{child}" if parent_name else child
                if rel not in self.created:
                    _remove(os.path.join(host_parent, child))
            return
        hidden = base[len(WHITEOUT_PREFIX) :]
        if hidden in ("", ".", "..") or "/" in hidden:
            raise InvalidArgument(f"invalid whiteout {name!r}")
        _remove(os.path.join(host_parent, hidden))

    def member(self, tar: tarfile.TarFile, info: tarfile.TarInfo) -> None:
        name = clean(info.name)
        if not name:
            return  # the root itself keeps the snapshot's metadata
        base = name.rpartition("/")[2]
        if base.startswith(WHITEOUT_PREFIX):
            self.whiteout(name, base)
            return
        host_parent, base = self.parent_of(name)
        target = os.path.join(host_parent, base)
        try:
            existing: os.stat_result | None = os.lstat(target)
        except FileNotFoundError:
            existing = None
        if existing is not None and not (info.isdir() and stat.S_ISDIR(existing.st_mode)):
            _remove(target)
        if info.isdir():
            if existing is None or not stat.S_ISDIR(existing.st_mode):
                os.mkdir(target, 0o700)
        elif info.isreg():
            self.write_file(tar, info, target)
        elif info.issym():
            os.symlink(info.linkname, target)
        elif info.islnk():
            source = resolve(self.root, clean(info.linkname))
            if not os.path.lexists(source):
                raise InvalidArgument(
                    f"layer entry {info.name!r} links to {info.linkname!r}, which is not there"
                )
            if os.path.isdir(source) and not os.path.islink(source):
                raise InvalidArgument(f"layer entry {info.name!r} is a hardlink to a directory")
            os.link(source, target, follow_symlinks=False)
            self.created.add(name)
            return  # a hardlink shares its source's metadata
        elif info.ischr() or info.isblk():
            if not self.may_mknod:
                return
            kind = stat.S_IFCHR if info.ischr() else stat.S_IFBLK
            os.mknod(target, kind | 0o600, os.makedev(info.devmajor, info.devminor))
        elif info.isfifo():
            os.mkfifo(target, 0o600)
        else:
            return  # other tar types carry nothing a rootfs needs
        self.created.add(name)
        self.metadata(info, target, name)

    def write_file(self, tar: tarfile.TarFile, info: tarfile.TarInfo, target: str) -> None:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            source = tar.extractfile(info)
            if source is not None:
                while True:
                    chunk = source.read(_CHUNK)
                    if not chunk:
                        break
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(fd, view) :]
        finally:
            os.close(fd)

    def metadata(self, info: tarfile.TarInfo, target: str, name: str) -> None:
        is_link = info.issym()
        try:
            os.lchown(target, info.uid, info.gid)
        except PermissionError:
            if self.may_mknod:
                raise
        prefix = "SCHILY.xattr."
        wanted = {key[len(prefix) :] for key in info.pax_headers if key.startswith(prefix)}
        if info.isdir():
            # A directory that was kept loses the extended attributes the layer no longer has.
            try:
                present = os.listxattr(target, follow_symlinks=False)
            except OSError:
                present = []
            for attr in present:
                if attr not in wanted and not attr.startswith(("trusted.overlay.", "security.")):
                    try:
                        os.removexattr(target, attr, follow_symlinks=False)
                    except OSError:
                        continue
        for key, value in info.pax_headers.items():
            if key.startswith("SCHILY.xattr."):
                attr = key[len("SCHILY.xattr.") :]
                try:
                    os.setxattr(
                        target,
                        attr,
                        value.encode("utf-8", "surrogateescape"),
                        follow_symlinks=False,
                    )
                except OSError:
                    continue  # an xattr namespace this filesystem or user cannot hold
        if not is_link:
            # After chown, which clears set-uid bits.
            os.chmod(target, info.mode & 0o7777)
        if info.isdir():
            self.dir_times.append((target, int(info.mtime)))
        else:
            mtime = int(info.mtime)
            os.utime(target, (mtime, mtime), follow_symlinks=False)

    def finish(self) -> None:
        # Directory times last, deepest first: creating children changes them.
        for path, mtime in sorted(self.dir_times, key=lambda t: t[0].count("/"), reverse=True):
            try:
                os.utime(path, (mtime, mtime), follow_symlinks=False)
            except FileNotFoundError:
                continue


def apply_layer(
    stream: Readable, target: str | os.PathLike[str], *, expect_diff_id: Digest | None = None
) -> ApplyResult:
    """Extract the layer read from `stream` onto the directory `target`.

    With `expect_diff_id`, a layer whose uncompressed tar hashes differently raises
    DigestMismatch (after extraction: the caller discards the snapshot).
    """
    root = os.path.abspath(os.fspath(target))
    if not os.path.isdir(root):
        raise InvalidArgument(f"cannot apply a layer to {root}: not a directory")
    kind, plain = decompressed(stream)
    hashing = HashingReader(plain)
    extractor = _Extractor(root)
    try:
        with tarfile.open(fileobj=hashing, mode="r|", errorlevel=2) as tar:
            for info in tar:
                extractor.member(tar, info)
    except (tarfile.TarError, zstandard.ZstdError, EOFError) as exc:
        raise InvalidArgument(f"invalid layer tar: {exc}") from exc
    except OSError as exc:
        if exc.errno is None:  # a corrupt gzip stream
            raise InvalidArgument(f"invalid layer: {exc}") from exc
        where = f" ({exc.filename})" if exc.filename else ""
        raise Unavailable(f"cannot extract layer into {root}{where}: {exc.strerror}") from exc
    hashing.read_rest()
    extractor.finish()
    diff_id = Digest("sha256", hashing.hasher.hexdigest())
    if expect_diff_id is not None and diff_id != expect_diff_id:
        raise DigestMismatch(f"layer diff id is {diff_id}, expected {expect_diff_id}")
    return ApplyResult(diff_id=diff_id, size=hashing.size, compression=kind)
