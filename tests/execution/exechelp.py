"""Helpers for the execution tests: mounts, processes, tree snapshots, crafted tars."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from bale.mounts import Mount

MakeRootfs = Callable[[str], Path]


def require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (mounts, namespaces or binfmt_misc)")


def copy_into(source: Path, dest: Path) -> None:
    """Copy the contents of `source` into the existing directory `dest`, keeping everything."""
    subprocess.run(["cp", "-a", f"{source}/.", str(dest)], check=True)


def bind(directory: Path) -> tuple[Mount, ...]:
    return (Mount("bind", str(directory), ("rbind", "rw")),)


def mounts_under(path: Path) -> list[str]:
    prefix = str(path)
    with open("/proc/self/mountinfo") as f:
        return [line.split(" ")[4] for line in f if line.split(" ")[4].startswith(prefix)]


def processes_with(marker: str) -> list[int]:
    found: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if marker.encode() in cmdline:
            found.append(int(entry))
    return found


def tree_state(root: Path) -> dict[str, object]:
    """Everything a layer must reproduce, per relative path, plus hardlink groups.

    Directory times are left out: applying children changes them, and only changed
    directories are in a layer.
    """
    entries: dict[str, object] = {}
    inodes: dict[int, list[str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            st = os.lstat(path)
            xattrs = {}
            for attr in sorted(os.listxattr(path, follow_symlinks=False)):
                if not attr.startswith("trusted.overlay."):
                    xattrs[attr] = os.getxattr(path, attr, follow_symlinks=False)
            info: tuple[object, ...] = (
                stat.S_IFMT(st.st_mode),
                stat.S_IMODE(st.st_mode),
                st.st_uid,
                st.st_gid,
                tuple(xattrs.items()),
            )
            if stat.S_ISREG(st.st_mode):
                info += (Path(path).read_bytes(), int(st.st_mtime))
                inodes.setdefault(st.st_ino, []).append(rel)
            elif stat.S_ISLNK(st.st_mode):
                info += (os.readlink(path), int(st.st_mtime))
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                info += (st.st_rdev,)
            entries[rel] = info
    groups = sorted(tuple(sorted(paths)) for paths in inodes.values() if len(paths) > 1)
    return {"entries": entries, "hardlinks": groups}


def make_tar(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    buf.seek(0)
    return buf


def member(
    name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "", mode: int = 0o644
) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.mode = mode
    return info
