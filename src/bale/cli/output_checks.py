"""Where a build will write, checked before any step runs: each output's destination, the
--iidfile and --metadata-file paths and the store root must be writable, so an unwritable
path costs no build and is named in the error."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from bale.errors import InvalidArgument
from bale.exporters.outputs import OutputSpec

_FILE_OUTPUTS = ("oci", "docker", "tar")


def _probe(directory: Path, what: str, shown: str) -> None:
    """Create and remove a file in `directory`: what permission bits cannot tell for root
    (read-only mounts, /proc)."""
    try:
        fd, name = tempfile.mkstemp(prefix=".bale-probe-", dir=directory)
    except OSError as exc:
        raise InvalidArgument(
            f"cannot write {what} {shown}: {exc.strerror or exc}",
            hint=f"{directory} is not writable",
        ) from None
    os.close(fd)
    os.unlink(name)


def _nearest_existing(path: Path) -> Path:
    current = path
    while not current.exists() and current != current.parent:
        current = current.parent
    return current


def check_directory(path: Path, what: str) -> None:
    """`path` is a directory, or one can be made there."""
    shown = str(path)
    if path.exists() and not path.is_dir():
        raise InvalidArgument(f"cannot write {what} {shown}: it exists and is not a directory")
    base = _nearest_existing(path.absolute())
    if not base.is_dir():
        raise InvalidArgument(
            f"cannot write {what} {shown}: {os.strerror(errno.ENOTDIR)}",
            hint=f"{base} is not a directory",
        )
    _probe(base, what, shown)


def check_file(path: Path, what: str) -> None:
    """`path` can be written: its directory exists and takes new files."""
    shown = str(path)
    if path.is_dir():
        raise InvalidArgument(f"cannot write {what} {shown}: it is a directory")
    parent = path.absolute().parent
    if not parent.is_dir():
        raise InvalidArgument(
            f"cannot write {what} {shown}: {os.strerror(errno.ENOENT)}",
            hint=f"directory {parent} does not exist",
        )
    _probe(parent, what, shown)


def check_destinations(
    specs: list[OutputSpec], iidfile: str | None, metadata_file: str | None, root: Path
) -> None:
    check_directory(root, "the store root (--root)")
    for spec in specs:
        dest = spec.dest
        if not dest or dest == "-":
            continue
        what = f"output type={spec.type} dest"
        if spec.type == "local" or (spec.type == "oci" and not spec.options.tar):
            check_directory(Path(dest), what)
        elif spec.type in _FILE_OUTPUTS:
            check_file(Path(dest), what)
    if iidfile:
        check_file(Path(iidfile), "--iidfile")
    if metadata_file:
        check_file(Path(metadata_file), "--metadata-file")
