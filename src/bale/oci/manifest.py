"""Image manifests and indexes (OCI written; Docker schema 2 read)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bale.errors import InvalidArgument
from bale.oci import canonical, mediatype
from bale.oci.descriptor import Descriptor
from bale.oci.digest import Digest

# Annotations that say what a manifest in an index is (BuildKit's attestation layout).
REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_IMAGE_NAME = "io.containerd.image.name"
ATTESTATION_TYPE = "vnd.docker.reference.type"
ATTESTATION_REF = "vnd.docker.reference.digest"
ATTESTATION_MANIFEST = "attestation-manifest"


def _media_type(obj: dict[str, Any], fallback: str) -> str:
    value = obj.get("mediaType", fallback)
    if not isinstance(value, str):
        raise InvalidArgument("malformed document: mediaType must be a string")
    return value


def _schema_version(obj: dict[str, Any], what: str) -> None:
    if obj.get("schemaVersion") != 2:
        raise InvalidArgument(f"unsupported {what}: schemaVersion must be 2")


@dataclass(frozen=True)
class Manifest:
    config: Descriptor
    layers: tuple[Descriptor, ...]
    media_type: str = mediatype.OCI_MANIFEST
    annotations: tuple[tuple[str, str], ...] = ()
    subject: Descriptor | None = None
    artifact_type: str = ""

    @classmethod
    def parse(cls, data: bytes) -> Manifest:
        obj = canonical.loads_object(data, "manifest")
        _schema_version(obj, "manifest")
        media_type = _media_type(obj, mediatype.OCI_MANIFEST)
        if not mediatype.is_manifest(media_type):
            raise InvalidArgument(f"not an image manifest: media type {media_type!r}")
        layers = obj.get("layers")
        if not isinstance(layers, list):
            raise InvalidArgument("malformed manifest: 'layers' must be a list")
        annotations = obj.get("annotations") or {}
        if not isinstance(annotations, dict):
            raise InvalidArgument("malformed manifest: annotations must be an object")
        subject = obj.get("subject")
        return cls(
            config=Descriptor.from_json(obj.get("config")),
            layers=tuple(Descriptor.from_json(layer) for layer in layers),
            media_type=media_type,
            annotations=tuple(sorted((str(k), str(v)) for k, v in annotations.items())),
            subject=Descriptor.from_json(subject) if subject is not None else None,
            artifact_type=str(obj.get("artifactType") or ""),
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": self.media_type,
            "config": self.config.to_json(),
            "layers": [layer.to_json() for layer in self.layers],
        }
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.subject is not None:
            out["subject"] = self.subject.to_json()
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        return out

    def encode(self) -> bytes:
        return canonical.dumps(self.to_json())

    def children(self) -> tuple[Descriptor, ...]:
        return (self.config, *self.layers)


@dataclass(frozen=True)
class Index:
    manifests: tuple[Descriptor, ...]
    media_type: str = mediatype.OCI_INDEX
    annotations: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, data: bytes) -> Index:
        obj = canonical.loads_object(data, "index")
        _schema_version(obj, "index")
        media_type = _media_type(obj, mediatype.OCI_INDEX)
        if not mediatype.is_index(media_type):
            raise InvalidArgument(f"not an image index: media type {media_type!r}")
        manifests = obj.get("manifests")
        if not isinstance(manifests, list):
            raise InvalidArgument("malformed index: 'manifests' must be a list")
        annotations = obj.get("annotations") or {}
        if not isinstance(annotations, dict):
            raise InvalidArgument("malformed index: annotations must be an object")
        return cls(
            manifests=tuple(Descriptor.from_json(m) for m in manifests),
            media_type=media_type,
            annotations=tuple(sorted((str(k), str(v)) for k, v in annotations.items())),
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": self.media_type,
            "manifests": [m.to_json() for m in self.manifests],
        }
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out

    def encode(self) -> bytes:
        return canonical.dumps(self.to_json())

    def children(self) -> tuple[Descriptor, ...]:
        return self.manifests

    def image_manifests(self) -> tuple[Descriptor, ...]:
        """Platform manifests, without attestation manifests."""
        return tuple(m for m in self.manifests if not is_attestation(m))

    def attestations(self) -> tuple[Descriptor, ...]:
        return tuple(m for m in self.manifests if is_attestation(m))


def is_attestation(desc: Descriptor) -> bool:
    return desc.annotation(ATTESTATION_TYPE) == ATTESTATION_MANIFEST


def sniff_media_type(data: bytes) -> str:
    """Media type of a manifest or index document that may not declare one."""
    obj = canonical.loads_object(data, "manifest")
    declared = obj.get("mediaType")
    if isinstance(declared, str) and declared:
        return declared
    if "manifests" in obj:
        return mediatype.OCI_INDEX
    if "config" in obj and "layers" in obj:
        return mediatype.OCI_MANIFEST
    raise InvalidArgument("unknown document: neither a manifest nor an index")


def descriptor_for(data: bytes, media_type: str, **kwargs: Any) -> Descriptor:
    return Descriptor(media_type=media_type, digest=Digest.of(data), size=len(data), **kwargs)
