"""Annotation specs: buildx's --annotation and BuildKit's annotation* exporter keys.

The parser cases transcribe docker/buildx util/buildflags/export_test.go TestParseAnnotations
(commit 461836b); the placement cases transcribe moby/buildkit
client/client_export_metadata_test.go testExportAnnotations and
testExportAnnotationsMediaTypes (commit 73ed682), on pure values instead of a daemon.
"""

from __future__ import annotations

import pytest

from bale.errors import InvalidArgument
from bale.oci import mediatype
from bale.oci.annotations import (
    INDEX,
    INDEX_DESCRIPTOR,
    MANIFEST,
    MANIFEST_DESCRIPTOR,
    AnnotationSpec,
    annotate_index,
    annotate_index_descriptor,
    annotate_manifest,
    annotate_manifest_descriptor,
    check,
    manifest_annotations,
    parse_annotation_flag,
    parse_annotation_flags,
    parse_exporter_key,
)
from bale.oci.descriptor import Descriptor
from bale.oci.digest import Digest
from bale.oci.manifest import ATTESTATION_REF, ATTESTATION_TYPE, Index, Manifest
from bale.oci.platform import Platform

AMD64 = Platform.parse("linux/amd64")
ARM64 = Platform.parse("linux/arm64")
PLAT_FORM = Platform.of("plat", "form")


def spec(kind: str, key: str, value: str, platform: Platform | None = None) -> AnnotationSpec:
    return AnnotationSpec(kind, platform, key, value)


# -- buildx: --annotation [TYPE[,TYPE][PLATFORM]:]KEY=VALUE ------------------------------------


@pytest.mark.parametrize(
    ("flag", "want"),
    [
        # TestParseAnnotations "basic": no type is BuildKit's default, manifest
        ("a=b", [spec(MANIFEST, "a", "b")]),
        # "reverse-DNS key"
        ("com.example=a", [spec(MANIFEST, "com.example", "a")]),
        # "specify type"
        ("manifest:com.example=a", [spec(MANIFEST, "com.example", "a")]),
        # "specify type and platform"
        ("manifest[plat/form]:com.example=a", [spec(MANIFEST, "com.example", "a", PLAT_FORM)]),
        # "specify multiple types"
        (
            "index,manifest:com.example=a",
            [spec(INDEX, "com.example", "a"), spec(MANIFEST, "com.example", "a")],
        ),
        # "specify multiple types and platform"
        (
            "index,manifest[plat/form]:com.example=a",
            [spec(INDEX, "com.example", "a"), spec(MANIFEST, "com.example", "a", PLAT_FORM)],
        ),
        # Everything after the first '=' is the value, which may be empty.
        ("a=b=c", [spec(MANIFEST, "a", "b=c")]),
        ("a=", [spec(MANIFEST, "a", "")]),
        # As buildx passes them on, index types drop a platform selector.
        ("index[linux/amd64]:k=v", [spec(INDEX, "k", "v")]),
        (
            "index-descriptor,manifest-descriptor[linux/arm64]:k=v",
            [spec(INDEX_DESCRIPTOR, "k", "v"), spec(MANIFEST_DESCRIPTOR, "k", "v", ARM64)],
        ),
    ],
)
def test_parse_annotation_flag(flag: str, want: list[AnnotationSpec]) -> None:
    assert list(parse_annotation_flag(flag)) == want


def test_an_empty_flag_names_nothing() -> None:
    assert parse_annotation_flag("") == ()
    assert parse_annotation_flags(["", "a=b", "index:c=d"]) == (
        spec(MANIFEST, "a", "b"),
        spec(INDEX, "c", "d"),
    )


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        # TestParseAnnotations "specify bad type"
        ("bad:com.example=a", "unknown annotation type 'bad'"),
        ("novalue", "invalid annotation 'novalue', expected key=value"),
        ("Manifest:k=v", "invalid annotation type 'Manifest'"),
        ("manifest[linux/*]:k=v", "invalid annotation type 'manifest[linux/*]'"),
        (":k=v", "invalid annotation type ''"),
        ("index,,manifest:k=v", "invalid annotation type ''"),
        ("manifest[a/b/c/d]:k=v", "invalid platform 'a/b/c/d'"),
        ("manifest:=v", "invalid annotation key ''"),
        ("=v", "invalid annotation key ''"),
        ("my key=v", "invalid annotation key 'my key'"),
        # A key holding ':' needs an explicit type, as in buildx.
        ("com.example:key=v", "invalid annotation type 'com.example'"),
    ],
)
def test_bad_flags_name_the_offending_text(flag: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        parse_annotation_flag(flag)
    assert message in str(err.value)
    assert flag in str(err.value)
    assert err.value.hint


# -- BuildKit: annotation[-TYPE][[PLATFORM]].KEY exporter attributes ---------------------------


@pytest.mark.parametrize(
    ("key", "want"),
    [
        ("annotation.gd", spec(MANIFEST, "gd", "v")),
        ("annotation-index.gi", spec(INDEX, "gi", "v")),
        ("annotation-index-descriptor.gid", spec(INDEX_DESCRIPTOR, "gid", "v")),
        ("annotation-manifest.gm", spec(MANIFEST, "gm", "v")),
        ("annotation-manifest-descriptor.gmd", spec(MANIFEST_DESCRIPTOR, "gmd", "v")),
        ("annotation-manifest[linux/amd64].m", spec(MANIFEST, "m", "v", AMD64)),
        (
            "annotation-manifest-descriptor[linux/arm64].md",
            spec(MANIFEST_DESCRIPTOR, "md", "v", ARM64),
        ),
        (
            "annotation[linux/arm64].org.opencontainers.image.url",
            spec(MANIFEST, "org.opencontainers.image.url", "v", ARM64),
        ),
        (
            "annotation-index.org.opencontainers.image.created",
            spec(INDEX, "org.opencontainers.image.created", "v"),
        ),
        # The key is everything after the first '.' that follows the type and platform.
        ("annotation.a.b[c]=d", spec(MANIFEST, "a.b[c]=d", "v")),
    ],
)
def test_parse_exporter_key(key: str, want: AnnotationSpec) -> None:
    assert parse_exporter_key(key, "v") == want


@pytest.mark.parametrize("key", ["name", "push", "annotations", "annotationx.k", "oci-mediatypes"])
def test_other_exporter_attributes_are_not_annotations(key: str) -> None:
    assert parse_exporter_key(key, "v") is None


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("annotation-bad.k", "unrecognized annotation type bad"),
        ("annotation-manifest.", "invalid annotation attribute"),
        ("annotation.", "invalid annotation attribute"),
        ("annotation.my key", "invalid annotation attribute"),
        ("annotation-Manifest.k", "invalid annotation attribute"),
        ("annotation-manifest[linux/amd64,linux/arm64].k", "invalid annotation attribute"),
        ("annotation-manifest[a/b/c/d].k", "invalid platform 'a/b/c/d'"),
    ],
)
def test_bad_exporter_keys_name_the_offending_text(key: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        parse_exporter_key(key, "v")
    assert message in str(err.value)
    assert key in str(err.value)
    assert err.value.hint


@pytest.mark.parametrize(
    "flag",
    [
        "a=b",
        "index:a=b",
        "index-descriptor:a=b",
        "manifest[linux/arm64]:a=b",
        "manifest-descriptor[linux/amd64]:a=b",
    ],
)
def test_flags_travel_as_exporter_keys(flag: str) -> None:
    """buildx passes each --annotation as an exporter attribute; BuildKit reads it back."""
    (parsed,) = parse_annotation_flag(flag)
    assert parse_exporter_key(parsed.exporter_key(), parsed.value) == parsed


def test_exporter_key_spelling() -> None:
    assert spec(MANIFEST, "k", "v", AMD64).exporter_key() == "annotation-manifest[linux/amd64].k"
    assert spec(INDEX, "k", "v", AMD64).exporter_key() == "annotation-index.k"
    assert spec(MANIFEST_DESCRIPTOR, "k", "v").exporter_key() == "annotation-manifest-descriptor.k"


def test_spec_values_are_checked() -> None:
    with pytest.raises(InvalidArgument, match="unknown annotation type 'labels'"):
        AnnotationSpec("labels", None, "k", "v")
    with pytest.raises(InvalidArgument, match="invalid annotation key"):
        AnnotationSpec(MANIFEST, None, "", "v")


# -- placement: testExportAnnotations -----------------------------------------------------------


def digest(text: str) -> Digest:
    return Digest.of(text.encode())


def manifest(name: str) -> Manifest:
    config = Descriptor(mediatype.OCI_CONFIG, digest(f"config {name}"), 2)
    return Manifest(config=config, layers=(), annotations=(("bale.existing", name),))


def manifest_desc(m: Manifest, platform: Platform) -> Descriptor:
    data = m.encode()
    return Descriptor(mediatype.OCI_MANIFEST, Digest.of(data), len(data), platform=platform)


ATTESTATION = Descriptor(
    mediatype.OCI_MANIFEST,
    digest("attestation"),
    10,
    platform=Platform("unknown", "unknown"),
    annotations=(
        (ATTESTATION_REF, str(digest("amd64"))),
        (ATTESTATION_TYPE, "attestation-manifest"),
    ),
)

# The frontend's result metadata and the image exporter's attributes of testExportAnnotations.
FRONTEND = {
    "annotation-index.gi": "generic index",
    "annotation-index-descriptor.gid": "generic index descriptor",
    "annotation-manifest.gm": "generic manifest",
    "annotation-manifest-descriptor.gmd": "generic manifest descriptor",
    "annotation-manifest[linux/amd64].m": "amd64 manifest",
    "annotation-manifest[linux/arm64].m": "arm64 manifest",
    "annotation-manifest-descriptor[linux/amd64].md": "amd64 manifest descriptor",
    "annotation-manifest-descriptor[linux/arm64].md": "arm64 manifest descriptor",
    "annotation.gd": "generic default",
}
CREATED = "2022-01-23T12:34:56Z"
EXPORTER = {
    "name": "registry/buildkit/testannotations:latest",
    "push": "true",
    "annotation-index.gio": "generic index opt",
    "annotation-index.org.opencontainers.image.created": CREATED,
    "annotation-index-descriptor.gido": "generic index descriptor opt",
    "annotation-manifest.gmo": "generic manifest opt",
    "annotation-manifest-descriptor.gmdo": "generic manifest descriptor opt",
    "annotation-manifest[linux/amd64].mo": "amd64 manifest opt",
    "annotation-manifest-descriptor[linux/amd64].mdo": "amd64 manifest descriptor opt",
    "annotation-manifest[linux/arm64].mo": "arm64 manifest opt",
    "annotation-manifest-descriptor[linux/arm64].mdo": "arm64 manifest descriptor opt",
}


def specs_of(*attrs: dict[str, str]) -> tuple[AnnotationSpec, ...]:
    out = []
    for group in attrs:
        for key, value in group.items():
            parsed = parse_exporter_key(key, value)
            if parsed is not None:
                out.append(parsed)
    return tuple(out)


def export(specs: tuple[AnnotationSpec, ...]) -> tuple[Index, dict[str, Manifest], Descriptor]:
    """What an exporter does: annotate manifests, index them, annotate the index and its
    descriptor in index.json."""
    check(specs, [AMD64, ARM64], index=True)
    manifests = {str(p): annotate_manifest(manifest(str(p)), specs, p) for p in (AMD64, ARM64)}
    descs = tuple(manifest_desc(manifests[str(p)], p) for p in (AMD64, ARM64))
    index = annotate_index(Index(manifests=(*descs, ATTESTATION)), specs)
    data = index.encode()
    root = Descriptor(mediatype.OCI_INDEX, Digest.of(data), len(data))
    root = annotate_index_descriptor(
        root.with_annotations(**{"org.opencontainers.image.created": "now"}), specs
    )
    return index, manifests, root


def test_annotations_land_where_buildkit_puts_them() -> None:
    index, manifests, root = export(specs_of(FRONTEND, EXPORTER))
    got = dict(index.annotations)
    assert got["gi"] == "generic index"
    assert got["gio"] == "generic index opt"
    assert got["org.opencontainers.image.created"] == CREATED
    for desc in index.image_manifests():
        ann = desc.annotation_map
        assert ann["gmd"] == "generic manifest descriptor"
        assert ann["gmdo"] == "generic manifest descriptor opt"
        arch = desc.platform.architecture if desc.platform else ""
        assert ann["md"] == f"{arch} manifest descriptor"
        assert ann["mdo"] == f"{arch} manifest descriptor opt"
        assert "gm" not in ann and "gi" not in ann  # manifest and index keys stay there
    for arch in ("amd64", "arm64"):
        ann = dict(manifests[f"linux/{arch}"].annotations)
        assert ann["gd"] == "generic default"
        assert ann["gm"] == "generic manifest"
        assert ann["gmo"] == "generic manifest opt"
        assert ann["m"] == f"{arch} manifest"
        assert ann["mo"] == f"{arch} manifest opt"
        assert ann["bale.existing"] == f"linux/{arch}"
        assert "gmd" not in ann and "gio" not in ann
    # The OCI layout's descriptor of the index (index.json).
    ann = root.annotation_map
    assert ann["gid"] == "generic index descriptor"
    assert ann["gido"] == "generic index descriptor opt"
    # Attestation manifests get nothing.
    assert index.attestations() == (ATTESTATION,)


def test_a_user_created_time_wins_over_the_exporters() -> None:
    specs = specs_of({"annotation-index-descriptor.org.opencontainers.image.created": CREATED})
    _, _, root = export(specs)
    assert root.annotation("org.opencontainers.image.created") == CREATED


def test_single_platform_index_takes_index_annotations() -> None:
    """testExportAnnotationsMediaTypes: one platform exported as an index."""
    specs = specs_of({"annotation-manifest.a": "b"}, {"annotation-index.c": "d"})
    check(specs, [AMD64], index=True)
    m = annotate_manifest(manifest("one"), specs, AMD64)
    index = annotate_index(Index(manifests=(manifest_desc(m, AMD64),)), specs)
    assert dict(m.annotations)["a"] == "b"
    assert dict(index.annotations) == {"c": "d"}
    assert index.media_type == mediatype.OCI_INDEX


def test_single_manifest_export_refuses_index_annotations() -> None:
    for kind in (INDEX, INDEX_DESCRIPTOR):
        with pytest.raises(
            InvalidArgument, match="index annotations not supported for single platform export"
        ):
            check([spec(kind, "k", "v")], [AMD64], index=False)
    check([spec(MANIFEST, "k", "v"), spec(MANIFEST_DESCRIPTOR, "k", "v")], [AMD64], index=False)


def test_single_manifest_export_puts_descriptor_annotations_on_its_root() -> None:
    specs = parse_annotation_flags(
        ["manifest-descriptor:k=v", "manifest-descriptor[linux/arm64]:arm=1"]
    )
    m = annotate_manifest(manifest("one"), specs, AMD64)
    root = annotate_manifest_descriptor(manifest_desc(m, AMD64), specs)
    assert root.annotation_map == {"k": "v"}
    # The descriptor's own platform decides unless one is given.
    arm = annotate_manifest_descriptor(manifest_desc(m, ARM64), specs)
    assert arm.annotation_map == {"k": "v", "arm": "1"}
    assert (
        annotate_manifest_descriptor(manifest_desc(m, AMD64), specs, ARM64).annotation_map
        == arm.annotation_map
    )


def test_a_selector_for_a_platform_not_built_is_refused() -> None:
    specs = specs_of({"annotation-manifest[linux/s390x].k": "v"})
    with pytest.raises(InvalidArgument) as err:
        check(specs, [AMD64, ARM64], index=True)
    assert str(err.value) == "invalid annotation: no platform linux/s390x found in source"
    assert "annotation-manifest[linux/s390x].k" in err.value.hint
    # One platform at a time (a matrix of per-platform builds) may carry the others' selectors.
    check(specs, [AMD64], index=True)
    assert manifest_annotations(specs, AMD64) == {}


def test_docker_media_types_take_manifest_annotations_only() -> None:
    check([spec(MANIFEST, "k", "v")], [AMD64, ARM64], index=True, oci_media_types=False)
    for kind in (INDEX, INDEX_DESCRIPTOR, MANIFEST_DESCRIPTOR):
        with pytest.raises(
            InvalidArgument, match='cannot export annotations with "oci-mediatypes=false"'
        ):
            check([spec(kind, "k", "v")], [AMD64, ARM64], index=True, oci_media_types=False)


def test_a_selector_wins_over_a_generic_key_and_the_last_spec_wins() -> None:
    specs = parse_annotation_flags(
        [
            "manifest[linux/amd64]:k=amd64",
            "k=generic",
            "k=generic again",
            "other=1",
            "manifest[linux/amd64]:other=2",
        ]
    )
    assert manifest_annotations(specs, AMD64) == {"k": "amd64", "other": "2"}
    assert manifest_annotations(specs, ARM64) == {"k": "generic again", "other": "1"}
    assert manifest_annotations(specs, None) == {"k": "generic again", "other": "1"}


def test_selectors_match_normalized_platforms() -> None:
    specs = parse_annotation_flags(
        ["manifest[linux/arm64/v8]:a=1", "manifest[linux/aarch64]:b=2", "manifest[arm]:c=3"]
    )
    assert manifest_annotations(specs, ARM64) == {"a": "1", "b": "2"}
    assert manifest_annotations(specs, Platform.parse("linux/arm/v7")) == {"c": "3"}


def test_values_are_new_and_the_inputs_unchanged() -> None:
    specs = parse_annotation_flags(["bale.existing=user", "index:i=1", "manifest-descriptor:d=1"])
    original = manifest("m")
    annotated = annotate_manifest(original, specs, AMD64)
    assert dict(original.annotations) == {"bale.existing": "m"}
    assert dict(annotated.annotations) == {"bale.existing": "user"}  # the user's value wins
    desc = manifest_desc(annotated, AMD64)
    index = Index(manifests=(desc,))
    done = annotate_index(index, specs)
    assert index.annotations == () and index.manifests[0].annotations == ()
    assert done.manifests[0].annotation_map == {"d": "1"} and dict(done.annotations) == {"i": "1"}
    assert done.manifests[0].digest == desc.digest
    # Nothing asked: the very same value comes back.
    assert annotate_manifest(original, (), AMD64) is original


def test_an_index_key_with_a_selector_still_lands_on_the_shared_index() -> None:
    specs = specs_of(
        {"annotation-index[linux/arm64].k": "v", "annotation-index-descriptor[linux/amd64].d": "1"}
    )
    check(specs, [AMD64, ARM64], index=True)
    index = annotate_index(Index(manifests=()), specs)
    assert dict(index.annotations) == {"k": "v"}
    root = annotate_index_descriptor(Descriptor(mediatype.OCI_INDEX, digest("i"), 1), specs)
    assert root.annotation_map == {"d": "1"}
    with pytest.raises(InvalidArgument, match="no platform linux/arm64 found"):
        check(specs, [AMD64, Platform.parse("linux/s390x")], index=True)
