"""Go modules compiled into ELF executables, read as Go's `debug/buildinfo` reads them.

The linker leaves a 32-byte header, 16-byte aligned, at the start of the `.go.buildinfo`
section (or of the first writable, non-executable segment): the magic
`\\xff Go buildinf:`, the pointer size, a flags byte, then either two pointers to Go
string headers for the toolchain version and the module info (before Go 1.18) or, with
flag bit 2 set, the two strings inline as uvarint-length-prefixed bytes (Go ≥ 1.18).
The module info is `runtime/debug.BuildInfo`'s text (`path`, `mod`, `dep`, `=>`,
`build` lines) between two 16-byte sentinels. Only the file's bytes are read — nothing
is run — and every read is bounded by the file's own size.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Protocol

from bale.exporters.sbom.package import Package, purl

MAGIC = b"\xff Go buildinf:"
ELF_MAGIC = b"\x7fELF"
_SEARCH = 64 * 1024
_ALIGN = 16
_MAX_STRING = 4 << 20
_MAX_HEADERS = 4096
_PT_LOAD = 1
_PF_X, _PF_W = 1, 2


class RandomAccess(Protocol):
    """A file read at offsets (bytes, a spooled temporary file, …)."""

    @property
    def size(self) -> int: ...

    def read_at(self, offset: int, size: int) -> bytes: ...


@dataclass(frozen=True)
class BytesAccess:
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)

    def read_at(self, offset: int, size: int) -> bytes:
        return self.data[offset : offset + size] if offset >= 0 else b""


@dataclass(frozen=True)
class Module:
    path: str
    version: str
    sum: str = ""
    replace: Module | None = None


@dataclass(frozen=True)
class BuildInfo:
    go_version: str
    path: str = ""
    main: Module | None = None
    deps: tuple[Module, ...] = ()
    settings: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class _Segment:
    type: int
    flags: int
    offset: int
    vaddr: int
    filesz: int


class _Elf:
    """The little of ELF the build info needs: sections' names and addresses, segments."""

    def __init__(self, f: RandomAccess) -> None:
        self.f = f
        ident = f.read_at(0, 16)
        if len(ident) < 16 or not ident.startswith(ELF_MAGIC) or ident[4] not in (1, 2):
            raise ValueError("not an ELF file")
        self.wide = ident[4] == 2
        self.order = "<" if ident[5] != 2 else ">"
        head = f.read_at(0, 64 if self.wide else 52)
        if self.wide:
            fields = struct.unpack(self.order + "16xHHIQQQIHHHHHH", head)
        else:
            fields = struct.unpack(self.order + "16xHHIIIIIHHHHHH", head)
        phoff, shoff = fields[4], fields[5]
        phentsize, phnum, shentsize, shnum, shstrndx = fields[8:13]
        self.segments = self._segments(phoff, phentsize, phnum)
        self.sections = self._sections(shoff, shentsize, shnum, shstrndx)

    def _table(self, offset: int, entsize: int, count: int, fmt: str) -> list[tuple[int, ...]]:
        want = struct.calcsize(self.order + fmt)
        if offset <= 0 or entsize < want or count <= 0:
            return []
        count = min(count, _MAX_HEADERS, max(0, (self.f.size - offset) // entsize))
        raw = self.f.read_at(offset, entsize * count)
        return [
            struct.unpack_from(self.order + fmt, raw, i * entsize)
            for i in range(len(raw) // entsize)
        ]

    def _segments(self, offset: int, entsize: int, count: int) -> list[_Segment]:
        if self.wide:
            rows = self._table(offset, entsize, count, "IIQQQQQQ")
            return [_Segment(r[0], r[1], r[2], r[3], r[5]) for r in rows]
        rows = self._table(offset, entsize, count, "IIIIIIII")
        return [_Segment(r[0], r[6], r[1], r[2], r[4]) for r in rows]

    def _sections(
        self, offset: int, entsize: int, count: int, names: int
    ) -> dict[str, tuple[int, int]]:
        fmt = "IIQQQQIIQQ" if self.wide else "IIIIIIIIII"
        rows = self._table(offset, entsize, count or 1, fmt)
        if not rows:
            return {}
        if count == 0:  # extended numbering keeps the real count in section 0
            rows = self._table(offset, entsize, rows[0][5], fmt)
        if names == 0xFFFF and rows:
            names = rows[0][6]
        if not 0 <= names < len(rows):
            return {}
        strtab = self.f.read_at(rows[names][4], min(rows[names][5], 1 << 20))
        out: dict[str, tuple[int, int]] = {}
        for row in rows:
            start = row[0]
            end = strtab.find(b"\0", start)
            name = strtab[start : end if end >= 0 else None].decode("latin-1")
            out.setdefault(name, (row[3], row[5]))  # (address, size)
        return out

    def read_data(self, addr: int, size: int) -> bytes:
        """Up to `size` bytes at virtual address `addr` (Go's elfExe.ReadData)."""
        for seg in self.segments:
            if seg.vaddr <= addr <= seg.vaddr + seg.filesz - 1:
                n = min(size, seg.vaddr + seg.filesz - addr)
                return self.f.read_at(seg.offset + (addr - seg.vaddr), n)
        return b""

    def data_start(self) -> int:
        if ".go.buildinfo" in self.sections:
            return self.sections[".go.buildinfo"][0]
        for seg in self.segments:
            if seg.type == _PT_LOAD and seg.flags & (_PF_X | _PF_W) == _PF_W:
                return seg.vaddr
        return 0


def _uvarint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    for i in range(pos, min(len(data), pos + 10)):
        byte = data[i]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, i + 1
        shift += 7
    return -1, pos


def _inline_string(data: bytes, pos: int) -> tuple[str, int]:
    length, start = _uvarint(data, pos)
    if length < 0 or length >= len(data) - start:
        return "", len(data)
    return data[start : start + length].decode("utf-8", "replace"), start + length


def read_raw(f: RandomAccess) -> tuple[str, str] | None:
    """(Go version, module info text) of a Go executable; None for any other file."""
    try:
        elf = _Elf(f)
    except (ValueError, struct.error):
        return None
    data = elf.read_data(elf.data_start(), _SEARCH)
    pos = 0
    while True:
        found = data.find(MAGIC, pos)
        if found < 0 or len(data) - found < 32:
            return None
        if found % _ALIGN == 0:
            data = data[found:]
            break
        pos = found + 1
    ptr_size, flags = data[14], data[15]
    if flags & 2:
        # Go ≥ 1.18: the strings follow the header, each prefixed by its uvarint length.
        version, pos = _inline_string(data, 32)
        mod, _ = _inline_string(data, pos)
    else:
        if ptr_size not in (4, 8):
            return None
        order = ">" if flags != 0 else "<"
        fmt = order + ("I" if ptr_size == 4 else "Q")

        def read_string(addr: int) -> str:
            header = elf.read_data(addr, 2 * ptr_size)
            if len(header) < 2 * ptr_size:
                return ""
            (where,) = struct.unpack_from(fmt, header, 0)
            (length,) = struct.unpack_from(fmt, header, ptr_size)
            if length > _MAX_STRING:
                return ""
            text = elf.read_data(where, length)
            return text.decode("utf-8", "replace") if len(text) == length else ""

        version = read_string(struct.unpack_from(fmt, data, 16)[0])
        mod = read_string(struct.unpack_from(fmt, data, 16 + ptr_size)[0])
    if not version:
        return None
    # The module info sits between two 16-byte sentinels (cmd/go's infoStart/infoEnd).
    mod = mod[16:-16] if len(mod) >= 33 and mod[-17] == "\n" else ""
    return version, mod


def _module(columns: list[str]) -> Module | None:
    if len(columns) not in (2, 3):
        return None
    return Module(columns[0], columns[1], columns[2] if len(columns) == 3 else "")


def parse_modinfo(go_version: str, text: str) -> BuildInfo:
    """runtime/debug.ParseBuildInfo, lenient: a malformed line is skipped, not fatal."""
    path = ""
    main: Module | None = None
    deps: list[Module] = []
    settings: list[tuple[str, str]] = []
    last: str = ""  # "main" or "dep": what a `=>` line replaces
    for line in text.split("\n"):
        key, _, rest = line.partition("\t")
        columns = rest.split("\t")
        if key == "path":
            path = rest
        elif key == "mod":
            main, last = _module(columns), "main"
        elif key == "dep":
            module = _module(columns)
            if module is not None:
                deps.append(module)
            last = "dep" if module is not None else ""
        elif key == "=>" and len(columns) == 3 and last:
            replacement = Module(columns[0], columns[1], columns[2])
            if last == "main" and main is not None:
                main = Module(main.path, main.version, main.sum, replacement)
            elif last == "dep" and deps:
                old = deps[-1]
                deps[-1] = Module(old.path, old.version, old.sum, replacement)
            last = ""
        elif key == "build" and "=" in rest:
            name, _, value = rest.partition("=")
            settings.append((name, value))
    return BuildInfo(go_version, path, main, tuple(deps), tuple(settings))


def read_buildinfo(f: RandomAccess) -> BuildInfo | None:
    raw = read_raw(f)
    if raw is None:
        return None
    return parse_modinfo(*raw)


def _golang_purl(path: str, version: str) -> str:
    namespace, _, name = path.rpartition("/")
    return purl("golang", name, version, namespace=namespace)


def packages(info: BuildInfo, *, location: str) -> list[Package]:
    """The main module, each dependency as it was compiled (a replacement's path and
    version when replaced), and the Go standard library."""
    out: list[Package] = []

    def add(module: Module) -> None:
        used = module
        if module.replace is not None:
            # A replacement by a local directory has no version: the code is unversioned.
            local = not module.replace.version
            used = Module(module.path, "(devel)") if local else module.replace
        version = "" if used.version == "(devel)" else used.version
        out.append(
            Package(
                name=used.path,
                version=used.version,
                kind="go-module",
                purl=_golang_purl(used.path, version),
                location=location,
                source="go module build info",
            )
        )

    if info.main is not None and info.main.path:
        add(info.main)
    for dep in info.deps:
        add(dep)
    go_version = info.go_version.split()[0] if info.go_version.split() else ""
    if go_version.startswith("go"):
        out.append(
            Package(
                name="stdlib",
                version=go_version,
                kind="go-module",
                purl=purl("golang", "stdlib", go_version[2:]),
                location=location,
                source="go module build info",
            )
        )
    return out
