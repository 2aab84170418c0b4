"""The `-o` attributes each exporter takes, as BuildKit's exporters read them, checked before
any step runs: an unknown key or a bad value is an error naming it.

    parse_export_options(spec) -> ExportOptions

Image outputs (image, registry, oci, docker) take the image-commit options (compression,
media types, annotations, timestamps); local and tar take `platform-split`.
"""

from __future__ import annotations

from dataclasses import dataclass

from bale.errors import InvalidArgument
from bale.oci.annotations import (
    INDEX_DESCRIPTOR,
    AnnotationSpec,
    parse_exporter_key,
)

COMPRESSIONS = ("uncompressed", "gzip", "zstd", "estargz")
# Levels each compression takes (gzip and estargz are deflate, zstd has its own range).
LEVELS = {"gzip": (0, 9), "estargz": (0, 9), "zstd": (0, 22), "uncompressed": (0, 0)}

_COMMIT = frozenset(
    {
        "name",
        "compression",
        "compression-level",
        "force-compression",
        "oci-mediatypes",
        "oci-artifact",
        "rewrite-timestamp",
        "buildinfo",
        "buildinfo-attrs",
    }
)
_PUSHING = frozenset({"push", "push-by-digest", "insecure", "registry.insecure"})
KEYS: dict[str, frozenset[str]] = {
    "image": _COMMIT | _PUSHING | {"unpack", "store", "name-canonical", "dangling-name-prefix"},
    "registry": _COMMIT | _PUSHING | {"unpack", "store", "name-canonical", "dangling-name-prefix"},
    "oci": _COMMIT | {"dest", "tar"},
    "docker": _COMMIT | {"dest", "tar", "context"},
    "local": frozenset({"dest", "platform-split"}),
    "tar": frozenset({"dest", "platform-split"}),
}
# Keys bale reads but whose effect does not apply here (said in docs/build.md).
_IGNORED = frozenset({"buildinfo", "buildinfo-attrs", "context", "insecure", "registry.insecure"})


@dataclass(frozen=True)
class ImageFormat:
    """What changes the image documents and layers an output gets (outputs with equal
    formats share one assembled image)."""

    compression: str = "gzip"
    level: int | None = None
    force_compression: bool = False
    oci_media_types: bool = True
    rewrite_timestamp: bool = False
    annotations: tuple[AnnotationSpec, ...] = ()

    @property
    def image_annotations(self) -> tuple[AnnotationSpec, ...]:
        """The annotations that land in the image documents (index-descriptor ones go in an
        OCI layout's index.json only)."""
        return tuple(a for a in self.annotations if a.type != INDEX_DESCRIPTOR)


@dataclass(frozen=True)
class ExportOptions:
    type: str
    format: ImageFormat = ImageFormat()
    push: bool = False
    push_by_digest: bool = False
    unpack: bool = False
    store: bool = True
    name_canonical: bool = False
    dangling_name_prefix: str = ""
    platform_split: bool | None = None  # None: split when several platforms are exported
    tar: bool = True
    oci_artifact: bool | None = None


def _bool(key: str, value: str) -> bool:
    low = value.lower()
    if low in ("true", "1", ""):
        return True
    if low in ("false", "0"):
        return False
    raise InvalidArgument(
        f"invalid value {value!r} for output attribute {key}", hint="use true or false"
    )


def parse_export_options(kind: str, attrs: dict[str, str]) -> ExportOptions:
    allowed = KEYS[kind]
    annotations: list[AnnotationSpec] = []
    for key, value in attrs.items():
        spec = parse_exporter_key(key, value)
        if spec is not None:
            if kind in ("local", "tar"):
                raise InvalidArgument(
                    f"output type={kind} takes no annotations ({key})",
                    hint="annotations apply to image, registry, oci and docker outputs",
                )
            annotations.append(spec)
            continue
        if key not in allowed:
            raise InvalidArgument(
                f"unknown output attribute {key!r} for type={kind}",
                hint="type=" + kind + " takes " + ", ".join(sorted(allowed)),
            )
    flags = {k: _bool(k, attrs[k]) for k in attrs if k in _BOOLEANS and k in allowed}
    compression = attrs.get("compression", "gzip").lower() or "gzip"
    if compression not in COMPRESSIONS:
        raise InvalidArgument(
            f"invalid value {attrs['compression']!r} for output attribute compression",
            hint="use " + ", ".join(COMPRESSIONS),
        )
    level: int | None = None
    if "compression-level" in attrs:
        text = attrs["compression-level"]
        low, high = LEVELS[compression]
        try:
            level = int(text)
        except ValueError:
            level = None
        if level is None or not low <= level <= high:
            raise InvalidArgument(
                f"invalid value {text!r} for output attribute compression-level",
                hint=f"compression={compression} takes a level from {low} to {high}",
            )
    oci_types = flags.get("oci-mediatypes", kind != "docker")
    if compression == "estargz" and not oci_types:
        raise InvalidArgument(
            "compression=estargz needs oci-mediatypes=true",
            hint="its TOC digest is a layer annotation, which Docker media types do not carry",
        )
    if compression == "zstd" and not oci_types and "oci-mediatypes" in attrs:
        raise InvalidArgument(
            "compression=zstd needs oci-mediatypes=true",
            hint="Docker media types have no zstd layer type",
        )
    oci_artifact = flags.get("oci-artifact")
    if oci_artifact and not oci_types:
        raise InvalidArgument(
            'exporter option "oci-artifact=true" conflicts with "oci-mediatypes=false"'
        )
    fmt = ImageFormat(
        compression=compression,
        level=level,
        force_compression=flags.get("force-compression", False),
        oci_media_types=oci_types,
        rewrite_timestamp=flags.get("rewrite-timestamp", False),
        annotations=tuple(annotations),
    )
    return ExportOptions(
        type=kind,
        format=fmt,
        push=flags.get("push", kind == "registry"),
        push_by_digest=flags.get("push-by-digest", False),
        unpack=flags.get("unpack", False),
        store=flags.get("store", True),
        name_canonical=flags.get("name-canonical", False),
        dangling_name_prefix=attrs.get("dangling-name-prefix", ""),
        platform_split=flags.get("platform-split"),
        tar=flags.get("tar", True),
        oci_artifact=oci_artifact,
    )


_BOOLEANS = frozenset(
    {
        "push",
        "push-by-digest",
        "unpack",
        "store",
        "name-canonical",
        "force-compression",
        "oci-mediatypes",
        "oci-artifact",
        "rewrite-timestamp",
        "platform-split",
        "tar",
        "insecure",
        "registry.insecure",
    }
)
