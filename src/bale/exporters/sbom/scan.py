"""Run every scanner over a tree in one read of the files they need.

The index says which files matter (package databases, metadata, lockfiles, executables);
their contents are then read once, layer by layer, and handed to the pure parsers.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO

from bale.exporters.sbom import apk, dpkg, golang, npm, osrelease, python
from bale.exporters.sbom.osrelease import Distro
from bale.exporters.sbom.package import Package
from bale.exporters.sbom.tree import READ_ERRORS, Entry, FileTree, Limits, read_capped
from bale.store.compression import Readable

CORE = "sbom"
EXTRA_PREFIX = "sbom-"
_MIN_BINARY = 1024
_SPOOL_IN_MEMORY = 8 << 20


@dataclass(frozen=True)
class ScanResult:
    packages: tuple[Package, ...]
    distro: Distro = field(default_factory=Distro)
    problems: tuple[str, ...] = ()


class _SpooledAccess:
    def __init__(self, handle: IO[bytes], size: int) -> None:
        self._handle = handle
        self._size = size

    @property
    def size(self) -> int:
        return self._size

    def read_at(self, offset: int, size: int) -> bytes:
        if offset < 0 or offset >= self._size or size <= 0:
            return b""
        self._handle.seek(offset)
        return self._handle.read(min(size, self._size - offset))


def _go_binary(stream: Readable, limit: int) -> golang.BuildInfo | None:
    head = stream.read(4)
    if head != golang.ELF_MAGIC:
        return None
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY) as spool:
        spool.write(head)
        total = len(head)
        while chunk := stream.read(1 << 20):
            total += len(chunk)
            if total > limit:
                return None
            spool.write(chunk)
        return golang.read_buildinfo(_SpooledAccess(spool, total))


def scan(tree: FileTree, *, limits: Limits | None = None) -> ScanResult:
    """Every package found in the tree, sorted, with the problems met on the way."""
    limits = limits or Limits()
    roles: dict[Entry, set[str]] = {}

    def want(entry: Entry | None, role: str) -> None:
        if entry is not None and entry.kind == "file":
            roles.setdefault(entry, set()).add(role)

    for path in osrelease.OS_RELEASE_PATHS:
        found = tree.resolve(path)
        if found is not None and found.kind == "file":
            want(found, "os-release:" + path)
            break
    want(tree.resolve(dpkg.STATUS), "dpkg")
    for entry in tree.files_matching(dpkg.STATUS_D):
        if not entry.path.endswith((".md5sums", ".list")):
            want(entry, "dpkg")
    for entry in tree.files_matching(dpkg.COPYRIGHT):
        want(entry, "copyright")
    want(tree.resolve(apk.INSTALLED), "apk")
    for entry in tree.files_matching(python.METADATA):
        want(entry, "python")
    for entry in tree.files_matching(npm.PACKAGE_JSON):
        want(entry, "npm")
    for entry in tree.files_matching(npm.LOCKFILE):
        want(entry, "npm-lock")
    for entry in tree.entries():
        if entry.executable and _MIN_BINARY <= entry.size <= limits.max_binary:
            want(entry, "go")
    present = {e.path for e in tree.entries() if e.kind == "file"}

    problems: list[str] = []
    distro = Distro()
    databases: list[tuple[str, str, bytes]] = []
    licenses: dict[str, tuple[str, ...]] = {}
    found_packages: list[Package] = []
    locked: list[tuple[str, Package, bool]] = []
    for entry, stream in tree.open_each(roles):
        kinds = roles[entry]
        origin = tree.origin(entry)
        location = "/" + entry.path
        try:
            if kinds == {"go"}:
                info = _go_binary(stream, limits.max_binary)
                if info is not None:
                    found_packages += _at(golang.packages(info, location=location), origin)
                continue
            data = read_capped(stream, limits.max_file)
        except READ_ERRORS as exc:
            problems.append(f"{location}: {exc}")
            continue
        if data is None:
            problems.append(f"{location}: larger than {limits.max_file} bytes, skipped")
            continue
        for kind in sorted(kinds):
            if kind.startswith("os-release:"):
                distro = osrelease.parse(data)
            elif kind in ("dpkg", "apk"):
                databases.append((kind, location, data))
            elif kind == "copyright":
                name = entry.path.split("/")[-2]
                licenses[name] = dpkg.copyright_licenses(data)
            elif kind == "python":
                dist = python.parse_metadata(data, location=location)
                found_packages += _at([dist] if dist else [], origin)
            elif kind == "npm":
                module = npm.parse_package_json(data, location=location)
                found_packages += _at([module] if module else [], origin)
            elif kind == "npm-lock":
                locked += [
                    (p, _at([pkg], origin)[0], dev)
                    for p, pkg, dev in npm.parse_lockfile(data, location=location)
                ]
    for kind, location, data in databases:
        origin = next((tree.origin(e) for e in roles if "/" + e.path == location), "")
        if kind == "dpkg":
            parsed = dpkg.parse_status(data, distro=distro, location=location, licenses=licenses)
        else:
            parsed = apk.parse_installed(data, distro=distro, location=location)
        found_packages += _at(parsed, origin)
    # A locked package that is installed beside its lockfile is already counted there;
    # one that is absent counts unless it is only a development dependency.
    found_packages += [p for path, p, dev in locked if path.lstrip("/") not in present and not dev]
    unique = {(p.purl, p.location): p for p in found_packages}
    ordered = sorted(unique.values(), key=lambda p: (p.kind, p.name, p.version, p.location))
    return ScanResult(tuple(ordered), distro, tuple(tree.problems + problems[:50]))


def _at(found: list[Package], origin: str) -> list[Package]:
    return [dataclasses.replace(p, layer=origin) if origin else p for p in found]


def scan_targets(
    core: FileTree, extras: Mapping[str, FileTree] | None = None, *, limits: Limits | None = None
) -> dict[str, ScanResult]:
    """One scan per target, named as BuildKit names its SBOM files: `sbom` for the
    image, `sbom-NAME` for each extra tree.

    BuildKit's Dockerfile frontend adds extra trees on request, through two build
    arguments that only steer the scanner (they are never visible to the build):

    - `BUILDKIT_SBOM_SCAN_CONTEXT=true` (in the final stage, or globally) scans the build
      context too, as the extra target `context`;
    - `BUILDKIT_SBOM_SCAN_STAGE=true` in a stage, or `=NAME[,NAME…]` globally, scans
      that built stage's filesystem too, as the extra target named after the stage.

    Either may be `true`, `false` or a comma list of stage names; a stage that is not
    built is never scanned. The caller resolves those arguments and passes the trees
    (`LayeredTree` for a stage's layers, `DirectoryTree` for the context) as `extras`.
    """
    results = {CORE: scan(core, limits=limits)}
    for name in sorted(extras or {}):
        results[EXTRA_PREFIX + name] = scan((extras or {})[name], limits=limits)
    return results
