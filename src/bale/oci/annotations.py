"""User annotations: buildx's `--annotation` and BuildKit's `annotation*` exporter keys.

Where each lands (BuildKit exporter/containerimage/writer.go):

- `manifest` (the default): each platform's image manifest;
- `manifest-descriptor`: the index's descriptor of each platform manifest (for a
  single-platform export, the descriptor of the manifest itself);
- `index`: the image index;
- `index-descriptor`: the descriptor of the index in an OCI layout's index.json.

A platform selector (`manifest[linux/amd64]`) limits a manifest or manifest-descriptor
annotation to that platform's manifest; it overrides an unqualified one with the same key.
Attestation manifests get none. For one key and target the last spec wins.

Two deliberate differences from BuildKit, both where it is silent: a selector also applies
to a single-platform manifest (BuildKit drops it there), and an annotation key that is empty
or holds whitespace is an error (BuildKit ignores the whole option).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from bale.errors import InvalidArgument
from bale.oci.descriptor import Descriptor
from bale.oci.manifest import Index, Manifest, is_attestation
from bale.oci.platform import Platform

INDEX = "index"
INDEX_DESCRIPTOR = "index-descriptor"
MANIFEST = "manifest"
MANIFEST_DESCRIPTOR = "manifest-descriptor"
TYPES = (INDEX, INDEX_DESCRIPTOR, MANIFEST, MANIFEST_DESCRIPTOR)
_INDEX_TYPES = (INDEX, INDEX_DESCRIPTOR)

# BuildKit exptypes/annotations.go: annotation[-TYPE][[PLATFORM]].KEY
_EXPORTER_KEY = re.compile(r"annotation(?:-([a-z-]+))?(?:\[([A-Za-z0-9_/-]+)\])?\.(\S+)")
# buildx util/buildflags/export.go: TYPE[[PLATFORM]] before the ':' of --annotation
_FLAG_TYPE = re.compile(r"([a-z-]+)(?:\[([A-Za-z0-9_/-]+)\])?")
_FLAG_SYNTAX = "--annotation [TYPE[,TYPE][PLATFORM]:]KEY=VALUE, e.g. index,manifest:foo=bar"
_KEY_SYNTAX = "annotation[-TYPE][[OS/ARCH]].KEY=VALUE, e.g. annotation-index.foo=bar"


@dataclass(frozen=True)
class AnnotationSpec:
    """One annotation and where it goes: a type of TYPES and, optionally, one platform."""

    type: str
    platform: Platform | None
    key: str
    value: str

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise InvalidArgument(
                f"unknown annotation type {self.type!r}", hint="use one of " + ", ".join(TYPES)
            )
        if not self.key or any(c.isspace() for c in self.key):
            raise InvalidArgument(
                f"invalid annotation key {self.key!r} (empty or with whitespace)",
                hint="annotation keys look like org.opencontainers.image.title",
            )

    def exporter_key(self) -> str:
        """The exporter attribute buildx passes this as (BuildKit's AnnotationKey.String)."""
        prefix = f"annotation-{self.type}"
        if self.platform is not None and self.type not in _INDEX_TYPES:
            prefix += f"[{self.platform}]"
        return f"{prefix}.{self.key}"

    def applies_to(self, platform: Platform | None) -> bool:
        """For a manifest or its descriptor: no selector, or the manifest's platform."""
        return self.platform is None or (platform is not None and _same(self.platform, platform))


def _same(a: Platform, b: Platform) -> bool:
    return (a.os, a.architecture, a.variant) == (b.os, b.architecture, b.variant)


def _platform(text: str, context: str) -> Platform:
    try:
        return Platform.parse(text)
    except InvalidArgument as exc:
        raise InvalidArgument(
            f"{exc.message} in {context!r}", hint=exc.hint or "a platform looks like linux/amd64"
        ) from None


def parse_annotation_flag(text: str) -> tuple[AnnotationSpec, ...]:
    """`--annotation [TYPE[,TYPE][PLATFORM]:]KEY=VALUE`: one spec per type (default manifest).

    An empty flag names nothing, as in buildx. As buildx passes it on, a platform selector on
    an index type is dropped (the index is shared by all platforms).
    """
    if text == "":
        return ()
    head, sep, value = text.partition("=")
    if not sep:
        raise InvalidArgument(
            f"invalid annotation {text!r}, expected key=value", hint=f"use {_FLAG_SYNTAX}"
        )
    types, colon, key = head.partition(":")
    if not colon:
        return (_spec(MANIFEST, None, types, value, text, _FLAG_SYNTAX),)
    specs: list[AnnotationSpec] = []
    for part in types.split(","):
        match = _FLAG_TYPE.fullmatch(part)
        if match is None:
            raise InvalidArgument(
                f"invalid annotation type {part!r} in {text!r}, "
                "expected type and optional platform in square brackets",
                hint=f"use {_FLAG_SYNTAX}",
            )
        kind, selector = match.group(1), match.group(2)
        if kind not in TYPES:
            raise InvalidArgument(
                f"unknown annotation type {kind!r} in {text!r}",
                hint="the types are " + ", ".join(TYPES),
            )
        platform = _platform(selector, text) if selector else None
        if kind in _INDEX_TYPES:
            platform = None
        specs.append(_spec(kind, platform, key, value, text, _FLAG_SYNTAX))
    return tuple(specs)


def parse_annotation_flags(texts: Iterable[str]) -> tuple[AnnotationSpec, ...]:
    return tuple(spec for text in texts for spec in parse_annotation_flag(text))


def parse_exporter_key(key: str, value: str) -> AnnotationSpec | None:
    """An `annotation*` exporter attribute (`-o type=image,annotation-index.K=V`) as a spec.

    None when the attribute is not an annotation (it does not start with `annotation.`,
    `annotation-` or `annotation[`); an error when it is one that cannot be read.
    """
    if not key.startswith(("annotation.", "annotation-", "annotation[")):
        return None
    text = f"{key}={value}"
    match = _EXPORTER_KEY.fullmatch(key)
    if match is None:
        raise InvalidArgument(f"invalid annotation attribute {key!r}", hint=f"use {_KEY_SYNTAX}")
    kind, selector, name = match.group(1) or MANIFEST, match.group(2), match.group(3)
    if kind not in TYPES:
        raise InvalidArgument(
            f"unrecognized annotation type {kind} in {key!r}",
            hint="the types are " + ", ".join(TYPES),
        )
    platform = _platform(selector, key) if selector else None
    return _spec(kind, platform, name, value, text, _KEY_SYNTAX)


def _spec(
    kind: str, platform: Platform | None, key: str, value: str, text: str, syntax: str
) -> AnnotationSpec:
    try:
        return AnnotationSpec(kind, platform, key, value)
    except InvalidArgument as exc:
        raise InvalidArgument(f"{exc.message} in {text!r}", hint=f"use {syntax}") from None


# -- where they land ----------------------------------------------------------------------------


def _collect(
    specs: Iterable[AnnotationSpec], kind: str, platform: Platform | None
) -> dict[str, str]:
    """Unqualified specs first, then those selecting `platform`: a selector wins a key.

    The index is shared, so an index type takes every selector (as BuildKit merges them).
    """
    chosen = [s for s in specs if s.type == kind]
    out = {s.key: s.value for s in chosen if s.platform is None}
    shared = kind in _INDEX_TYPES
    out.update(
        (s.key, s.value)
        for s in chosen
        if s.platform is not None and (shared or s.applies_to(platform))
    )
    return out


def index_annotations(specs: Iterable[AnnotationSpec]) -> dict[str, str]:
    return _collect(specs, INDEX, None)


def index_descriptor_annotations(specs: Iterable[AnnotationSpec]) -> dict[str, str]:
    return _collect(specs, INDEX_DESCRIPTOR, None)


def manifest_annotations(
    specs: Iterable[AnnotationSpec], platform: Platform | None
) -> dict[str, str]:
    return _collect(specs, MANIFEST, platform)


def manifest_descriptor_annotations(
    specs: Iterable[AnnotationSpec], platform: Platform | None
) -> dict[str, str]:
    return _collect(specs, MANIFEST_DESCRIPTOR, platform)


def _merged(
    current: Sequence[tuple[str, str]], extra: Mapping[str, str]
) -> tuple[tuple[str, str], ...]:
    return tuple(sorted({**dict(current), **extra}.items()))


def annotate_manifest(
    manifest: Manifest, specs: Iterable[AnnotationSpec], platform: Platform | None
) -> Manifest:
    """The manifest of `platform` with its annotations (a user's key wins over bale's)."""
    extra = manifest_annotations(specs, platform)
    return (
        replace(manifest, annotations=_merged(manifest.annotations, extra)) if extra else manifest
    )


def annotate_manifest_descriptor(
    desc: Descriptor, specs: Iterable[AnnotationSpec], platform: Platform | None = None
) -> Descriptor:
    """A manifest's descriptor (in the index, or the export's root for one platform)."""
    extra = manifest_descriptor_annotations(
        specs, platform if platform is not None else desc.platform
    )
    return desc.with_annotation_map({**desc.annotation_map, **extra}) if extra else desc


def annotate_index(index: Index, specs: Iterable[AnnotationSpec]) -> Index:
    """The index with its own annotations and those of its platform manifests' descriptors.

    The descriptors must already point at the annotated manifests (annotate_manifest changes
    a manifest's digest); attestation manifests are left as they are.
    """
    specs = tuple(specs)
    manifests = tuple(
        m if is_attestation(m) else annotate_manifest_descriptor(m, specs) for m in index.manifests
    )
    return replace(
        index, manifests=manifests, annotations=_merged(index.annotations, index_annotations(specs))
    )


def annotate_index_descriptor(desc: Descriptor, specs: Iterable[AnnotationSpec]) -> Descriptor:
    """The index's descriptor in an OCI layout's index.json (name it after annotating)."""
    extra = index_descriptor_annotations(specs)
    return desc.with_annotation_map({**desc.annotation_map, **extra}) if extra else desc


def check(
    specs: Iterable[AnnotationSpec],
    platforms: Sequence[Platform],
    *,
    index: bool,
    oci_media_types: bool = True,
) -> None:
    """Refuse what BuildKit refuses, with its words, before anything is written.

    `platforms` are the exported platforms; `index` says whether the export is an index
    (several platforms, or attestations) rather than a single manifest.
    """
    specs = tuple(specs)
    if len(platforms) > 1:
        for spec in specs:
            if spec.platform is not None and not any(_same(spec.platform, p) for p in platforms):
                raise InvalidArgument(
                    f"invalid annotation: no platform {spec.platform} found in source",
                    hint=f"{spec.exporter_key()} names a platform that is not built; "
                    "built: " + ", ".join(str(p) for p in platforms),
                )
    if not oci_media_types and any(s.type != MANIFEST for s in specs):
        raise InvalidArgument(
            'cannot export annotations with "oci-mediatypes=false"',
            hint="only manifest annotations fit Docker media types; set oci-mediatypes=true",
        )
    if not index and any(s.type in _INDEX_TYPES for s in specs):
        raise InvalidArgument(
            "index annotations not supported for single platform export",
            hint="a single-platform image has no index; use manifest or manifest-descriptor",
        )
