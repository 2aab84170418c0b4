"""Alpine packages from apk's database, `lib/apk/db/installed`: one block of `K:value`
lines per package (P name, V version, A arch, L licence, o origin)."""

from __future__ import annotations

from bale.exporters.sbom.osrelease import Distro
from bale.exporters.sbom.package import Package, purl

INSTALLED = "lib/apk/db/installed"


def parse_installed(data: bytes, *, distro: Distro, location: str) -> list[Package]:
    out: list[Package] = []
    for block in data.decode("utf-8", "replace").split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if len(line) >= 2 and line[1] == ":" and line[0] not in fields:
                fields[line[0]] = line[2:].strip()
        name, version = fields.get("P", ""), fields.get("V", "")
        if not name or not version:
            continue
        out.append(
            Package(
                name=name,
                version=version,
                kind="apk",
                purl=purl(
                    "apk",
                    name,
                    version,
                    namespace=distro.vendor("alpine"),
                    qualifiers={"arch": fields.get("A", ""), "distro": distro.qualifier},
                ),
                licenses=(fields["L"],) if fields.get("L") else (),
                location=location,
                source="apk installed database",
            )
        )
    return out
