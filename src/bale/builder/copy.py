"""COPY and ADD into a mounted rootfs, with Docker's source and destination rules."""

from __future__ import annotations

import os
import posixpath
import shutil
import stat
import tarfile
from dataclasses import dataclass

from bale.builder.context import BuildContext, Source
from bale.builder.layers.rootpath import resolve
from bale.errors import InvalidArgument
from bale.store.compression import sniff


@dataclass(frozen=True)
class CopyPlan:
    """What one COPY/ADD does. `chown` is --chown as written ("" keeps files root-owned)."""

    sources: tuple[str, ...]
    dest: str  # absolute in the image, trailing "/" kept
    chown: str = ""
    chmod: int | None = None
    add: bool = False  # ADD: local tar archives are extracted
    contents: tuple[tuple[str, bytes], ...] = ()  # heredoc sources: (name, data)
    parents: bool = False  # --parents: keep each source's path below the destination
    excludes: tuple[str, ...] = ()  # --exclude patterns, .dockerignore syntax


def dest_path(workdir: str, dest: str) -> str:
    """Docker joins a relative destination to WORKDIR; a trailing slash means a directory."""
    slash = dest.endswith("/") or dest in (".", "")
    full = dest if dest.startswith("/") else posixpath.join(workdir or "/", dest)
    full = posixpath.normpath(full)
    return full.rstrip("/") + "/" if slash else full


def apply_copy(
    plan: CopyPlan, source: BuildContext, rootfs: str, owner: tuple[int, int] = (0, 0)
) -> None:
    matched: list[Source] = []
    for pattern in plan.sources:
        matched.extend(source.match(pattern))
    wildcard = any(set("*?[") & set(p) for p in plan.sources)
    count = len(matched) + len(plan.contents)
    into_dir = plan.dest.endswith("/")
    if (count > 1 or wildcard) and not into_dir:
        raise InvalidArgument(
            "When using COPY with more than one source file, "
            "the destination must be a directory and end with a /"
        )
    dest = plan.dest.rstrip("/") or "/"
    for name, data in plan.contents:
        target = _dest_file(rootfs, dest, name, into_dir)
        _write_bytes(target, data, owner, plan.chmod)
    for src in matched:
        host = source.host(src.rel)
        if plan.parents and src.rel != ".":
            _copy_with_parents(source, src, host, dest, rootfs, owner, plan.chmod)
        elif src.is_dir:
            target_dir = resolve(rootfs, dest, follow_final=True, create_dirs=True)
            _mkdirs(target_dir, owner, plan.chmod)
            _copy_dir(source, src, host, target_dir, rootfs, owner, plan.chmod)
        elif plan.add and _is_archive(host):
            target_dir = resolve(rootfs, dest, follow_final=True, create_dirs=True)
            _mkdirs(target_dir, owner, None)
            _extract(host, target_dir)
        else:
            target = _dest_file(rootfs, dest, posixpath.basename(src.rel), into_dir)
            _copy_entry(host, target, owner, plan.chmod)


def _copy_with_parents(
    source: BuildContext,
    src: Source,
    host: str,
    dest: str,
    rootfs: str,
    owner: tuple[int, int],
    chmod: int | None,
) -> None:
    """--parents: `a/b/c.txt` lands at `<dest>/a/b/c.txt` (parents made as needed)."""
    target = resolve(rootfs, posixpath.join(dest, src.rel), follow_final=False, create_dirs=True)
    if src.is_dir:
        _mkdirs(target, owner, chmod)
        _copy_dir(source, src, host, target, rootfs, owner, chmod)
    else:
        _copy_entry(host, target, owner, chmod)


def _dest_file(rootfs: str, dest: str, basename: str, into_dir: bool) -> str:
    if into_dir:
        parent = resolve(rootfs, dest, follow_final=True, create_dirs=True)
        _mkdirs(parent, (0, 0), None)
        return os.path.join(parent, basename)
    existing = resolve(rootfs, dest, follow_final=True, create_dirs=True)
    if os.path.isdir(existing):
        return os.path.join(existing, basename)
    os.makedirs(os.path.dirname(existing), mode=0o755, exist_ok=True)
    return existing


def _mkdirs(path: str, owner: tuple[int, int], chmod: int | None) -> None:
    if not os.path.isdir(path):
        os.makedirs(path, mode=0o755, exist_ok=True)
        os.lchown(path, *owner)
        if chmod is not None:
            os.chmod(path, chmod)


def _remove(path: str) -> None:
    if os.path.islink(path) or (os.path.lexists(path) and not os.path.isdir(path)):
        os.unlink(path)


def _write_bytes(target: str, data: bytes, owner: tuple[int, int], chmod: int | None) -> None:
    _remove(target)
    with open(target, "wb") as f:
        f.write(data)
    os.chmod(target, chmod if chmod is not None else 0o644)
    os.lchown(target, *owner)


def _copy_entry(host: str, target: str, owner: tuple[int, int], chmod: int | None) -> None:
    st = os.lstat(host)
    if stat.S_ISLNK(st.st_mode):
        _remove(target)
        os.symlink(os.readlink(host), target)
        os.lchown(target, *owner)
        return
    if stat.S_ISDIR(st.st_mode):
        if not os.path.isdir(target) or os.path.islink(target):
            _remove(target)
            os.mkdir(target)
        os.chmod(target, chmod if chmod is not None else stat.S_IMODE(st.st_mode))
        os.lchown(target, *owner)
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
        return
    if not stat.S_ISREG(st.st_mode):
        return  # sockets, fifos and devices in a context are not copied, as with Docker
    _remove(target)
    shutil.copyfile(host, target, follow_symlinks=False)
    os.chmod(target, chmod if chmod is not None else stat.S_IMODE(st.st_mode))
    os.lchown(target, *owner)
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))


def _copy_dir(
    source: BuildContext,
    src: Source,
    host_root: str,
    target_root: str,
    rootfs: str,
    owner: tuple[int, int],
    chmod: int | None,
) -> None:
    """The contents of a source directory (not the directory itself) into `target_root`."""
    prefix = "" if src.rel == "." else src.rel + "/"
    dirs: list[tuple[str, str]] = []
    for rel in source.walk(src)[1:]:
        inner = rel[len(prefix) :]
        target = resolve(rootfs, os.path.relpath(os.path.join(target_root, inner), rootfs))
        host = os.path.join(host_root, inner)
        _copy_entry(host, target, owner, chmod)
        if os.path.isdir(host) and not os.path.islink(host):
            dirs.append((host, target))
    # Directory times last: writing inside a directory changes its mtime.
    for host, target in reversed(dirs):
        st = os.lstat(host)
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))


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
    from bale.builder.layers.apply import apply_layer  # only ADD of a tar needs it

    with open(archive, "rb") as raw:
        try:
            apply_layer(raw, target_dir)
        except tarfile.TarError as exc:
            raise InvalidArgument(f"ADD could not extract {archive}: {exc}") from None
