"""eStargz: a gzip tar layer that a lazy-pulling snapshotter can read file by file.

The blob is an ordinary `tar+gzip` layer made of concatenated gzip members, laid out as
containerd/stargz-snapshotter's `estargz.Build` lays it out (docs/estargz.md):

- a member starts at the top of the blob, at each non-empty regular file's payload and at
  each chunk of a large one, at the TOC's tar header, and at the footer;
- the landmark `.no.prefetch.landmark` comes first, or `.prefetch.landmark` right after the
  prioritized files (a 1-byte regular file holding 0x0f);
- the last tar entry is the TOC, `stargz.index.json`, the JSON that Go's
  `json.MarshalIndent(toc, "", "\\t")` writes, followed by the tar end;
- the 51-byte footer is an empty gzip member whose extra field says where the TOC starts.

The input entries' tar headers are copied byte for byte (PAX records, long names,
whiteouts, hardlinks and devices stay as they were), as BuildKit's lossless conversion does;
only the end-of-archive blocks move behind the TOC, so a plain tar reader sees the TOC too.
Gzip headers are fixed (mtime 0, no name, OS 255 as Go writes them): the same tar gives the
same blob.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import math
import posixpath
import re
import struct
import tempfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import IO, Any, BinaryIO, Protocol

from bale.errors import InvalidArgument
from bale.oci import mediatype
from bale.oci.descriptor import Descriptor
from bale.oci.digest import Digest
from bale.store.tarscan import BLOCK, TarEntry, scan

TOC_TAR_NAME = "stargz.index.json"
FOOTER_SIZE = 51
TOC_DIGEST_ANNOTATION = "containerd.io/snapshot/stargz/toc.digest"
UNCOMPRESSED_SIZE_ANNOTATION = "io.containers.estargz.uncompressed-size"
PREFETCH_LANDMARK = ".prefetch.landmark"
NO_PREFETCH_LANDMARK = ".no.prefetch.landmark"
LANDMARK_CONTENTS = b"\x0f"
DEFAULT_CHUNK_SIZE = 4 << 20
# BuildKit's estargz default (Go's gzip.DefaultCompression is flate level 6).
DEFAULT_LEVEL = 6

_READ = 1 << 20
# An input's own TOC or landmark is dropped: ours replace it (Go's Build does the same).
_RESERVED = frozenset({TOC_TAR_NAME, PREFETCH_LANDMARK, NO_PREFETCH_LANDMARK})
# Go's encoding/json escapes these inside strings; Python's json leaves them as they are.
_GO_ESCAPES = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)
# surrogateescape keeps each undecodable byte as one lone surrogate; Go writes U+FFFD for it.
_LONE_SURROGATE = re.compile("[\udc80-\udcff]")


class Sink(Protocol):
    def write(self, data: bytes, /) -> object: ...


@dataclass(frozen=True)
class EStargzLayer:
    """What was written: the blob's digest and size, and what the layer descriptor says."""

    digest: Digest
    size: int
    diff_id: Digest  # of the decompressed blob, TOC and landmark included
    toc_digest: Digest
    uncompressed_size: int
    # Prioritized paths the tar does not hold (a workload's files spread over many layers).
    missing_prioritized: tuple[str, ...] = ()

    media_type = mediatype.OCI_LAYER_GZIP

    def annotations(self) -> dict[str, str]:
        return {
            TOC_DIGEST_ANNOTATION: str(self.toc_digest),
            UNCOMPRESSED_SIZE_ANNOTATION: str(self.uncompressed_size),
        }

    def descriptor(self) -> Descriptor:
        return Descriptor(self.media_type, self.digest, self.size).with_annotation_map(
            self.annotations()
        )


def convert(
    tar_stream: BinaryIO,
    sink: Sink,
    *,
    level: int = DEFAULT_LEVEL,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    prioritized: Sequence[str] = (),
) -> EStargzLayer:
    """Write the eStargz form of the uncompressed layer tar `tar_stream` into `sink`.

    `prioritized` paths (absolute or relative to /) are moved to the front, each after its
    parent directories and, for a hardlink, its target, in the order given; paths the tar does
    not hold are reported in `missing_prioritized`. Without them the input streams through in
    one pass; with them it is read twice (spooled to a temporary file if it cannot seek).
    On an error, what was already written to `sink` is to be thrown away.
    """
    if not 0 <= level <= 9:
        raise InvalidArgument(
            f"invalid estargz compression level {level}", hint="use a gzip level from 0 to 9"
        )
    if chunk_size <= 0:
        raise InvalidArgument(
            f"invalid estargz chunk size {chunk_size}", hint="use a positive number of bytes"
        )
    out = _Members(sink, level)
    toc = _Toc()
    missing: tuple[str, ...] = ()
    if prioritized:
        missing = _convert_sorted(tar_stream, out, toc, chunk_size, prioritized)
    else:
        _write_landmark(out, toc, NO_PREFETCH_LANDMARK)
        for item in scan(tar_stream):
            if _clean(item.entry.name) not in _RESERVED:
                _write_entry(out, toc, item.entry, item.header, item.read, chunk_size)
    toc_json = toc.encode()
    toc_offset = out.cut()
    out.write(_plain_header(TOC_TAR_NAME, len(toc_json)) + toc_json + _padding(len(toc_json)))
    out.write(b"\0" * (2 * BLOCK))
    out.cut()
    out.raw(footer(toc_offset))
    return EStargzLayer(
        digest=Digest("sha256", out.blob_hash.hexdigest()),
        size=out.offset,
        diff_id=Digest("sha256", out.diff_hash.hexdigest()),
        toc_digest=Digest.of(toc_json),
        uncompressed_size=out.uncompressed_size,
        missing_prioritized=missing,
    )


def footer(toc_offset: int) -> bytes:
    """The 51-byte footer: an empty stored gzip member, extra field `SG` + `%016xSTARGZ`."""
    subfield = b"%016xSTARGZ" % toc_offset
    extra = b"SG" + struct.pack("<H", len(subfield)) + subfield
    header = b"\x1f\x8b\x08\x04\0\0\0\0\0\xff" + struct.pack("<H", len(extra)) + extra
    return header + b"\x01\x00\x00\xff\xff" + b"\0" * 8


class _Members:
    """Gzip members written one after another; hashes and counts both sides."""

    def __init__(self, sink: Sink, level: int) -> None:
        self._sink = sink
        self._level = level
        # Go's gzip.Writer marks BestCompression and BestSpeed in XFL, leaves OS unknown.
        xfl = 2 if level == 9 else 4 if level == 1 else 0
        self._header = b"\x1f\x8b\x08\x00\0\0\0\0" + bytes((xfl, 0xFF))
        self._deflate: Any = None
        self._crc = 0
        self._isize = 0
        self.offset = 0
        self.uncompressed_size = 0
        self.blob_hash = hashlib.sha256()
        self.diff_hash = hashlib.sha256()

    def raw(self, data: bytes) -> None:
        if data:
            self._sink.write(data)
            self.blob_hash.update(data)
            self.offset += len(data)

    def write(self, data: bytes) -> None:
        """Add uncompressed bytes to the current member, starting one if none is open."""
        if self._deflate is None:
            self.raw(self._header)
            self._deflate = zlib.compressobj(self._level, zlib.DEFLATED, -zlib.MAX_WBITS)
            self._crc = self._isize = 0
        self._crc = zlib.crc32(data, self._crc)
        self._isize += len(data)
        self.diff_hash.update(data)
        self.uncompressed_size += len(data)
        self.raw(self._deflate.compress(data))

    def cut(self) -> int:
        """End the current member; return where the next one starts."""
        if self._deflate is not None:
            self.raw(self._deflate.flush())
            self.raw(struct.pack("<II", self._crc, self._isize & 0xFFFFFFFF))
            self._deflate = None
        return self.offset


class _Toc:
    """TOC entries in write order, with the fields of Go's TOCEntry in its order."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []
        # Go writes a user or group name only when it changes for that id (nameIfChanged).
        self._unames: dict[int, str] = {}
        self._gnames: dict[int, str] = {}

    def add(self, entry: TarEntry) -> dict[str, Any]:
        device = entry.kind in ("char", "block")
        item: dict[str, Any] = {
            "name": entry.name,
            "type": entry.kind,
            "size": entry.size,
            "modtime": _modtime(entry.mtime, entry.name),
            "linkName": entry.link if entry.kind in ("hardlink", "symlink") else "",
            "mode": entry.mode,
            "uid": entry.uid,
            "gid": entry.gid,
            "userName": _if_changed(self._unames, entry.uid, entry.uname),
            "groupName": _if_changed(self._gnames, entry.gid, entry.gname),
            "offset": 0,
            "innerOffset": 0,
            "devMajor": entry.devmajor if device else 0,
            "devMinor": entry.devminor if device else 0,
            "xattrs": {k: base64.b64encode(v).decode("ascii") for k, v in sorted(entry.xattrs)},
            "digest": "",
            "chunkOffset": 0,
            "chunkSize": 0,
            "chunkDigest": "",
        }
        self.entries.append(item)
        return item

    def chunk(self, name: str) -> dict[str, Any]:
        item: dict[str, Any] = {"name": name, "type": "chunk", "offset": 0, "chunkOffset": 0}
        item.update(chunkSize=0, chunkDigest="")
        self.entries.append(item)
        return item

    def encode(self) -> bytes:
        """The TOC JSON byte for byte as Go's json.MarshalIndent(toc, "", "\\t") writes it."""
        entries = [
            {k: _go_string(v) for k, v in item.items() if v or k in ("name", "type")}
            for item in self.entries
        ]
        text = json.dumps({"version": 1, "entries": entries}, indent="\t", ensure_ascii=False)
        return text.translate(_GO_ESCAPES).encode("utf-8")


def _go_string(value: Any) -> Any:
    """Go's json writes each byte that is not UTF-8 as U+FFFD."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_LONE_SURROGATE.sub("\ufffd", k): v for k, v in value.items()}
    return value


def _if_changed(last: dict[int, str], ident: int, name: str) -> str:
    if not name or last.get(ident) == name:
        return ""
    last[ident] = name
    return name


def _modtime(mtime: float, name: str) -> str:
    """Go's formatModtime: empty for the epoch's first second, else UTC RFC 3339 (rounded)."""
    try:
        if math.floor(mtime) == 0:
            return ""
        when = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=math.floor(mtime + 0.5))
    except (OverflowError, ValueError):
        raise InvalidArgument(
            f"tar entry {name!r} has a modification time out of range ({mtime})",
            hint="set the file's mtime to a date between the years 1 and 9999",
        ) from None
    return (
        f"{when.year:04d}-{when.month:02d}-{when.day:02d}"
        f"T{when.hour:02d}:{when.minute:02d}:{when.second:02d}Z"
    )


def _write_entry(
    out: _Members,
    toc: _Toc,
    entry: TarEntry,
    header: bytes,
    read: Callable[[int], bytes],
    chunk_size: int,
) -> None:
    """One entry: its header where the current member is, each chunk in a member of its own."""
    out.write(header)
    first = item = toc.add(entry)
    if entry.kind != "reg":
        return
    chunked = entry.size > chunk_size
    whole = hashlib.sha256()
    part = whole
    written = 0
    while written < entry.size:
        size = min(chunk_size, entry.size - written)
        if size == chunk_size:
            item["chunkSize"] = size  # as Go: set unless this is a shorter last chunk
        item["offset"] = out.cut()
        item["chunkOffset"] = written
        if chunked:
            part = hashlib.sha256()
        left = size
        while left:
            data = read(min(left, _READ))
            if not data:
                raise InvalidArgument(
                    f"truncated tar: {entry.name!r} ends {written + size - left} bytes "
                    f"into its {entry.size}",
                    hint="the layer tar is incomplete; write it again",
                )
            out.write(data)
            part.update(data)
            if chunked:
                whole.update(data)
            left -= len(data)
        item["chunkDigest"] = f"sha256:{part.hexdigest()}"
        written += size
        if written < entry.size:
            item = toc.chunk(entry.name)
    first["digest"] = f"sha256:{whole.hexdigest()}"
    out.write(_padding(entry.size))


def _write_landmark(out: _Members, toc: _Toc, name: str) -> None:
    entry = TarEntry(name, "reg", 1, 0, "", 0, 0, 0, "", "", 0, 0, (), 0, 0)
    header = _plain_header(name, 1)
    _write_entry(out, toc, entry, header, io.BytesIO(LANDMARK_CONTENTS).read, DEFAULT_CHUNK_SIZE)


def _plain_header(name: str, size: int) -> bytes:
    """The ustar header Go's tar.Writer writes for a bare name and size (mode 0, mtime 0)."""
    if size >= 8**11:
        raise InvalidArgument(f"{name} would be {size} bytes, more than a ustar header holds")
    block = bytearray(BLOCK)
    block[0 : len(name)] = name.encode("ascii")
    for at in (100, 108, 116, 329, 337):  # mode, uid, gid, devmajor, devminor
        block[at : at + 8] = b"0000000\0"
    block[124:136] = b"%011o\0" % size
    block[136:148] = b"00000000000\0"
    block[156:157] = b"0"
    block[257:265] = b"ustar\x0000"
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)


def _padding(size: int) -> bytes:
    return b"\0" * (-size % BLOCK)


def _clean(name: str) -> str:
    """Go's cleanEntryName: path.Clean("/" + name) without the leading slash."""
    return posixpath.normpath("/" + name).lstrip("/")


def _convert_sorted(
    stream: BinaryIO, out: _Members, toc: _Toc, chunk_size: int, prioritized: Sequence[str]
) -> tuple[str, ...]:
    """Index the tar, then write prioritized entries, the landmark, and the rest."""
    with contextlib.ExitStack() as stack:
        if _seekable(stream):
            source: IO[bytes] = stream
            base = stream.tell()
            tee = None
        else:
            source = stack.enter_context(tempfile.TemporaryFile(prefix="bale-estargz-"))
            base = 0
            tee = source
        entries = [
            item.entry for item in scan(stream, tee=tee) if _clean(item.entry.name) not in _RESERVED
        ]
        front, missing = _order(entries, prioritized)
        chosen = set(front)
        for i in [*front, -1, *(i for i in range(len(entries)) if i not in chosen)]:
            if i < 0:
                _write_landmark(out, toc, PREFETCH_LANDMARK)
                continue
            entry = entries[i]
            source.seek(base + entry.header_at)
            header = source.read(entry.data_at - entry.header_at)
            _write_entry(out, toc, entry, header, source.read, chunk_size)
    return missing


def _seekable(stream: BinaryIO) -> bool:
    try:
        return bool(stream.seekable())
    except (AttributeError, OSError, ValueError):
        return False


def _order(
    entries: Sequence[TarEntry], prioritized: Sequence[str]
) -> tuple[list[int], tuple[str, ...]]:
    """Entries moved to the front, as Go's moveRec: parents, then a hardlink's target, then it.

    Iterative, so a deep path or a hardlink cycle cannot exhaust the stack. A parent directory
    the tar does not hold is skipped (Go would give up on the file). All entries of a name
    move together, in their order, so the last one still wins on extraction.
    """
    index: dict[str, list[int]] = {}
    for i, entry in enumerate(entries):
        index.setdefault(_clean(entry.name), []).append(i)
    picked: set[str] = set()
    seen: set[str] = set()
    front: list[int] = []
    missing: list[str] = []
    for wanted in prioritized:
        name = _clean(wanted)
        if name and name not in index:
            missing.append(wanted)
            continue
        stack: list[tuple[str, bool]] = [(name, False)]
        while stack:
            current, ready = stack.pop()
            if current in picked:
                continue
            if ready:
                picked.add(current)
                front.extend(index.get(current, ()))
                continue
            if current in seen:
                continue
            seen.add(current)
            stack.append((current, True))
            for i in index.get(current, ()):
                if entries[i].kind == "hardlink":
                    stack.append((_clean(entries[i].link), False))
            if current:
                stack.append((posixpath.dirname(current), False))
    return front, tuple(missing)
