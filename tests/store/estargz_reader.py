"""An eStargz reader written from the format's spec (containerd/stargz-snapshotter
docs/estargz.md), sharing no code with bale.store.estargz, to check what bale writes.

`verify(blob)` parses the footer, finds and decompresses the TOC, and checks every TOC entry
against the tar a plain reader sees: names, types, metadata, that each offset is a gzip member
whose decompression starts at that entry's payload, and the chunk and file digests.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import math
import struct
import tarfile
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

FOOTER_SIZE = 51
TOC_NAME = "stargz.index.json"
LANDMARKS = (".prefetch.landmark", ".no.prefetch.landmark")
TYPES = {"dir", "reg", "symlink", "hardlink", "char", "block", "fifo", "chunk"}
_TAR_TYPES = {
    tarfile.DIRTYPE: "dir",
    tarfile.REGTYPE: "reg",
    tarfile.AREGTYPE: "reg",
    tarfile.SYMTYPE: "symlink",
    tarfile.LNKTYPE: "hardlink",
    tarfile.CHRTYPE: "char",
    tarfile.BLKTYPE: "block",
    tarfile.FIFOTYPE: "fifo",
}


@dataclass(frozen=True)
class Member:
    offset: int  # where its gzip header is in the blob
    start: int  # where its data starts in the decompressed stream
    size: int  # its decompressed length


@dataclass
class Parsed:
    toc_offset: int
    toc_json: bytes
    entries: list[dict[str, Any]]
    members: list[Member]
    plain: bytes  # the whole blob decompressed
    tar: list[tarfile.TarInfo] = field(default_factory=list)  # what a plain tar reader sees

    def payload(self, info: tarfile.TarInfo) -> bytes:
        return self.plain[info.offset_data : info.offset_data + info.size]

    def files(self) -> list[dict[str, Any]]:
        """TOC entries that are not chunks after the first."""
        return [e for e in self.entries if e["type"] != "chunk"]


def parse_footer(blob: bytes) -> int:
    """The TOC offset from the 51-byte footer (an empty gzip member with an SG extra field)."""
    assert len(blob) >= FOOTER_SIZE, "blob shorter than the footer"
    foot = blob[-FOOTER_SIZE:]
    assert foot[:3] == b"\x1f\x8b\x08", "footer is not a gzip header"
    assert foot[3] == 0x04, f"footer flags {foot[3]:#x}: want FEXTRA only"
    (xlen,) = struct.unpack("<H", foot[10:12])
    assert xlen == 26, f"footer XLEN {xlen}"
    extra = foot[12 : 12 + xlen]
    assert extra[:2] == b"SG", f"footer subfield id {extra[:2]!r}"
    (sublen,) = struct.unpack("<H", extra[2:4])
    assert sublen == 22
    sub = extra[4:]
    assert sub[16:] == b"STARGZ", f"footer magic {sub[16:]!r}"
    d = zlib.decompressobj(31)
    assert d.decompress(foot) == b"" and d.eof and not d.unused_data, "footer is not empty gzip"
    return int(sub[:16], 16)


def members(blob: bytes) -> list[Member]:
    """Every gzip member of the blob, walked from the top."""
    out: list[Member] = []
    offset = start = 0
    while offset < len(blob):
        assert blob[offset : offset + 3] == b"\x1f\x8b\x08", f"no gzip member at {offset}"
        d = zlib.decompressobj(31)
        data = d.decompress(blob[offset:])
        assert d.eof, f"gzip member at {offset} is truncated"
        out.append(Member(offset, start, len(data)))
        start += len(data)
        offset = len(blob) - len(d.unused_data)
    return out


def decompress_member(blob: bytes, offset: int) -> bytes:
    d = zlib.decompressobj(31)
    data = d.decompress(blob[offset:])
    assert d.eof
    return data


def read_toc(blob: bytes, toc_offset: int) -> bytes:
    """The TOC JSON: one gzip member holding the tar entry stargz.index.json and the tar end."""
    d = zlib.decompressobj(31)
    data = d.decompress(blob[toc_offset:])
    assert d.eof and len(d.unused_data) == FOOTER_SIZE, "TOC member must end at the footer"
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tf:
        infos = tf.getmembers()
        assert [i.name for i in infos] == [TOC_NAME], [i.name for i in infos]
        reader = tf.extractfile(infos[0])
        assert reader is not None
        toc = reader.read()
    assert data.endswith(b"\0" * 1024), "TOC member must hold the tar's end"
    return toc


def _json_text(name: str) -> str:
    """JSON holds UTF-8 only: Go writes each byte that is not UTF-8 as U+FFFD."""
    raw = name.encode("utf-8", "surrogateescape")
    return "".join(chr(b) if b < 0x80 else "\ufffd" for b in raw) if _invalid(raw) else name


def _invalid(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _rfc3339(mtime: float) -> str:
    """Go's formatModtime: none for the epoch's first second, else rounded, halves up."""
    if math.floor(mtime) == 0:
        return ""
    when = datetime.fromtimestamp(math.floor(mtime + 0.5), UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def verify(blob: bytes, *, toc_digest: str | None = None) -> Parsed:
    toc_offset = parse_footer(blob)
    all_members = members(blob)
    starts = {m.offset: m for m in all_members}
    assert all_members[-1].offset == len(blob) - FOOTER_SIZE, "footer is not its own member"
    assert all_members[-2].offset == toc_offset, "TOC is not the member before the footer"
    toc_json = read_toc(blob, toc_offset)
    if toc_digest is not None:
        assert f"sha256:{hashlib.sha256(toc_json).hexdigest()}" == toc_digest
    toc = json.loads(toc_json)
    assert toc["version"] == 1
    entries = toc["entries"]
    plain = b"".join(decompress_member(blob, m.offset) for m in all_members)
    parsed = Parsed(toc_offset, toc_json, entries, all_members, plain)
    with tarfile.open(fileobj=io.BytesIO(plain), mode="r:") as tf:
        parsed.tar = tf.getmembers()
    assert parsed.tar[-1].name == TOC_NAME, "TOC is not the last tar entry"
    tar_entries = parsed.tar[:-1]
    files = parsed.files()
    assert len(files) == len(tar_entries), (len(files), len(tar_entries))
    assert sum(e["name"] in LANDMARKS for e in files) == 1, "want exactly one landmark"

    i = 0
    for info in tar_entries:
        ent = entries[i]
        assert ent["type"] in TYPES
        kind = _TAR_TYPES[info.type]
        assert ent["type"] == kind, (ent, info.name)
        name = ent["name"].rstrip("/") if kind == "dir" else ent["name"]
        assert name == _json_text(info.name), (ent["name"], info.name)
        assert ent.get("mode", 0) == info.mode, ent
        assert ent.get("uid", 0) == info.uid and ent.get("gid", 0) == info.gid, ent
        assert ent.get("modtime", "") == _rfc3339(info.mtime), (ent, info.mtime)
        if kind in ("symlink", "hardlink"):
            assert ent["linkName"] == _json_text(info.linkname)
        if kind in ("char", "block"):
            assert ent.get("devMajor", 0) == info.devmajor
            assert ent.get("devMinor", 0) == info.devminor
        xattrs = {
            k.removeprefix("SCHILY.xattr."): v.encode("utf-8", "surrogateescape")
            for k, v in info.pax_headers.items()
            if k.startswith("SCHILY.xattr.")
        }
        assert {k: base64.b64decode(v) for k, v in ent.get("xattrs", {}).items()} == xattrs
        i += 1
        if kind != "reg":
            continue
        assert ent.get("size", 0) == info.size
        content = parsed.payload(info)
        assert ent["digest"] == f"sha256:{hashlib.sha256(content).hexdigest()}", ent
        if info.size == 0:
            assert "offset" not in ent and "chunkDigest" not in ent, ent
            continue
        chunks = [ent]
        while i < len(entries) and entries[i]["type"] == "chunk":
            assert entries[i]["name"] == ent["name"]
            chunks.append(entries[i])
            i += 1
        expect = 0
        for n, chunk in enumerate(chunks):
            at = chunk.get("chunkOffset", 0)
            assert at == expect, f"chunk of {name} at {at}, want {expect}"
            size = chunk.get("chunkSize", 0)
            if size == 0:
                assert n == len(chunks) - 1, "only the last chunk may leave chunkSize out"
                size = info.size - at
            data = content[at : at + size]
            assert len(data) == size
            member = starts.get(chunk["offset"])
            assert member is not None, f"{name}: offset {chunk['offset']} is no gzip member"
            assert member.start == info.offset_data + at, f"{name}: member does not start at data"
            assert decompress_member(blob, chunk["offset"])[:size] == data
            assert chunk["chunkDigest"] == f"sha256:{hashlib.sha256(data).hexdigest()}"
            expect = at + size
        assert expect == info.size, f"chunks of {name} cover {expect} of {info.size} bytes"
    assert i == len(entries), "TOC entries left over"
    required = {0, toc_offset, len(blob) - FOOTER_SIZE}
    required |= {e["offset"] for e in entries if e["type"] in ("reg", "chunk") and "offset" in e}
    assert required <= starts.keys()
    return parsed
