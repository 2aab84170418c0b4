"""Walking and removing directory trees without recursion.

`shutil.rmtree` and `os.walk` recurse once per level (Python 3.11), so a tree a hostile
layer, context or WORKDIR made a few thousand levels deep raises RecursionError, even with
ignore_errors. These walk with an explicit stack; depth costs memory, never the
interpreter's stack.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

WalkEntry = tuple[str, list[str], list[str]]


def walk(
    top: str | os.PathLike[str],
    topdown: bool = True,
    onerror: Callable[[OSError], object] | None = None,
) -> Iterator[WalkEntry]:
    """`os.walk` (links to directories listed, never followed) without recursion: yields
    (dirpath, dirnames, filenames); top-down, editing dirnames prunes the walk."""
    # Frames: a directory to list, or (bottom-up) an entry to yield once its subtree is done.
    stack: list[str | WalkEntry] = [os.fspath(top)]
    while stack:
        item = stack.pop()
        if isinstance(item, tuple):
            yield item
            continue
        dirs: list[str] = []
        files: list[str] = []
        links: set[str] = set()  # links to directories: listed as directories, not entered
        try:
            with os.scandir(item) as it:
                for entry in it:
                    try:
                        is_dir = entry.is_dir()
                    except OSError:
                        is_dir = False
                    (dirs if is_dir else files).append(entry.name)
                    if is_dir and entry.is_symlink():
                        links.add(entry.name)
        except OSError as exc:
            if onerror is not None:
                onerror(exc)
            continue
        if topdown:
            yield item, dirs, files
        else:
            stack.append((item, dirs, files))
        stack.extend(os.path.join(item, d) for d in reversed(dirs) if d not in links)


@contextlib.contextmanager
def temporary_directory(prefix: str, dir: str | Path | None = None) -> Iterator[str]:
    """`tempfile.TemporaryDirectory` whose clean-up survives any depth (it uses remove_tree)."""
    path = tempfile.mkdtemp(prefix=prefix, dir=dir)
    try:
        yield path
    finally:
        remove_tree(path, ignore_errors=True)


def remove_tree(path: str | Path, *, ignore_errors: bool = False) -> None:
    """Remove `path` and all below it; a missing path is nothing to do. Links are removed,
    never followed. Read-only directories are made writable first (a step may leave them).
    With `ignore_errors`, what cannot be removed stays and no error is raised."""
    try:
        _remove(os.fspath(path), ignore_errors)
    except OSError as exc:
        if exc.errno != errno.ENAMETOOLONG:
            raise
        # Deeper than PATH_MAX (a step can make that with relative mkdirs): GNU rm walks
        # it by descriptors.
        done = subprocess.run(
            ["rm", "-rf", "--one-file-system", "--", os.fspath(path)],
            capture_output=True,
            check=False,
        )
        if done.returncode != 0 and not ignore_errors:
            raise


def _remove(top: str, ignore_errors: bool) -> None:
    try:
        st = os.lstat(top)
    except FileNotFoundError:
        return
    except OSError:
        if ignore_errors:
            return
        raise
    if not stat.S_ISDIR(st.st_mode):
        _attempt(os.unlink, top, ignore_errors)
        return
    # (directory, listed?) pairs: a directory is removed once everything below it is.
    stack: list[tuple[str, bool]] = [(top, False)]
    while stack:
        directory, listed = stack.pop()
        if listed:
            _attempt(os.rmdir, directory, ignore_errors)
            continue
        stack.append((directory, True))
        try:
            entries = list(os.scandir(directory))
        except PermissionError:
            try:
                os.chmod(directory, 0o700)
                entries = list(os.scandir(directory))
            except OSError:
                if ignore_errors:
                    continue
                raise
        except FileNotFoundError:
            continue
        except OSError as exc:
            if ignore_errors and exc.errno != errno.ENAMETOOLONG:
                continue
            raise
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                stack.append((entry.path, False))
            else:
                _attempt(os.unlink, entry.path, ignore_errors, parent=directory)


def _attempt(
    remove: Callable[[str], None], path: str, ignore_errors: bool, *, parent: str | None = None
) -> None:
    try:
        remove(path)
    except FileNotFoundError:
        pass
    except PermissionError:
        # A read-only directory: its entries can go once it is writable again.
        try:
            os.chmod(parent or os.path.dirname(path), 0o700)
            remove(path)
        except OSError:
            if not ignore_errors:
                raise
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG or not ignore_errors:
            raise
