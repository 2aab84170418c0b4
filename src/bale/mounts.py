"""Mount descriptions (as containerd passes them around) and the mount(2) calls behind them."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from bale import owner
from bale.errors import Unavailable

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MNT_DETACH = 0x2

_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
_libc.mount.argtypes = [
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_ulong,
    ctypes.c_char_p,
]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


@dataclass(frozen=True)
class Mount:
    """One mount: `type` is "bind" or a filesystem ("overlay", "tmpfs"); options as for mount(8)."""

    type: str
    source: str
    options: tuple[str, ...] = ()

    @property
    def readonly(self) -> bool:
        return "ro" in self.options


def mount(source: str, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    """mount(2); raises Unavailable with the errno text on failure."""
    rc = _libc.mount(
        source.encode(),
        target.encode(),
        fstype.encode() if fstype else None,
        flags,
        data.encode() if data else None,
    )
    if rc != 0:
        err = ctypes.get_errno()
        raise Unavailable(
            f"mount {fstype or 'bind'} {source} on {target}: {os.strerror(err)}",
            hint="mounting needs root (or CAP_SYS_ADMIN)",
        )


def unmount(target: str, *, detach: bool = False) -> None:
    rc = _libc.umount2(target.encode(), MNT_DETACH if detach else 0)
    if rc != 0:
        err = ctypes.get_errno()
        if err == 16 and not detach:  # EBUSY: a process still has it; detach instead
            unmount(target, detach=True)
            return
        raise Unavailable(f"unmount {target}: {os.strerror(err)}")


def mount_all(mounts: Sequence[Mount], target: str) -> None:
    """Mount each of `mounts` on `target`, in order."""
    done = 0
    try:
        for m in mounts:
            _mount_one(m, target)
            done += 1
    except BaseException:
        for _ in range(done):
            unmount(target, detach=True)
        raise


def unmount_all(target: str) -> None:
    """Unmount everything stacked on `target` (nothing is an error only if nothing was there)."""
    while is_mountpoint(target):
        unmount(target)


def is_mountpoint(target: str) -> bool:
    path = os.path.realpath(target)
    return any(m == path for m in mounted_paths())


def mounted_paths() -> list[str]:
    out: list[str] = []
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            fields = line.split(" ")
            if len(fields) > 4:
                out.append(_unescape(fields[4]))
    return out


def _unescape(path: str) -> str:
    return (
        path.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
    )


def _mount_one(m: Mount, target: str) -> None:
    flags = 0
    data: list[str] = []
    for opt in m.options:
        if opt == "ro":
            flags |= MS_RDONLY
        elif opt == "rw":
            continue
        elif opt == "nosuid":
            flags |= MS_NOSUID
        elif opt == "nodev":
            flags |= MS_NODEV
        elif opt == "noexec":
            flags |= MS_NOEXEC
        elif opt in ("bind", "rbind"):
            continue
        else:
            data.append(opt)
    if m.type == "bind":
        recursive = MS_REC if "rbind" in m.options else 0
        mount(m.source, target, None, MS_BIND | recursive)
        if flags & (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC):
            try:
                mount("", target, None, MS_BIND | MS_REMOUNT | flags)
            except BaseException:
                unmount(target, detach=True)
                raise
        return
    mount(m.source, target, m.type, flags, ",".join(data))


def reclaim_mount_points(parent_dir: str | os.PathLike[str]) -> list[str]:
    """Unmount and remove the mount points under `parent_dir` that processes now gone left
    (a build killed while a step's filesystem was mounted); what was reclaimed."""
    try:
        names = os.listdir(parent_dir)
    except FileNotFoundError:
        return []
    out = []
    for name in names:
        tag = name.split("-")[1] if name.startswith("m-") and name.count("-") >= 2 else ""
        if not tag or owner.tag_alive(tag):
            continue
        path = os.path.join(parent_dir, name)
        for mountpoint in sorted(
            (m for m in mounted_paths() if m == path or m.startswith(path + "/")), reverse=True
        ):
            unmount(mountpoint, detach=True)
        try:
            os.rmdir(path)
        except OSError:
            continue
        out.append(path)
    return out


def plain_directory(mounts: Sequence[Mount]) -> str:
    """The directory itself when `mounts` is one read-write bind: no mount is needed then."""
    if len(mounts) == 1 and mounts[0].type == "bind" and not mounts[0].readonly:
        return mounts[0].source
    return ""


def _unmountable_view(mounts: Sequence[Mount]) -> str:
    if os.geteuid() != 0 and len(mounts) == 1 and mounts[0].type == "bind":
        return mounts[0].source
    return ""


@contextlib.contextmanager
def mounted(mounts: Sequence[Mount], parent_dir: str | os.PathLike[str]) -> Iterator[str]:
    """Mount `mounts` on a fresh directory under `parent_dir`; unmount and remove it after.
    A single read-write bind is its own directory (copy snapshots need no mount); so is a
    single read-only bind for a caller that cannot mount (not root), who only reads it."""
    direct = plain_directory(mounts) or _unmountable_view(mounts)
    if direct:
        yield direct
        return
    os.makedirs(parent_dir, exist_ok=True)
    # Named by the process, so the mount points a killed one left can be reclaimed.
    target = tempfile.mkdtemp(prefix=f"m-{owner.tag()}-", dir=parent_dir)
    try:
        mount_all(mounts, target)
        try:
            yield target
        finally:
            unmount_all(target)
    finally:
        os.rmdir(target)
