"""Files that appear whole or not at all: written to a temporary file beside the target,
flushed and fsynced, then renamed over it (one durability rule for every file bale writes
outside the content store, which has its own commit protocol)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from bale.errors import InvalidArgument


@contextmanager
def atomic_file(dest: Path, *, mode: int | None = None) -> Iterator[BinaryIO]:
    """A file that appears at `dest` only when the block succeeds; `mode` sets its
    permissions before it is visible. The directory must exist."""
    if not dest.parent.is_dir():
        # As `docker save -o` and buildx's file outputs: the directory must exist.
        raise InvalidArgument(f"open {dest}: no such file or directory")
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            if mode is not None:
                os.fchmod(f.fileno(), mode)
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


@contextmanager
def atomic_output(dest: Path | None, stdout: BinaryIO | None = None) -> Iterator[BinaryIO]:
    """`atomic_file(dest)`, or `stdout` when dest is None (`-o -`)."""
    if dest is None:
        assert stdout is not None
        yield stdout
        stdout.flush()
        return
    with atomic_file(dest) as f:
        yield f


def write_atomic(dest: Path, data: bytes, *, mode: int | None = None) -> None:
    with atomic_file(dest, mode=mode) as f:
        f.write(data)
