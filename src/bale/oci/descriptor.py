"""Descriptors: what a manifest or index says about the content it points at."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from bale.errors import InvalidArgument
from bale.oci.digest import Digest
from bale.oci.platform import Platform

# Sizes are Go int64 in every other implementation; larger ones are not real content.
MAX_SIZE = (1 << 63) - 1


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: Digest
    size: int
    platform: Platform | None = None
    annotations: tuple[tuple[str, str], ...] = ()
    urls: tuple[str, ...] = ()
    artifact_type: str = ""

    def __post_init__(self) -> None:
        if self.size < 0:
            raise InvalidArgument(f"descriptor {self.digest} has negative size {self.size}")

    @property
    def annotation_map(self) -> dict[str, str]:
        return dict(self.annotations)

    def annotation(self, key: str) -> str | None:
        return self.annotation_map.get(key)

    def with_annotations(self, **extra: str) -> Descriptor:
        return self.with_annotation_map({**self.annotation_map, **extra})

    def with_annotation_map(self, annotations: dict[str, str]) -> Descriptor:
        return replace(self, annotations=tuple(sorted(annotations.items())))

    def without_annotations(self) -> Descriptor:
        return replace(self, annotations=())

    @classmethod
    def from_json(cls, obj: Any) -> Descriptor:
        if not isinstance(obj, dict):
            raise InvalidArgument("malformed descriptor: expected an object")
        media_type = obj.get("mediaType")
        digest = obj.get("digest")
        size = obj.get("size")
        if not isinstance(media_type, str) or not media_type:
            raise InvalidArgument("malformed descriptor: missing mediaType")
        if not isinstance(digest, str):
            raise InvalidArgument("malformed descriptor: missing digest")
        if not isinstance(size, int) or isinstance(size, bool):
            raise InvalidArgument(f"malformed descriptor {digest}: size must be an integer")
        if size > MAX_SIZE:
            raise InvalidArgument(f"malformed descriptor {digest}: size {size} is out of range")
        plat = obj.get("platform")
        annotations = obj.get("annotations") or {}
        if not isinstance(annotations, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in annotations.items()
        ):
            raise InvalidArgument(f"malformed descriptor {digest}: annotations must map strings")
        urls = obj.get("urls") or []
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
            raise InvalidArgument(f"malformed descriptor {digest}: urls must be a list of strings")
        return cls(
            media_type=media_type,
            digest=Digest.parse(digest),
            size=size,
            platform=Platform.from_json(plat) if isinstance(plat, dict) else None,
            annotations=tuple(sorted(annotations.items())),
            urls=tuple(urls),
            artifact_type=str(obj.get("artifactType") or ""),
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": str(self.digest),
            "size": self.size,
        }
        if self.platform is not None:
            out["platform"] = self.platform.to_json()
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.urls:
            out["urls"] = list(self.urls)
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        return out


@dataclass(frozen=True)
class Blob:
    """A document together with the exact bytes that were hashed."""

    descriptor: Descriptor
    data: bytes = field(repr=False)
