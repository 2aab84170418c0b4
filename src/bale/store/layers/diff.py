"""Layer diff: what changed in a snapshot, as a compressed OCI layer tar.

Two sources of changes:
- an overlay upperdir (fast: only the changed files are visited; overlay whiteouts, 0:0
  character devices, and opaque directories, `trusted.overlay.opaque=y`, become OCI
  `.wh.<name>` and `.wh..wh..opq` entries);
- two directory trees compared entry by entry (the fallback for copy snapshots).

The tar is written in one pass: the uncompressed bytes are hashed (diff id) and compressed,
the compressed bytes hashed (digest) and counted on their way to the caller's sink.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from bale.errors import InvalidArgument, NotFound, Unavailable
from bale.oci import Digest
from bale.oci.mediatype import OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD
from bale.store.compression import LayerWriter, Sink
from bale.store.layers.tarwriter import TarEmitter, read_xattrs
from bale.store.overlay import is_opaque

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
_MEDIA_TYPES = {"gzip": OCI_LAYER_GZIP, "zstd": OCI_LAYER_ZSTD, "": OCI_LAYER}


@dataclass(frozen=True)
class LayerBlob:
    """A layer as written: diff id (uncompressed tar), digest and size of what the sink got."""

    diff_id: Digest
    digest: Digest
    size: int
    media_type: str


@dataclass(frozen=True)
class DiffOptions:
    compression: str = "gzip"  # "gzip", "zstd" or "" for a plain tar
    source_date_epoch: int | None = None  # clamp mtimes to this, as SOURCE_DATE_EPOCH does
    threads: int = 0  # compression threads; 0 picks from the CPUs available


# One change, in archive order: (path parts, kind, host path). kind: "entry", "whiteout",
# "opaque" (the marker inside a directory).
_Change = tuple[tuple[str, ...], str, str]


def _sort_key(change: _Change) -> tuple[tuple[str, ...], int]:
    parts, kind, _ = change
    return (parts, 0 if kind == "entry" else 1)


def write_layer(sink: Sink, options: DiffOptions, emit: Callable[[TarEmitter], None]) -> LayerBlob:
    """A layer whose entries `emit` writes (in archive order), compressed into `sink`."""
    if options.compression not in _MEDIA_TYPES:
        raise InvalidArgument(
            f"unknown layer compression {options.compression!r}", hint="use gzip, zstd or none"
        )
    writer = LayerWriter(sink, options.compression, threads=options.threads)
    emitter = TarEmitter(writer, clamp_mtime=options.source_date_epoch)
    try:
        emit(emitter)
        emitter.finish()
    except OSError as exc:
        writer.close()
        raise Unavailable(f"cannot archive {exc.filename or 'a file'}: {exc.strerror}") from exc
    writer.close()
    return LayerBlob(
        diff_id=Digest("sha256", writer.diff_id_hex),
        digest=Digest("sha256", writer.digest_hex),
        size=writer.size,
        media_type=_MEDIA_TYPES[options.compression],
    )


def _write(changes: list[_Change], sink: Sink, options: DiffOptions) -> LayerBlob:
    changes.sort(key=_sort_key)

    def emit(emitter: TarEmitter) -> None:
        for parts, kind, host in changes:
            name = "/".join(parts)
            if kind == "entry":
                emitter.entry(name, host, os.lstat(host))
            else:
                emitter.whiteout(name)

    return write_layer(sink, options, emit)


def _listdir(path: str) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except (FileNotFoundError, NotADirectoryError):
        return []


def _upper_changes(upper: str) -> Iterator[_Change]:
    stack: list[tuple[tuple[str, ...], str]] = [((), upper)]
    while stack:
        parts, host = stack.pop()
        for name in _listdir(host):
            child_parts = (*parts, name)
            child = os.path.join(host, name)
            st = os.lstat(child)
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                yield ((*parts, WHITEOUT_PREFIX + name), "whiteout", child)
                continue
            yield (child_parts, "entry", child)
            if stat.S_ISDIR(st.st_mode):
                if is_opaque(child):
                    yield ((*child_parts, OPAQUE_MARKER), "opaque", child)
                stack.append((child_parts, child))


def diff_upperdir(upper: str | os.PathLike[str], sink: Sink, options: DiffOptions) -> LayerBlob:
    """The layer of an overlay upperdir, without looking at the lower layers."""
    _require_dir(upper)
    return _write(list(_upper_changes(os.fspath(upper))), sink, options)


def _require_dir(path: str | os.PathLike[str]) -> None:
    if not os.path.isdir(path):
        raise NotFound(f"cannot diff {os.fspath(path)}: not a directory")


def _same_content(a: str, b: str) -> bool:
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            ca = fa.read(1 << 20)
            cb = fb.read(1 << 20)
            if ca != cb:
                return False
            if not ca:
                return True


def _same(a: str, sa: os.stat_result, b: str, sb: os.stat_result) -> bool:
    if (sa.st_mode, sa.st_uid, sa.st_gid) != (sb.st_mode, sb.st_uid, sb.st_gid):
        return False
    mode = sb.st_mode
    if stat.S_ISLNK(mode):
        if os.readlink(a) != os.readlink(b):
            return False
    elif (stat.S_ISCHR(mode) or stat.S_ISBLK(mode)) and sa.st_rdev != sb.st_rdev:
        return False
    if sa.st_mtime_ns != sb.st_mtime_ns:
        return False
    if stat.S_ISREG(mode):
        if sa.st_size != sb.st_size:
            return False
        # Equal nanosecond times mean an untouched copy; whole-second ones (from a tar or a
        # clamp) could hide an edit, so those files are compared byte by byte (as containerd).
        if sb.st_mtime_ns % 1_000_000_000 == 0 and not _same_content(a, b):
            return False
    return read_xattrs(a) == read_xattrs(b)


def _tree_changes(lower: str, upper: str) -> list[_Change]:
    changes: list[_Change] = []
    # Every path of a multiply-linked file is archived once any of them is, so the link
    # survives the round trip.
    inode_paths: dict[tuple[int, int], list[tuple[tuple[str, ...], str]]] = {}
    emitted: set[tuple[str, ...]] = set()

    def add_subtree(parts: tuple[str, ...], host: str, st: os.stat_result) -> None:
        changes.append((parts, "entry", host))
        emitted.add(parts)
        if stat.S_ISDIR(st.st_mode):
            for name in _listdir(host):
                child = os.path.join(host, name)
                add_subtree((*parts, name), child, note((*parts, name), child))

    def note(parts: tuple[str, ...], host: str) -> os.stat_result:
        st = os.lstat(host)
        if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
            inode_paths.setdefault((st.st_dev, st.st_ino), []).append((parts, host))
        return st

    stack: list[tuple[tuple[str, ...], str, str]] = [((), lower, upper)]
    while stack:
        parts, low, up = stack.pop()
        low_names = set(_listdir(low))
        for name in _listdir(up):
            child_parts = (*parts, name)
            up_child = os.path.join(up, name)
            sb = note(child_parts, up_child)
            if name not in low_names:
                add_subtree(child_parts, up_child, sb)
                continue
            low_child = os.path.join(low, name)
            sa = os.lstat(low_child)
            if stat.S_ISDIR(sa.st_mode) != stat.S_ISDIR(sb.st_mode):
                # Apply replaces whatever is there, a directory with its contents included.
                add_subtree(child_parts, up_child, sb)
                continue
            if not _same(low_child, sa, up_child, sb):
                changes.append((child_parts, "entry", up_child))
                emitted.add(child_parts)
            if stat.S_ISDIR(sb.st_mode):
                stack.append((child_parts, low_child, up_child))
        up_names = set(_listdir(up))
        for name in sorted(low_names - up_names):
            changes.append(((*parts, WHITEOUT_PREFIX + name), "whiteout", ""))
    for paths in inode_paths.values():
        if any(p in emitted for p, _ in paths):
            for p, host in paths:
                if p not in emitted:
                    changes.append((p, "entry", host))
                    emitted.add(p)
    return changes


def diff_trees(
    lower: str | os.PathLike[str] | None,
    upper: str | os.PathLike[str],
    sink: Sink,
    options: DiffOptions,
) -> LayerBlob:
    """The layer that turns tree `lower` (None: empty) into tree `upper`."""
    _require_dir(upper)
    if lower is not None:
        _require_dir(lower)
    low = os.fspath(lower) if lower is not None else ""
    return _write(_tree_changes(low, os.fspath(upper)), sink, options)
