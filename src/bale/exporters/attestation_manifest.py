"""The attestation manifest: an image manifest per platform holding that platform's in-toto
statements as layers, listed in the image index with platform `unknown/unknown` and the
`vnd.docker.reference.*` annotations naming the manifest it describes.

Two shapes, as the image exporter's `oci-artifact` option selects:

- `oci-artifact=true` (the default, BuildKit ≥ 0.32): an OCI artifact —
  `artifactType: application/vnd.docker.attestation.manifest.v1+json`, the empty config
  (`application/vnd.oci.empty.v1+json`, `{}`) and a `subject` naming the platform manifest,
  so a registry with the referrers API lists it under that manifest;
- `oci-artifact=false`: the shape BuildKit wrote before — a dummy image config
  (`unknown/unknown`, the statements' digests as diff ids), no subject, and statements in
  the `Statement/v0.1` envelope, which tools of that generation expect.

Each statement layer is Go's `json.Marshal` of the statement (what BuildKit stores), with
the `in-toto.io/predicate-type` annotation.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from bale.exporters import intoto
from bale.oci import mediatype
from bale.oci.descriptor import Descriptor
from bale.oci.manifest import ATTESTATION_MANIFEST, ATTESTATION_REF, ATTESTATION_TYPE, Manifest
from bale.oci.platform import Platform
from bale.store.local import Lease, Store

ARTIFACT_TYPE = "application/vnd.docker.attestation.manifest.v1+json"
PREDICATE_ANNOTATION = "in-toto.io/predicate-type"
UNKNOWN = Platform("unknown", "unknown")
EMPTY_JSON = b"{}"


def _legacy_config(layers: Sequence[Descriptor]) -> bytes:
    # BuildKit's attestationsConfig: an ocispec Image for unknown/unknown, marshalled by Go
    # (field order as declared; `config` is a struct, so it is never omitted).
    return json.dumps(
        {
            "architecture": UNKNOWN.architecture,
            "os": UNKNOWN.os,
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [str(layer.digest) for layer in layers]},
        },
        separators=(",", ":"),
    ).encode()


def write_attestation_manifest(
    store: Store,
    lease: Lease,
    subject: Descriptor,
    statements: Sequence[Mapping[str, Any]],
    *,
    oci_artifact: bool = True,
) -> Descriptor:
    """Store `statements` (in-toto statements as JSON objects) as one attestation manifest
    for the platform manifest `subject`; returns its descriptor as the index lists it."""
    layers = []
    for statement in statements:
        if not oci_artifact:
            statement = {**statement, "_type": intoto.STATEMENT_V01}
        data = intoto.statement_bytes(statement)
        digest, _ = store.put_blob(data, lease)
        layers.append(
            Descriptor(
                mediatype.IN_TOTO,
                digest,
                len(data),
                annotations=((PREDICATE_ANNOTATION, str(statement["predicateType"])),),
            )
        )
    if oci_artifact:
        digest, _ = store.put_blob(EMPTY_JSON, lease)
        config = Descriptor(mediatype.OCI_EMPTY, digest, len(EMPTY_JSON))
        manifest = Manifest(
            config=config,
            layers=tuple(layers),
            subject=Descriptor(subject.media_type, subject.digest, subject.size),
            artifact_type=ARTIFACT_TYPE,
        )
    else:
        data = _legacy_config(layers)
        digest, _ = store.put_blob(data, lease)
        config = Descriptor(mediatype.OCI_CONFIG, digest, len(data))
        manifest = Manifest(config=config, layers=tuple(layers))
    return store.put_document(
        manifest.encode(),
        mediatype.OCI_MANIFEST,
        lease,
        platform=UNKNOWN,
        annotations={ATTESTATION_TYPE: ATTESTATION_MANIFEST, ATTESTATION_REF: str(subject.digest)},
    )


def read_statements(store: Store, attestation: Descriptor) -> list[dict[str, Any]]:
    """The statements an attestation manifest of either shape holds, in layer order."""
    manifest = store.manifest(attestation)
    out = []
    for layer in manifest.layers:
        if layer.media_type == mediatype.IN_TOTO:
            out.append(json.loads(store.content.read_bytes(layer.digest, layer.size)))
    return out
