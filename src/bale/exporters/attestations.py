"""Attestations as BuildKit attaches them: an in-toto statement per platform manifest, held
in an "attestation manifest" that the index lists with platform unknown/unknown and the
`vnd.docker.reference.*` annotations pointing at the manifest it describes."""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bale.oci import canonical, mediatype
from bale.oci.config import ImageConfig
from bale.oci.descriptor import Descriptor
from bale.oci.digest import Digest
from bale.oci.manifest import ATTESTATION_MANIFEST, ATTESTATION_REF, ATTESTATION_TYPE, Manifest
from bale.oci.platform import Platform
from bale.oci.reference import Reference
from bale.store.local import Lease, Store

STATEMENT_TYPE = "https://in-toto.io/Statement/v0.1"
SLSA_PROVENANCE = "https://slsa.dev/provenance/v0.2"
SPDX = "https://spdx.dev/Document"
PREDICATE_ANNOTATION = "in-toto.io/predicate-type"
UNKNOWN = Platform("unknown", "unknown")


@dataclass(frozen=True)
class ProvenanceInput:
    """What a provenance statement records about one platform's build."""

    platform: Platform
    manifest: Descriptor
    materials: tuple[tuple[str, str], ...]  # (image reference, resolved digest)
    build_args: tuple[tuple[str, str], ...]
    dockerfile: str


def _purl(ref: str, platform: Platform | None) -> str:
    parsed = Reference.parse(ref)
    name = parsed.familiar_name
    version = parsed.tag or (str(parsed.digest) if parsed.digest else "latest")
    purl = f"pkg:docker/{name}@{urllib.parse.quote(version, safe='')}"
    if platform is not None:
        purl += "?platform=" + urllib.parse.quote(str(platform), safe="")
    return purl


def provenance(item: ProvenanceInput, subject_name: str) -> dict[str, Any]:
    """A SLSA v0.2 provenance statement in BuildKit's `mode=min` shape."""
    materials = []
    for ref, digest in item.materials:
        algorithm, _, hexpart = digest.partition(":")
        materials.append({"uri": _purl(ref, item.platform), "digest": {algorithm: hexpart}})
    return {
        "_type": STATEMENT_TYPE,
        "predicateType": SLSA_PROVENANCE,
        "subject": [
            {
                "name": subject_name,
                "digest": {item.manifest.digest.algorithm: item.manifest.digest.hex},
            }
        ],
        "predicate": {
            "builder": {"id": ""},
            "buildType": "https://mobyproject.org/buildkit@v1",
            "materials": materials,
            "invocation": {
                "configSource": {"entryPoint": item.dockerfile},
                "parameters": {
                    "frontend": "dockerfile.v0",
                    "args": {f"build-arg:{k}": v for k, v in item.build_args},
                    "locals": [{"name": "context"}, {"name": "dockerfile"}],
                },
                "environment": {"platform": str(item.platform)},
            },
            # No build times: an unchanged rebuild keeps its image digest, attestations included.
            "metadata": {
                "completeness": {"parameters": False, "environment": True, "materials": False},
                "reproducible": False,
                "https://mobyproject.org/buildkit@v1#metadata": {},
            },
        },
    }


def sbom(
    platform: Platform,
    subject: Descriptor,
    rootfs_packages: list[tuple[str, str]],
    subject_name: str,
) -> dict[str, Any]:
    """An SPDX 2.3 document listing the packages found in the image's package databases."""
    packages = [
        {
            "name": name,
            "SPDXID": f"SPDXRef-Package-{i}",
            "versionInfo": version,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": False,
        }
        for i, (name, version) in enumerate(rootfs_packages, 1)
    ]
    return {
        "_type": STATEMENT_TYPE,
        "predicateType": SPDX,
        "subject": [
            {"name": subject_name, "digest": {subject.digest.algorithm: subject.digest.hex}}
        ],
        "predicate": {
            "spdxVersion": "SPDX-2.3",
            "dataLicense": "CC0-1.0",
            "SPDXID": "SPDXRef-DOCUMENT",
            "name": f"sbom-{platform.dirname}",
            "documentNamespace": f"https://bale.invalid/spdx/{subject.digest.hex}",
            "creationInfo": {"creators": ["Tool: bale"], "created": "1970-01-01T00:00:00Z"},
            "packages": packages,
        },
    }


def attestation_manifest(
    store: Store, lease: Lease, subject: Descriptor, statements: list[dict[str, Any]]
) -> Descriptor:
    """Store the statements as in-toto layers of one attestation manifest for `subject`."""
    layers = []
    for statement in statements:
        data = canonical.dumps(statement)
        digest, _ = store.put_blob(data, lease)
        layers.append(
            Descriptor(
                mediatype.IN_TOTO,
                digest,
                len(data),
                annotations=((PREDICATE_ANNOTATION, str(statement["predicateType"])),),
            )
        )
    config = ImageConfig(
        platform=UNKNOWN, diff_ids=tuple(Digest.of(_layer_bytes(store, x)) for x in layers)
    )
    config_desc = store.put_document(config.encode(), mediatype.OCI_CONFIG, lease)
    manifest = Manifest(config=config_desc, layers=tuple(layers))
    return store.put_document(
        manifest.encode(),
        mediatype.OCI_MANIFEST,
        lease,
        platform=UNKNOWN,
        annotations={ATTESTATION_TYPE: ATTESTATION_MANIFEST, ATTESTATION_REF: str(subject.digest)},
    )


def _layer_bytes(store: Store, desc: Descriptor) -> bytes:
    return store.content.read_bytes(desc.digest, desc.size)


def dpkg_packages(status: str) -> list[tuple[str, str]]:
    """(name, version) of installed Debian packages, from a dpkg status file's text."""
    out = []
    for block in status.split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in block.splitlines() if ": " in line and line[0] != " "
        )
        if fields.get("Status", "").endswith(" installed") and "Package" in fields:
            out.append((fields["Package"], fields.get("Version", "")))
    return sorted(out)


def apk_packages(installed: str) -> list[tuple[str, str]]:
    """(name, version) of installed Alpine packages, from apk's `installed` database text."""
    out = []
    for block in installed.split("\n\n"):
        fields = {line[:1]: line[2:] for line in block.splitlines() if line[1:2] == ":"}
        if "P" in fields:
            out.append((fields["P"], fields.get("V", "")))
    return sorted(out)


# Package databases an SBOM reads, by their path in the image.
PACKAGE_DATABASES: dict[str, Callable[[str], list[tuple[str, str]]]] = {
    "var/lib/dpkg/status": dpkg_packages,
    "lib/apk/db/installed": apk_packages,
}
