"""Extracting a context tar confined to its directory, on every Python 3.11.

`TarFile.extractall(filter=...)` arrived in 3.11.4; Debian 12's python3 is 3.11.2. Where the
filters exist they are used; before, the same rules are checked member by member: no
`..` names (a leading `/` is dropped), no link leading outside, no devices or fifos, and with `data`
no set-id bits or group/other write."""

from __future__ import annotations

import posixpath
import tarfile
from pathlib import Path
from typing import Literal

Filter = Literal["data", "tar"]


def extract_confined(tar: tarfile.TarFile, dest: Path, how: Filter = "data") -> None:
    """Extract every member of `tar` (read as a stream is fine) below `dest`."""
    if hasattr(tarfile, "data_filter"):
        tar.extractall(dest, filter=how)
        return
    for member in tar:
        member.name = member.name.lstrip("/")  # as the filters do: `/etc/x` lands at etc/x
        _check(member)
        if how == "data":
            member.mode &= 0o755  # no set-id bits, no group or other write
        tar.extract(member, dest, set_attrs=True, numeric_owner=True)


def _inside(path: str) -> bool:
    normal = posixpath.normpath(path)
    return not (normal.startswith("/") or normal == ".." or normal.startswith("../"))


def _check(member: tarfile.TarInfo) -> None:
    name = member.name
    if not _inside(name):
        raise tarfile.TarError(f"{name!r} would be extracted outside the context")
    if member.ischr() or member.isblk() or member.isfifo():
        raise tarfile.TarError(f"{name!r} is a device or fifo")
    if member.issym():
        target = posixpath.join(posixpath.dirname(name), member.linkname)
        if member.linkname.startswith("/") or not _inside(target):
            raise tarfile.TarError(f"{name!r} links to {member.linkname!r}, outside the context")
    if member.islnk() and not _inside(member.linkname):
        raise tarfile.TarError(f"{name!r} links to {member.linkname!r}, outside the context")
