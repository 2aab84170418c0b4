"""The distribution an image is built on, from `etc/os-release` (os-release(5))."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

OS_RELEASE_PATHS = ("etc/os-release", "usr/lib/os-release")


@dataclass(frozen=True)
class Distro:
    id: str = ""
    version_id: str = ""
    codename: str = ""
    id_like: tuple[str, ...] = ()

    @property
    def qualifier(self) -> str:
        """The purl `distro` qualifier: `debian-12`, `alpine-3.19.1`."""
        if not self.id:
            return ""
        return f"{self.id}-{self.version_id}" if self.version_id else self.id

    def vendor(self, family: str) -> str:
        """The purl namespace: this distro when it is `family` or derives from it
        (ubuntu from debian, wolfi from alpine), else `family` itself."""
        if self.id and (self.id == family or family in self.id_like):
            return self.id
        return family


def parse(data: bytes) -> Distro:
    """`KEY=value` lines with shell quoting; unknown or malformed lines are skipped."""
    fields: dict[str, str] = {}
    for raw in data.decode("utf-8", "replace").splitlines()[:200]:
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        try:
            words = shlex.split(value)
        except ValueError:
            continue
        fields[key.strip()] = words[0] if words else ""
    return Distro(
        id=fields.get("ID", "").lower(),
        version_id=fields.get("VERSION_ID", ""),
        codename=fields.get("VERSION_CODENAME", ""),
        id_like=tuple(fields.get("ID_LIKE", "").lower().split()),
    )
