"""eStargz conversion, checked by a reader written from the spec (estargz_reader.py)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import tracemalloc
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from estargz_fixtures import MTIME, entry, make_tar, pattern, tree
from estargz_reader import FOOTER_SIZE, Parsed, decompress_member, members, verify
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bale.errors import InvalidArgument
from bale.oci import mediatype
from bale.store.estargz import (
    NO_PREFETCH_LANDMARK,
    PREFETCH_LANDMARK,
    TOC_DIGEST_ANNOTATION,
    UNCOMPRESSED_SIZE_ANNOTATION,
    EStargzLayer,
    convert,
    footer,
)

GO_TOC = Path(__file__).with_name("estargz_go_toc.json")


def run(data: bytes, **kw: object) -> tuple[EStargzLayer, bytes]:
    out = io.BytesIO()
    layer = convert(io.BytesIO(data), out, **kw)  # type: ignore[arg-type]
    return layer, out.getvalue()


def check(data: bytes, **kw: object) -> tuple[EStargzLayer, bytes, Parsed]:
    layer, blob = run(data, **kw)
    parsed = verify(blob, toc_digest=str(layer.toc_digest))
    return layer, blob, parsed


def tar_end(data: bytes) -> int:
    """Where the input's entries end (its end-of-archive blocks start)."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tf:
        tf.getmembers()
        return tf.offset


def described(infos: list[tarfile.TarInfo]) -> list[tuple[object, ...]]:
    return [
        (
            i.name,
            i.type,
            i.size,
            i.mode,
            i.uid,
            i.gid,
            i.uname,
            i.gname,
            i.mtime,
            i.linkname,
            i.devmajor,
            i.devminor,
            i.pax_headers,
        )
        for i in infos
    ]


class Pipe(io.RawIOBase):
    """A stream that can only be read, in small pieces (a pipe from a tar writer)."""

    def __init__(self, data: bytes, piece: int = 777) -> None:
        self._data = io.BytesIO(data)
        self._piece = piece

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        chunk = self._data.read(min(len(buffer), self._piece))
        buffer[: len(chunk)] = chunk
        return len(chunk)


# -- the format -------------------------------------------------------------------------------


def test_small_tree_verifies_and_every_entry_survives() -> None:
    data = tree()
    layer, blob, parsed = check(data)
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        inputs = tf.getmembers()
        payloads = [tf.extractfile(i).read() if i.isreg() else b"" for i in inputs]  # type: ignore[union-attr]
    outputs = parsed.tar
    assert [i.name for i in outputs] == [
        NO_PREFETCH_LANDMARK,
        *(i.name for i in inputs),
        "stargz.index.json",
    ]
    assert described(outputs[1:-1]) == described(inputs)
    assert [parsed.payload(i) for i in outputs[1:-1]] == payloads
    # Whiteouts, hardlinks, devices and xattrs are still what they were.
    by_name = {i.name: i for i in outputs}
    assert by_name["etc/.wh.gone"].isreg() and by_name["opt/.wh..wh..opq"].isreg()
    assert by_name["etc/hard"].islnk() and by_name["etc/hard"].linkname == "etc/hello.txt"
    assert (by_name["dev/null"].devmajor, by_name["dev/null"].devminor) == (1, 3)
    assert by_name["dev/sda"].isblk() and by_name["dev/fifo"].isfifo()
    assert by_name["etc/x"].pax_headers["SCHILY.xattr.security.capability"] == (
        "\x01\x00\x00\x02\x00\x20\x00\x00"
    )
    # The input's header and payload bytes are copied as they are, after the landmark.
    end = tar_end(data)
    assert parsed.plain[1024 : 1024 + end] == data[:end]
    # What the descriptor says.
    assert layer.size == len(blob)
    assert str(layer.digest) == f"sha256:{hashlib.sha256(blob).hexdigest()}"
    assert str(layer.diff_id) == f"sha256:{hashlib.sha256(parsed.plain).hexdigest()}"
    assert layer.diff_id != f"sha256:{hashlib.sha256(data).hexdigest()}"
    assert layer.uncompressed_size == len(parsed.plain)
    assert layer.annotations() == {
        TOC_DIGEST_ANNOTATION: f"sha256:{hashlib.sha256(parsed.toc_json).hexdigest()}",
        UNCOMPRESSED_SIZE_ANNOTATION: str(len(parsed.plain)),
    }
    desc = layer.descriptor()
    assert desc.media_type == mediatype.OCI_LAYER_GZIP
    assert (desc.digest, desc.size, desc.annotation_map) == (
        layer.digest,
        layer.size,
        layer.annotations(),
    )


def test_the_blob_is_one_gzip_stream_for_gzip_readers() -> None:
    _, blob, parsed = check(tree())
    d = zlib.decompressobj(31)
    first = d.decompress(blob)
    assert d.eof  # a single member ends early; a multi-member reader goes on
    assert gzip.decompress(blob) == parsed.plain
    assert first == decompress_member(blob, 0)


def test_toc_matches_what_go_estargz_writes() -> None:
    """estargz_go_toc.json: the TOC stargz-snapshotter's `ctr-remote images convert --estargz
    --estargz-chunk-size 65536` (estargz.Build, v0.12, GOMAXPROCS=1) wrote for tree()."""
    _, _, parsed = check(tree(), chunk_size=65536)
    go = GO_TOC.read_text().rstrip("\n")

    def no_offsets(text: str) -> str:  # offsets depend on each deflate implementation
        return re.sub(r'\t*"offset": \d+,\n', "", text)

    assert no_offsets(parsed.toc_json.decode()) == no_offsets(go)


def test_toc_fields_and_their_order() -> None:
    data = make_tar(
        entry("d", tarfile.DIRTYPE, uid=7, gid=8, uname="seven", gname="eight"),
        entry("d/f", data=b"abc", uid=7, gid=8, uname="seven", gname="eight"),
        entry("d/n", tarfile.CHRTYPE, devmajor=5, devminor=1, mtime=0),
    )
    _, _, parsed = check(data)
    landmark, d, f, n = parsed.entries
    assert list(landmark) == ["name", "type", "size", "offset", "digest", "chunkDigest"]
    assert landmark["size"] == 1
    landmark_digest = "sha256:" + hashlib.sha256(b"\x0f").hexdigest()
    assert landmark["digest"] == landmark["chunkDigest"] == landmark_digest
    assert d == {
        "name": "d/",
        "type": "dir",
        "modtime": "2023-11-14T22:13:20Z",
        "mode": 0o755,
        "uid": 7,
        "gid": 8,
        "userName": "seven",
        "groupName": "eight",
    }
    assert list(d) == ["name", "type", "modtime", "mode", "uid", "gid", "userName", "groupName"]
    # A name already given for the same id is left out, as Go's nameIfChanged does.
    assert list(f) == [
        "name",
        "type",
        "size",
        "modtime",
        "mode",
        "uid",
        "gid",
        "offset",
        "digest",
        "chunkDigest",
    ]
    assert n == {
        "name": "d/n",
        "type": "char",
        "mode": 0o644,
        "devMajor": 5,
        "devMinor": 1,
        "userName": "root",
        "groupName": "root",
    }
    text = parsed.toc_json.decode()
    assert text.startswith(
        '{\n\t"version": 1,\n\t"entries": [\n\t\t{\n\t\t\t"name": ".no.prefetch.landmark",\n'
    )
    assert text.endswith("\n\t\t}\n\t]\n}")


def test_names_are_escaped_as_go_json_does() -> None:
    _, _, parsed = check(make_tar(entry("a&b<c>\u2028", data=b"1")))
    assert '"name": "a\\u0026b\\u003cc\\u003e\\u2028"' in parsed.toc_json.decode()


def test_a_name_that_is_not_utf8_becomes_replacement_characters() -> None:
    raw = make_tar(entry("caf\udce9", data=b"1"), encoding="utf-8", errors="surrogateescape")
    _, _, parsed = check(raw)
    assert parsed.entries[1]["name"] == "caf\ufffd"
    assert parsed.tar[1].name == "caf\udce9"  # the tar entry keeps its bytes


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_long_directory_names_keep_their_slash_in_every_tar_format(fmt: int) -> None:
    long = "x" * 120 + "/dir"  # a ustar prefix, a GNU long name, a PAX path
    data = make_tar(entry(long, tarfile.DIRTYPE), entry("short", tarfile.DIRTYPE), fmt=fmt)
    _, _, parsed = check(data)
    assert [e["name"] for e in parsed.entries[1:]] == [long + "/", "short/"]


@pytest.mark.parametrize("fmt", ["gnu", "posix", "ustar"])
def test_tars_written_by_gnu_tar(tmp_path: Path, fmt: str) -> None:
    tar = shutil.which("tar")
    if tar is None:
        pytest.skip("GNU tar is not installed")
    root = tmp_path / "root"
    (root / "sub" / ("deep" * 20)).mkdir(parents=True)
    (root / "sub" / "file").write_bytes(pattern(70_000, "gnu"))
    (root / "sub" / ("deep" * 20) / "f").write_text("deep")
    (root / "sub" / ".wh.removed").write_text("")
    os.link(root / "sub" / "file", root / "sub" / "hard")
    os.symlink("file", root / "sub" / "link")
    out = tmp_path / "layer.tar"
    subprocess.run([tar, f"--format={fmt}", "-C", str(root), "-cf", str(out), "sub"], check=True)
    data = out.read_bytes()
    _, _, parsed = check(data, chunk_size=32768)
    with tarfile.open(out) as tf:
        inputs = tf.getmembers()
    assert described(parsed.tar[1:-1]) == described(inputs)
    kinds = {e["name"].rstrip("/").rsplit("/", 1)[-1]: e["type"] for e in parsed.files()}
    assert {kinds["file"], kinds["hard"]} == {"reg", "hardlink"}  # whichever tar met first
    assert (kinds["link"], kinds["sub"]) == ("symlink", "dir")
    assert sum(e["type"] == "chunk" for e in parsed.entries) == 2


def test_footer_layout() -> None:
    foot = footer(0x1234)
    assert len(foot) == FOOTER_SIZE == 51
    assert foot[:10] == b"\x1f\x8b\x08\x04\x00\x00\x00\x00\x00\xff"
    assert foot[10:16] == b"\x1a\x00SG\x16\x00"
    assert foot[16:38] == b"0000000000001234STARGZ"
    assert zlib.decompressobj(31).decompress(foot) == b""


# -- chunks, empty files, landmarks ------------------------------------------------------------


def test_a_file_larger_than_the_chunk_size_is_split() -> None:
    content = pattern(3 * 65536 + 3, "chunks")
    _, blob, parsed = check(make_tar(entry("f", data=content)), chunk_size=65536)
    chunks = [e for e in parsed.entries if e["name"] == "f"]
    assert [e["type"] for e in chunks] == ["reg", "chunk", "chunk", "chunk"]
    assert [e.get("chunkOffset", 0) for e in chunks] == [0, 65536, 131072, 196608]
    assert [e.get("chunkSize", 0) for e in chunks] == [65536, 65536, 65536, 0]
    assert chunks[0]["digest"] == f"sha256:{hashlib.sha256(content).hexdigest()}"
    assert len({e["offset"] for e in chunks}) == 4
    # Each chunk is independently decompressible from its offset.
    for e in chunks:
        at = e.get("chunkOffset", 0)
        piece = content[at : at + 65536]
        assert decompress_member(blob, e["offset"])[: len(piece)] == piece


def test_an_exact_multiple_of_the_chunk_size_keeps_its_last_chunk_size() -> None:
    _, _, parsed = check(make_tar(entry("f", data=pattern(2 * 4096, "x"))), chunk_size=4096)
    chunks = [e for e in parsed.entries if e["name"] == "f"]
    # Go sets chunkSize whenever a whole chunk is left, the last one included.
    assert [(e["type"], e.get("chunkSize", 0)) for e in chunks] == [("reg", 4096), ("chunk", 4096)]


def test_empty_files_start_no_member() -> None:
    data = make_tar(entry("a", data=b"1"), entry("e1"), entry("e2"), entry("b", data=b"2"))
    _, blob, parsed = check(data)
    # top, landmark payload, a, b, TOC, footer
    assert len(members(blob)) == 6
    empty = [e for e in parsed.entries if e["name"] in ("e1", "e2")]
    assert all(e["digest"] == f"sha256:{hashlib.sha256(b'').hexdigest()}" for e in empty)
    assert all("offset" not in e and "chunkDigest" not in e for e in empty)


def test_without_prioritized_files_the_no_prefetch_landmark_comes_first() -> None:
    _, _, parsed = check(tree())
    names = [e["name"] for e in parsed.files()]
    assert names[0] == NO_PREFETCH_LANDMARK and PREFETCH_LANDMARK not in names
    landmark = parsed.tar[0]
    assert (landmark.size, parsed.payload(landmark), landmark.mode) == (1, b"\x0f", 0)


def prioritized_tar() -> bytes:
    return make_tar(
        entry("a", tarfile.DIRTYPE),
        entry("a/x", data=b"x"),
        entry("a/b", tarfile.DIRTYPE),
        entry("a/b/f1", data=b"f1"),
        entry("c", tarfile.DIRTYPE),
        entry("c/target", data=b"target"),
        entry("c/hard", tarfile.LNKTYPE, linkname="c/target"),
        entry("z", data=b"z"),
        entry("a/x", data=b"x again"),
    )


def test_prioritized_files_come_first_then_the_landmark() -> None:
    layer, _, parsed = check(prioritized_tar(), prioritized=["a/b/f1", "/c/hard", "./a/x", "gone"])
    names = [e["name"] for e in parsed.files()]
    assert names == [
        "a/",
        "a/b/",
        "a/b/f1",
        "c/",
        "c/target",
        "c/hard",
        "a/x",
        "a/x",  # both entries of a name move, in order, so the last one still wins
        PREFETCH_LANDMARK,
        "z",
    ]
    assert NO_PREFETCH_LANDMARK not in names
    assert layer.missing_prioritized == ("gone",)
    contents = [parsed.payload(i) for i in parsed.tar if i.name == "a/x"]
    assert contents == [b"x", b"x again"]


def test_prioritized_conversion_of_a_pipe_equals_that_of_a_file(tmp_path: Path) -> None:
    data = prioritized_tar()
    path = tmp_path / "layer.tar"
    path.write_bytes(b"junk before" + data)
    with open(path, "rb") as f:
        f.seek(len(b"junk before"))
        from_file = io.BytesIO()
        convert(f, from_file, prioritized=["z"])  # type: ignore[arg-type]
    from_pipe = io.BytesIO()
    convert(io.BufferedReader(Pipe(data)), from_pipe, prioritized=["z"])  # type: ignore[arg-type]
    assert from_file.getvalue() == from_pipe.getvalue()
    parsed = verify(from_pipe.getvalue())
    assert [e["name"] for e in parsed.files()][:2] == ["z", PREFETCH_LANDMARK]


def test_prioritizing_survives_link_cycles_and_deep_paths() -> None:
    deep = "d/" * 3000 + "f"
    data = make_tar(
        entry("l1", tarfile.LNKTYPE, linkname="l2"),
        entry("l2", tarfile.LNKTYPE, linkname="l1"),
        entry(deep, data=b"deep"),
    )
    layer, _, parsed = check(data, prioritized=["l1", deep])
    assert [e["name"] for e in parsed.files()] == ["l2", "l1", deep, PREFETCH_LANDMARK]
    assert layer.missing_prioritized == ()


# -- reproducibility ----------------------------------------------------------------------------


@pytest.mark.parametrize(("level", "xfl"), [(1, 4), (6, 0), (9, 2), (0, 0)])
def test_same_tar_same_blob_with_fixed_gzip_headers(level: int, xfl: int) -> None:
    data = tree()
    first = run(data, level=level)
    second = run(data, level=level)
    assert first == second
    blob = first[1]
    verify(blob)
    for member in members(blob)[:-1]:  # the footer carries its extra field
        # gzip header: deflate, no flags, mtime 0, XFL as Go's gzip.Writer sets it, OS 255
        assert blob[
            member.offset : member.offset + 10
        ] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00" + bytes((xfl, 0xFF))


def test_levels_trade_size_for_time() -> None:
    data = make_tar(entry("text", data=b"all work and no play " * 20000))
    sizes = {level: run(data, level=level)[0].size for level in (0, 1, 9)}
    assert sizes[0] > sizes[1] > sizes[9]


def test_converting_the_decompressed_blob_again_gives_the_same_blob() -> None:
    _, blob, parsed = check(tree())
    assert run(parsed.plain)[1] == blob  # its own TOC and landmark are replaced, not kept


def test_empty_layers() -> None:
    for data in (b"", b"\0" * 1024, make_tar()):
        _, _, parsed = check(data)
        assert [e["name"] for e in parsed.entries] == [NO_PREFETCH_LANDMARK]
        assert [i.name for i in parsed.tar] == [NO_PREFETCH_LANDMARK, "stargz.index.json"]


def test_the_sink_may_return_nothing() -> None:
    parts: list[bytes] = []

    class Appender:
        def write(self, data: bytes) -> None:
            parts.append(data)

    layer = convert(io.BytesIO(tree()), Appender())
    blob = b"".join(parts)
    verify(blob, toc_digest=str(layer.toc_digest))
    assert layer.size == len(blob)


# -- bounded memory -----------------------------------------------------------------------------


class GeneratedTar(io.RawIOBase):
    """A one-file tar of `size` bytes, generated as it is read (never held whole)."""

    def __init__(self, size: int) -> None:
        info = tarfile.TarInfo("huge")
        info.size = size
        self._parts: Iterator[bytes] = iter(
            [info.tobuf(tarfile.PAX_FORMAT), *self._body(size), b"\0" * (-size % 512 + 1024)]
        )
        self._pending = b""

    @staticmethod
    def _body(size: int) -> Iterator[bytes]:
        block = pattern(1 << 16, "huge")
        for _ in range(size >> 16):
            yield block
        yield block[: size & 0xFFFF]

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._pending:
            try:
                self._pending = next(self._parts)
            except StopIteration:
                return 0
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def test_a_huge_file_streams_in_bounded_memory() -> None:
    class Counter:
        size = 0

        def write(self, data: bytes) -> None:
            self.size += len(data)

    size = 48 << 20
    sink = Counter()
    tracemalloc.start()
    try:
        layer = convert(io.BufferedReader(GeneratedTar(size)), sink, level=1, chunk_size=4 << 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert layer.size == sink.size
    assert layer.uncompressed_size > size
    assert peak < 16 << 20, f"peak {peak} bytes for a {size}-byte file"


# -- bad input ----------------------------------------------------------------------------------


def _truncated_in_payload() -> bytes:
    data = make_tar(entry("a", data=pattern(5000, "a")))
    return data[: 512 + 1000]


def _truncated_in_header() -> bytes:
    data = make_tar(entry("a", data=b"1"), entry("b", data=b"2"))
    return data[: 1024 + 200]


def _garbage_after_an_entry() -> bytes:
    data = make_tar(entry("a", data=b"1"))
    return data[:1024] + b"garbage!" * 64 + data[1024:]


def _with_type(kind: bytes) -> bytes:
    data = bytearray(make_tar(entry("a", data=b"1"), fmt=tarfile.USTAR_FORMAT))
    data[156:157] = kind
    data[148:156] = b" " * 8
    data[148:156] = b"%06o\0 " % sum(data[:512])
    return bytes(data)


def _gzipped() -> bytes:
    return gzip.compress(make_tar(entry("a", data=b"1")))


BAD = {
    "text": (b"this is not a tar archive\n" * 40, "not a valid tar archive"),
    "short": (b"abc", "not a valid tar archive"),
    "gzip": (_gzipped(), "gzip-compressed"),
    "truncated payload": (_truncated_in_payload(), "not a valid tar archive"),
    "truncated header": (_truncated_in_header(), "truncated tar"),
    "garbage": (_garbage_after_an_entry(), "bad header at offset 1024"),
    "global header": (make_tar(entry("a"), pax_headers={"comment": "x"}), "PAX global header"),
    "contiguous file": (_with_type(tarfile.CONTTYPE), "unsupported tar entry type b'7'"),
    "sparse file": (_with_type(tarfile.GNUTYPE_SPARSE), "unsupported tar sparse file"),
    "volume label": (_with_type(b"V"), "unsupported tar entry type b'V'"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_invalid_argument(case: str) -> None:
    data, message = BAD[case]
    with pytest.raises(InvalidArgument) as err:
        run(data)
    assert message in str(err.value)
    assert err.value.hint


@pytest.mark.parametrize(
    ("kw", "message"),
    [({"level": 10}, "compression level 10"), ({"chunk_size": 0}, "chunk size 0")],
)
def test_bad_options_are_invalid_argument(kw: dict[str, int], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        run(tree(), **kw)


def test_truncation_inside_a_payload_names_the_file() -> None:
    data = make_tar(entry("a", data=pattern(5000, "a")))
    with pytest.raises(InvalidArgument, match="not a valid tar archive: unexpected end of data"):
        run(data[: 512 + 1000])
    with pytest.raises(InvalidArgument, match="not a valid tar archive"):
        run(data[: 512 + 1000], prioritized=["a"])


SMALL = make_tar(
    entry("d", tarfile.DIRTYPE),
    entry("d/f", data=b"payload " * 100),
    entry("d/l", tarfile.SYMTYPE, linkname="f"),
    entry("d/x", data=b"x", pax_headers={"SCHILY.xattr.user.a": "b"}),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(st.integers(0, len(SMALL) - 1), st.integers(0, 255)), max_size=6),
    st.integers(0, len(SMALL)),
)
def test_damaged_tars_convert_or_fail_cleanly(edits: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(SMALL)
    for at, value in edits:
        data[at] = value
    try:
        layer, blob = run(bytes(data[:cut]))
    except InvalidArgument as exc:
        assert str(exc)
        return
    verify(blob, toc_digest=str(layer.toc_digest))


def test_toc_json_parses_as_json_with_the_documented_fields() -> None:
    _, _, parsed = check(tree(), chunk_size=65536)
    known = {
        "name", "type", "size", "modtime", "linkName", "mode", "uid", "gid", "userName",
        "groupName", "devMajor", "devMinor", "xattrs", "digest", "offset", "chunkOffset",
        "chunkSize", "chunkDigest",
    }  # fmt: skip
    doc = json.loads(parsed.toc_json)
    assert set(doc) == {"version", "entries"}
    assert all(set(e) <= known for e in doc["entries"])
    assert {e["type"] for e in doc["entries"]} == {
        "dir",
        "reg",
        "symlink",
        "hardlink",
        "char",
        "block",
        "fifo",
        "chunk",
    }
    assert any(e.get("modtime", "").startswith("1969-01-01") for e in doc["entries"])
    modtimes = {e["name"]: e.get("modtime") for e in doc["entries"] if e["type"] != "chunk"}
    assert modtimes["etc/"] == datetime.fromtimestamp(MTIME, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert modtimes["half"] == "2023-11-14T22:13:21Z"  # half a second rounds up, as in Go
    assert modtimes["old"] == "1969-01-01T00:00:00Z"
    assert modtimes[NO_PREFETCH_LANDMARK] is None  # the epoch is left out
