"""SPDX 2.3 JSON documents for an image's packages, and the in-toto statement around one.

The document DESCRIBES one root package — the image, `primaryPackagePurpose`
CONTAINER — which CONTAINS every package found. Package URLs are `PACKAGE-MANAGER`
external references; licences are SPDX expressions (unknown ones become `LicenseRef-…`
with their text in `hasExtractedLicensingInfos`); nothing is concluded
(`licenseConcluded` NOASSERTION). `created` and `documentNamespace` derive only from the
inputs (the subject digest, the packages and the given epoch — SOURCE_DATE_EPOCH, or 0),
so an unchanged rebuild writes the same bytes.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

from bale.errors import InvalidArgument
from bale.exporters import intoto
from bale.exporters.sbom.licenses import declared
from bale.exporters.sbom.package import Package
from bale.oci.descriptor import Descriptor
from bale.oci.platform import Platform
from bale.oci.reference import Reference

PREDICATE = "https://spdx.dev/Document"
_NAMESPACE_BASE = "https://spdx.org/spdxdocs/bale"
_UUID_NAMESPACE = uuid.UUID("6ba7b811-9dad-11d1-80b4-00c04fd430c8")  # RFC 4122 URL namespace
_SPDX_ID = re.compile(r"[^A-Za-z0-9.-]+")
_SOURCES = {
    "deb": "dpkg status file",
    "apk": "apk installed database",
    "python": "python package metadata",
    "npm": "npm package manifest",
    "go-module": "go module build info",
}


def _tool() -> str:
    try:
        return f"Tool: bale-{metadata.version('bale')}"
    except metadata.PackageNotFoundError:
        return "Tool: bale"


def spdx_id(*parts: str) -> str:
    """An SPDX element id (`SPDXRef-` + letters, digits, `.` and `-`)."""
    return "SPDXRef-" + _SPDX_ID.sub("-", "-".join(p for p in parts if p)).strip("-")


def _package_id(package: Package) -> str:
    key = hashlib.sha256(f"{package.purl}\0{package.location}".encode()).hexdigest()[:16]
    return spdx_id("Package", package.kind, package.name[:64], key)


def _root(
    subject: Descriptor | None, names: Sequence[str], platform: Platform | None, name: str
) -> dict[str, Any]:
    root: dict[str, Any] = {"name": name, "SPDXID": spdx_id("Image")}
    if names:
        try:
            root["name"] = Reference.parse(names[0]).familiar()
        except InvalidArgument:
            pass
    if subject is not None:
        root["versionInfo"] = str(subject.digest)
    root.update(
        {
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": False,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
        }
    )
    if subject is not None and subject.digest.algorithm == "sha256":
        root["checksums"] = [{"algorithm": "SHA256", "checksumValue": subject.digest.hex}]
    if names and subject is not None:
        locator = intoto.image_purl(f"{names[0]}", platform)
        root["externalRefs"] = [_purl_ref(locator)]
    root["primaryPackagePurpose"] = "CONTAINER"
    return root


def _purl_ref(locator: str) -> dict[str, str]:
    return {
        "referenceCategory": "PACKAGE-MANAGER",
        "referenceType": "purl",
        "referenceLocator": locator,
    }


def _created(epoch: int) -> str:
    return datetime.fromtimestamp(max(0, epoch), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def spdx_document(
    packages: Sequence[Package],
    *,
    name: str,
    subject: Descriptor | None = None,
    subject_names: Sequence[str] = (),
    platform: Platform | None = None,
    epoch: int = 0,
) -> dict[str, Any]:
    """A valid SPDX 2.3 document (as a JSON object) of `packages` found in the image
    `subject`; `name` names the document (the image or the scan target), `epoch` is
    the creation time in seconds (SOURCE_DATE_EPOCH when set)."""
    root = _root(subject, subject_names, platform, name)
    entries: list[dict[str, Any]] = []
    relationships: list[dict[str, str]] = [
        {
            "spdxElementId": "SPDXRef-DOCUMENT",
            "relationshipType": "DESCRIBES",
            "relatedSpdxElement": root["SPDXID"],
        }
    ]
    extracted: dict[str, str] = {}
    seen: set[str] = set()
    for package in sorted(packages, key=lambda p: (p.kind, p.name, p.version, p.location)):
        element = _package_id(package)
        if element in seen:
            continue
        seen.add(element)
        expression, refs = declared(package.licenses)
        extracted.update(refs)
        entry: dict[str, Any] = {
            "name": package.name,
            "SPDXID": element,
            "versionInfo": package.version,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": False,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": expression,
            "copyrightText": "NOASSERTION",
            "externalRefs": [_purl_ref(package.purl)],
        }
        source = package.source or _SOURCES.get(package.kind, package.kind)
        if package.location:
            entry["sourceInfo"] = f"acquired package info from {source}: {package.location}"
        if package.layer:
            entry["comment"] = f"layerID: {package.layer}"
        entries.append(entry)
        relationships.append(
            {
                "spdxElementId": root["SPDXID"],
                "relationshipType": "CONTAINS",
                "relatedSpdxElement": element,
            }
        )
    seed = "\n".join(
        [str(subject.digest) if subject else "", name, *(e["SPDXID"] for e in entries)]
    )
    slug = _SPDX_ID.sub("-", name).strip("-")[:64] or "image"
    document: dict[str, Any] = {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": name,
        "documentNamespace": f"{_NAMESPACE_BASE}/{slug}-{uuid.uuid5(_UUID_NAMESPACE, seed)}",
        "creationInfo": {"created": _created(epoch), "creators": [_tool()]},
        "packages": [root, *entries],
        "relationships": relationships,
    }
    if extracted:
        document["hasExtractedLicensingInfos"] = [
            {"licenseId": ref, "extractedText": text, "name": text[:80]}
            for ref, text in sorted(extracted.items())
        ]
    return document


def sbom_statement(
    document: dict[str, Any],
    *,
    subject: Descriptor,
    subject_names: Sequence[str],
    platform: Platform,
) -> dict[str, Any]:
    """The in-toto statement BuildKit attaches an SPDX document in."""
    subjects = intoto.subjects(subject_names, platform, subject.digest)
    return intoto.statement(PREDICATE, document, subjects)
