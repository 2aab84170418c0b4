"""Layer tars built by hand for the SBOM tests, and a counter of layer opens."""

from __future__ import annotations

import gzip
import io
import struct
import tarfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import zstandard

FIXTURES = Path(__file__).parent / "fixtures"


@dataclass(frozen=True)
class F:
    """One tar member: a file (`data`), a directory, a symlink or a hard link."""

    name: str
    data: bytes = b""
    mode: int = 0o644
    kind: str = "file"  # file | dir | symlink | hardlink
    link: str = ""
    pax: dict[str, str] | None = None


def tar_bytes(members: Iterable[F]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for m in members:
            info = tarfile.TarInfo(m.name)
            info.mode = m.mode
            if m.pax:
                info.pax_headers = dict(m.pax)
            if m.kind == "dir":
                info.type = tarfile.DIRTYPE
                tf.addfile(info)
            elif m.kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = m.link
                tf.addfile(info)
            elif m.kind == "hardlink":
                info.type = tarfile.LNKTYPE
                info.linkname = m.link
                tf.addfile(info)
            else:
                info.size = len(m.data)
                tf.addfile(info, io.BytesIO(m.data))
    return buf.getvalue()


def compress(data: bytes, how: str) -> bytes:
    if how == "gzip":
        return gzip.compress(data, mtime=0)
    if how == "zstd":
        return zstandard.ZstdCompressor().compress(data)
    return data


class Layers:
    """Layer openers over in-memory blobs that count how often each layer is opened."""

    def __init__(self) -> None:
        self.blobs: list[bytes] = []
        self.opens: list[int] = []

    def add(self, members: Iterable[F], how: str = "gzip") -> Layers:
        return self.add_blob(compress(tar_bytes(members), how))

    def add_blob(self, blob: bytes) -> Layers:
        self.blobs.append(blob)
        self.opens.append(0)
        return self

    def openers(self) -> list[Callable[[], BinaryIO]]:
        def opener(i: int) -> Callable[[], BinaryIO]:
            def open_() -> BinaryIO:
                self.opens[i] += 1
                return io.BytesIO(self.blobs[i])

            return open_

        return [opener(i) for i in range(len(self.blobs))]


def fixture(*parts: str) -> bytes:
    return FIXTURES.joinpath(*parts).read_bytes()


def debian_layer() -> list[F]:
    """A Debian-like root: dpkg status, DEP-5 copyrights, os-release behind a symlink."""
    return [
        F("etc", kind="dir", mode=0o755),
        F("etc/os-release", kind="symlink", link="../usr/lib/os-release"),
        F("usr/lib/os-release", fixture("dpkg", "os-release")),
        F("var/lib/dpkg/status", fixture("dpkg", "status")),
        F("usr/share/doc/bash/copyright", fixture("dpkg", "bash.copyright")),
        F("usr/share/doc/zlib1g/copyright", fixture("dpkg", "zlib1g.copyright")),
        F("usr/share/doc/libc6/copyright", fixture("dpkg", "libc6.copyright")),
        # merged /usr: /lib is a link, so files under it must count once.
        F("lib", kind="symlink", link="usr/lib"),
    ]


def site_packages(prefix: str = "usr/local/lib/python3.11/site-packages") -> list[F]:
    out = []
    for dist in sorted((FIXTURES / "site-packages").iterdir()):
        out.append(F(f"{prefix}/{dist.name}/METADATA", (dist / "METADATA").read_bytes()))
    return out


def elf_with_pointer_buildinfo(
    version: str, modinfo: str, *, big_endian: bool = False, wide: bool = True
) -> bytes:
    """A minimal ELF whose `.go.buildinfo` holds the pre-Go-1.18 pointer format: the
    header points at two Go string headers (pointer, length) elsewhere in the segment."""
    order = ">" if big_endian else "<"
    ptr = "Q" if wide else "I"
    ptr_size = 8 if wide else 4
    base = 0x400000
    ehsize, phentsize, shentsize = (64, 56, 64) if wide else (52, 32, 40)
    # File layout: [ELF header][1 program header][data: buildinfo | str headers | strings]
    # [section name table][section headers: null, .go.buildinfo, .shstrtab]
    data_off = ehsize + phentsize
    data_off += (-data_off) % 16
    sentinel = b"0123456789abcdef"
    mod_bytes = sentinel + modinfo.encode() + b"\n"[: 0 if modinfo.endswith("\n") else 1] + sentinel
    ver_bytes = version.encode()
    header_size = 32
    str_headers_off = data_off + header_size
    strings_off = str_headers_off + 4 * ptr_size
    ver_addr = base + strings_off
    mod_addr = ver_addr + len(ver_bytes)
    info = b"\xff Go buildinf:" + bytes([ptr_size, 1 if big_endian else 0])
    info += struct.pack(
        order + ptr + ptr, base + str_headers_off, base + str_headers_off + 2 * ptr_size
    )
    info = info.ljust(header_size, b"\0")
    str_headers = struct.pack(order + ptr * 4, ver_addr, len(ver_bytes), mod_addr, len(mod_bytes))
    data = info + str_headers + ver_bytes + mod_bytes
    shstrtab = b"\0.go.buildinfo\0.shstrtab\0"
    shstr_off = data_off + len(data)
    sh_off = shstr_off + len(shstrtab)
    sh_off += (-sh_off) % 8
    file_size = sh_off + 3 * shentsize
    ident = b"\x7fELF" + bytes([2 if wide else 1, 2 if big_endian else 1, 1]) + b"\0" * 9
    if wide:
        ehdr = ident + struct.pack(
            order + "HHIQQQIHHHHHH",
            2,
            62,
            1,
            base,
            ehsize,
            sh_off,
            0,
            ehsize,
            phentsize,
            1,
            shentsize,
            3,
            2,
        )
        phdr = struct.pack(order + "IIQQQQQQ", 1, 6, 0, base, base, file_size, file_size, 0x1000)
    else:
        ehdr = ident + struct.pack(
            order + "HHIIIIIHHHHHH",
            2,
            3,
            1,
            base,
            ehsize,
            sh_off,
            0,
            ehsize,
            phentsize,
            1,
            shentsize,
            3,
            2,
        )
        phdr = struct.pack(order + "IIIIIIII", 1, 0, base, base, file_size, file_size, 6, 0x1000)
    fmt = "IIQQQQIIQQ" if wide else "IIIIIIIIII"
    sections = struct.pack(order + fmt, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    sections += struct.pack(order + fmt, 1, 1, 3, base + data_off, data_off, len(data), 0, 0, 16, 0)
    sections += struct.pack(order + fmt, 15, 3, 0, 0, shstr_off, len(shstrtab), 0, 0, 1, 0)
    out = bytearray(file_size)
    out[: len(ehdr)] = ehdr
    out[ehsize : ehsize + len(phdr)] = phdr
    out[data_off : data_off + len(data)] = data
    out[shstr_off : shstr_off + len(shstrtab)] = shstrtab
    out[sh_off : sh_off + len(sections)] = sections
    return bytes(out)
