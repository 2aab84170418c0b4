"""What a scanner finds: a package with its package URL, licences and where it was found."""

from __future__ import annotations

from dataclasses import dataclass

from packageurl import PackageURL


@dataclass(frozen=True)
class Package:
    """One installed package.

    `kind` names the ecosystem (`deb`, `apk`, `python`, `npm`, `go-module`); `licenses`
    are the licence statements as the package records them (mapped to SPDX when the
    SBOM is written); `location` is the path of the file it was read from, `layer` the
    layer holding that file when known."""

    name: str
    version: str
    kind: str
    purl: str
    licenses: tuple[str, ...] = ()
    location: str = ""
    layer: str = ""
    source: str = ""


def purl(
    type_: str,
    name: str,
    version: str = "",
    *,
    namespace: str = "",
    qualifiers: dict[str, str] | None = None,
) -> str:
    """A package URL in the purl spec's canonical form (type-specific name
    normalisation, percent-encoding, qualifiers sorted by key)."""
    return str(
        PackageURL(
            type=type_,
            namespace=namespace or None,
            name=name,
            version=version or None,
            qualifiers={k: v for k, v in (qualifiers or {}).items() if v} or None,
        ).to_string()
    )
