"""Debian packages from dpkg's database: `var/lib/dpkg/status`, and one file per package
in `var/lib/dpkg/status.d/` as distroless images keep it; licences from the
machine-readable `usr/share/doc/PACKAGE/copyright` files (DEP-5 `License:` fields)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from bale.exporters.sbom.osrelease import Distro
from bale.exporters.sbom.package import Package, purl

STATUS = "var/lib/dpkg/status"
STATUS_D = re.compile(r"^var/lib/dpkg/status\.d/[^/]+$")
COPYRIGHT = re.compile(r"^usr/share/doc/([^/]+)/copyright$")
_DEP5 = re.compile(rb"^Format:\s*\S*copyright-format", re.IGNORECASE | re.MULTILINE)


def stanzas(text: str) -> Iterator[dict[str, str]]:
    """Each paragraph of a deb822 control file as {field: value}; a continuation line
    belongs to the field above it."""
    fields: dict[str, str] = {}
    last = ""
    for line in text.splitlines():
        if not line.strip():
            if fields:
                yield fields
            fields, last = {}, ""
        elif line[0] in " \t":
            if last:
                fields[last] += "\n" + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            last = key.strip()
            fields[last] = value.strip()
    if fields:
        yield fields


def _installed(fields: dict[str, str]) -> bool:
    status = fields.get("Status")
    # status.d entries carry no Status field: each file is an installed package.
    return status is None or status.split()[-1:] == ["installed"]


def parse_status(
    data: bytes,
    *,
    distro: Distro,
    location: str,
    licenses: dict[str, tuple[str, ...]] | None = None,
) -> list[Package]:
    """The installed packages of one status file."""
    licenses = licenses or {}
    out: list[Package] = []
    for fields in stanzas(data.decode("utf-8", "replace")):
        name, version = fields.get("Package", ""), fields.get("Version", "")
        if not name or not version or not _installed(fields):
            continue
        arch = fields.get("Architecture", "")
        out.append(
            Package(
                name=name,
                version=version,
                kind="deb",
                purl=purl(
                    "deb",
                    name,
                    version,
                    namespace=distro.vendor("debian"),
                    qualifiers={"arch": arch, "distro": distro.qualifier},
                ),
                licenses=licenses.get(name, ()),
                location=location,
                source="dpkg status file",
            )
        )
    return out


def copyright_licenses(data: bytes) -> tuple[str, ...]:
    """The distinct `License:` short names of a machine-readable copyright file, in the
    order they first appear; nothing for a free-form one."""
    if not _DEP5.search(data[:4096]):
        return ()
    seen: list[str] = []
    for line in data.decode("utf-8", "replace").splitlines():
        if line.startswith("License:"):
            name = line[len("License:") :].strip()
            if name and name not in seen:
                seen.append(name)
    return tuple(seen)
