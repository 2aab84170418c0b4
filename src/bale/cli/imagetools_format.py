"""`imagetools inspect --format`: the template input buildx gives its Go templates.

buildx (util/imagetools/printers.go) executes the template on a struct holding `.Name` (the
name as typed), `.Manifest` (the index with its digest and size, or the manifest's
descriptor) and `.Image` (the image config), with methods `.Provenance` (`{"SLSA":
predicate}`) and `.SBOM` (`{"SPDX": document, "AdditionalSPDXs": [...]}`). With more than one
platform, `.Image`, `.Provenance` and `.SBOM` are maps by platform. Documents are decoded into
the image-spec Go types first, so their JSON has those types' keys, order and omissions; that
is what the GoStructs here reproduce. `{{json}}` is json.MarshalIndent with two spaces.
"""

from __future__ import annotations

import re
from typing import Any

from bale.cli.gotemplate import Funcs, GoField, GoNil, GoStruct, go_json
from bale.errors import InvalidArgument
from bale.oci import jsonread, mediatype
from bale.registry.imagetools import Inspection, PlatformImage

FUNCS: Funcs = {"json": lambda v: go_json(v, indent="  ", escape_html=True)}

_WHOLE_MANIFEST = re.compile(r"\{\{-?\s*\.Manifest\s*-?\}\}")
_TIME = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)")


def is_whole_manifest(template: str) -> bool:
    """`{{.Manifest}}` alone prints the default text, as buildx does."""
    return _WHOLE_MANIFEST.fullmatch(template.strip()) is not None


def _typed(doc: dict[str, Any], key: str, kind: type | tuple[type, ...], what: str) -> Any:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise InvalidArgument(f"{what}: {key} has the wrong type for buildx's template input")
    return value


def _text(doc: dict[str, Any], key: str, what: str) -> str:
    return _typed(doc, key, str, what) or ""


def _strings(doc: dict[str, Any], key: str, what: str) -> list[str] | GoNil:
    value: list[str] | None = _typed(doc, key, list, what)
    if value is None:
        return GoNil("slice")
    if not all(isinstance(v, str) for v in value):
        raise InvalidArgument(f"{what}: {key} must be a list of strings")
    return value


def _string_map(doc: dict[str, Any], key: str, what: str) -> dict[str, str] | GoNil:
    value: dict[str, str] | None = _typed(doc, key, dict, what)
    if value is None:
        return GoNil("map")
    if not all(isinstance(v, str) for v in value.values()):
        raise InvalidArgument(f"{what}: {key} must map strings to strings")
    return value


def _set(doc: dict[str, Any], key: str, what: str) -> dict[str, GoStruct] | GoNil:
    """Go's map[string]struct{}: the keys, each with an empty object."""
    value = _typed(doc, key, dict, what)
    return GoNil("map") if value is None else {k: GoStruct("struct {}", ()) for k in value}


def go_time(value: Any) -> Any:
    """A time as Go's time.Time re-encodes it: fraction without trailing zeros, `Z` for UTC."""
    if not isinstance(value, str):
        return value
    match = _TIME.fullmatch(value)
    if match is None:
        return value
    base, fraction, zone = match.groups()
    fraction = (fraction or "")[:9].rstrip("0")
    zone = "Z" if zone in ("+00:00", "-00:00") else zone
    return base + (f".{fraction}" if fraction else "") + zone


def go_platform(doc: Any, what: str) -> GoStruct | None:
    if not isinstance(doc, dict):
        return None
    return GoStruct("v1.Platform", _platform_fields(doc, what))


def _platform_fields(doc: dict[str, Any], what: str) -> tuple[GoField, ...]:
    return (
        GoField("Architecture", "architecture", _text(doc, "architecture", what)),
        GoField("OS", "os", _text(doc, "os", what)),
        GoField("OSVersion", "os.version", _text(doc, "os.version", what), True),
        GoField("OSFeatures", "os.features", _strings(doc, "os.features", what), True),
        GoField("Variant", "variant", _text(doc, "variant", what), True),
    )


def go_descriptor(doc: dict[str, Any], what: str) -> GoStruct:
    return GoStruct(
        "v1.Descriptor",
        (
            GoField("MediaType", "mediaType", _text(doc, "mediaType", what)),
            GoField("Digest", "digest", _text(doc, "digest", what)),
            GoField("Size", "size", _typed(doc, "size", int, what) or 0),
            GoField("URLs", "urls", _strings(doc, "urls", what), True),
            GoField("Annotations", "annotations", _string_map(doc, "annotations", what), True),
            # []byte: base64 in JSON, as the document has it.
            GoField("Data", "data", _typed(doc, "data", str, what) or GoNil("slice"), True),
            GoField("Platform", "platform", go_platform(doc.get("platform"), what), True),
            GoField("ArtifactType", "artifactType", _text(doc, "artifactType", what), True),
        ),
    )


def go_image(doc: dict[str, Any], what: str) -> GoStruct:
    """An image config as v1.Image holds it (Docker-only keys such as Healthcheck dropped)."""
    config = _typed(doc, "config", dict, what) or {}
    rootfs = _typed(doc, "rootfs", dict, what) or {}
    history = _typed(doc, "history", list, what)
    image_config = GoStruct(
        "v1.ImageConfig",
        (
            GoField("User", "User", _text(config, "User", what), True),
            GoField("ExposedPorts", "ExposedPorts", _set(config, "ExposedPorts", what), True),
            GoField("Env", "Env", _strings(config, "Env", what), True),
            GoField("Entrypoint", "Entrypoint", _strings(config, "Entrypoint", what), True),
            GoField("Cmd", "Cmd", _strings(config, "Cmd", what), True),
            GoField("Volumes", "Volumes", _set(config, "Volumes", what), True),
            GoField("WorkingDir", "WorkingDir", _text(config, "WorkingDir", what), True),
            GoField("Labels", "Labels", _string_map(config, "Labels", what), True),
            GoField("StopSignal", "StopSignal", _text(config, "StopSignal", what), True),
            GoField(
                "ArgsEscaped", "ArgsEscaped", bool(_typed(config, "ArgsEscaped", bool, what)), True
            ),
        ),
    )
    entries: list[GoStruct] | GoNil = GoNil("slice")
    if history is not None:
        entries = [
            GoStruct(
                "v1.History",
                (
                    GoField("Created", "created", go_time(_typed(h, "created", str, what)), True),
                    GoField("CreatedBy", "created_by", _text(h, "created_by", what), True),
                    GoField("Author", "author", _text(h, "author", what), True),
                    GoField("Comment", "comment", _text(h, "comment", what), True),
                    GoField(
                        "EmptyLayer",
                        "empty_layer",
                        bool(_typed(h, "empty_layer", bool, what)),
                        True,
                    ),
                ),
            )
            for h in history
            if isinstance(h, dict)
        ]
    return GoStruct(
        "v1.Image",
        (
            GoField("Created", "created", go_time(_typed(doc, "created", str, what)), True),
            GoField("Author", "author", _text(doc, "author", what), True),
            *_platform_fields(doc, what),
            GoField("Config", "config", image_config),
            GoField(
                "RootFS",
                "rootfs",
                GoStruct(
                    "v1.RootFS",
                    (
                        GoField("Type", "type", _text(rootfs, "type", what)),
                        GoField("DiffIDs", "diff_ids", _strings(rootfs, "diff_ids", what)),
                    ),
                ),
            ),
            GoField("History", "history", entries, True),
        ),
    )


def _provenance(image: PlatformImage | None) -> GoStruct:
    slsa = image.provenance[0] if image is not None and image.provenance else None
    return GoStruct("imagetools.provenanceStub", (GoField("SLSA", "SLSA", slsa, True),))


def _sbom(image: PlatformImage | None) -> GoStruct:
    sboms = image.sboms if image is not None else ()
    return GoStruct(
        "imagetools.sbomStub",
        (
            GoField("SPDX", "SPDX", sboms[0] if sboms else None, True),
            GoField("AdditionalSPDXs", "AdditionalSPDXs", list(sboms[1:]) or GoNil("slice"), True),
        ),
    )


def _manifest(inspection: Inspection, what: str) -> GoStruct:
    doc = inspection.document
    desc = doc.descriptor
    if not mediatype.is_index(desc.media_type):
        return go_descriptor(
            {"mediaType": desc.media_type, "digest": str(desc.digest), "size": desc.size}, what
        )
    index = jsonread.loads_object(doc.data, "index")
    manifests = _typed(index, "manifests", list, what) or []
    return GoStruct(
        "struct",
        (
            GoField("SchemaVersion", "schemaVersion", _typed(index, "schemaVersion", int, what)),
            GoField("MediaType", "mediaType", _text(index, "mediaType", what), True),
            GoField("Digest", "digest", str(desc.digest)),
            GoField("Size", "size", desc.size),
            GoField("Manifests", "manifests", [go_descriptor(m, what) for m in manifests]),
            GoField("Annotations", "annotations", _string_map(index, "annotations", what), True),
        ),
    )


def template_input(inspection: Inspection, name: str) -> GoStruct:
    """buildx's tplInput (one platform) or tplInputs (several)."""
    what = f"{name}@{inspection.document.descriptor.digest}"
    images = inspection.images
    manifest = _manifest(inspection, what)
    if len(images) > 1:
        image: Any = {i.platform: go_image(i.config, f"{what} {i.platform}") for i in images}
        provenance: Any = {i.platform: _provenance(i) for i in images if i.provenance}
        sbom: Any = {i.platform: _sbom(i) for i in images if i.sboms}
        kind = "imagetools.tplInputs"
    else:
        only = images[0] if images else None
        image = go_image(only.config, what) if only is not None else None
        provenance, sbom = _provenance(only), _sbom(only)
        kind = "imagetools.tplInput"
    return GoStruct(
        kind,
        (
            GoField("Name", "name", name, True),
            GoField("Manifest", "manifest", manifest, True),
            GoField("Image", "image", image, True),
            GoField("Provenance", "", provenance, method=True),
            GoField("SBOM", "", sbom, method=True),
        ),
    )
