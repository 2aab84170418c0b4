"""Untrusted JSON never crashes a parser: bombs, wrong types, absurd values — InvalidArgument."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bale.errors import InvalidArgument
from bale.oci import jsonread, mediatype
from bale.oci.config import ImageConfig
from bale.oci.descriptor import Descriptor
from bale.oci.digest import Digest
from bale.oci.manifest import Index, Manifest, sniff_media_type

BOMBS = [
    b"[" * 100_000 + b"]" * 100_000,
    b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    b"[" * 100_000,  # and unterminated
    b'{"manifests":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
]


@pytest.mark.parametrize("bomb", BOMBS)
@pytest.mark.parametrize(
    "parse", [Manifest.parse, Index.parse, ImageConfig.parse, sniff_media_type]
)
def test_nesting_bombs_are_refused_by_every_document_parser(bomb: bytes, parse: Any) -> None:
    with pytest.raises(InvalidArgument, match="nested deeper than 64 levels"):
        parse(bomb)


def test_depth_limit_is_exact_and_ignores_brackets_in_strings() -> None:
    assert jsonread.loads(b"[" * 64 + b"]" * 64, "x") is not None
    with pytest.raises(InvalidArgument, match=r"^malformed JSON in the thing: nested deeper"):
        jsonread.loads(b"[" * 65 + b"]" * 65, "the thing")
    text = json.dumps({"a": "[" * 1000 + "{" * 1000 + '\\"['}).encode()
    assert jsonread.loads(text, "x") == {"a": "[" * 1000 + "{" * 1000 + '\\"['}


def test_size_limit_names_what_was_read() -> None:
    with pytest.raises(InvalidArgument, match=r"^token reply is 2000 bytes, more than the limit"):
        jsonread.loads(b" " * 2000, "token reply", limit=1000)


@pytest.mark.parametrize(
    "doc",
    [
        b'"' + b"\\" * 1_000_001,  # unterminated string of escapes
        b'"\\' * 1_000_000,  # every quote escaped: one string to the end
        b'"' * 2_000_001,
        b"[" + b'"[",' * 500_000 + b"1]",
    ],
)
def test_hostile_strings_are_scanned_in_linear_time(doc: bytes) -> None:
    start = time.monotonic()
    with pytest.raises(InvalidArgument):
        jsonread.loads(doc, "x", max_depth=0)
    # Quadratic scanning of a few MB would take minutes; linear takes well under a second.
    assert time.monotonic() - start < 60


def test_huge_integers_are_invalid_argument() -> None:
    with pytest.raises(InvalidArgument, match="malformed JSON"):
        jsonread.loads(b"1" * 10_000, "x")


KEYS = [
    "mediaType",
    "digest",
    "size",
    "platform",
    "annotations",
    "urls",
    "artifactType",
    "schemaVersion",
    "config",
    "layers",
    "manifests",
    "subject",
    "architecture",
    "os",
    "variant",
    "os.features",
    "os.version",
    "rootfs",
    "diff_ids",
    "history",
    "created",
    "Env",
    "Cmd",
    "Entrypoint",
    "Labels",
    "ExposedPorts",
    "Volumes",
    "Healthcheck",
    "Test",
    "Interval",
    "Retries",
    "User",
    "Shell",
    "OnBuild",
    "empty_layer",
    "created_by",
]
# Values of any type, in objects whose keys are the ones the parsers look at.
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=6)
    | st.just(str(Digest.of(b"x"))),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=10,
)


DESCRIPTOR = st.fixed_dictionaries(
    {
        "mediaType": st.just(mediatype.OCI_MANIFEST),
        "digest": st.just(str(Digest.of(b"x"))),
        "size": st.just(1),
    },
    optional={k: JSON for k in ("platform", "annotations", "urls", "artifactType")},
)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(KEYS), JSON | DESCRIPTOR | st.lists(DESCRIPTOR, max_size=2), max_size=6
    )
)
def test_any_shape_of_document_is_parsed_or_refused_cleanly(doc: dict[str, Any]) -> None:
    data = json.dumps(doc).encode()
    for parse in (
        Manifest.parse,
        Index.parse,
        ImageConfig.parse,
        sniff_media_type,
        lambda d: Descriptor.from_json(json.loads(d)),
    ):
        try:
            parse(data)
        except InvalidArgument:
            pass


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("size", -1, "negative size"),
        ("size", 1 << 70, "size .* out of range"),
        ("size", 1.5, "size must be an integer"),
        ("size", True, "size must be an integer"),
        ("digest", "sha512:" + "a" * 128, None),
        ("digest", "md5:" + "a" * 32, "unsupported digest algorithm 'md5'"),
        ("digest", "sha256:../../etc/passwd", "invalid sha256 digest"),
        ("digest", "../sha256:" + "a" * 64, "unsupported digest algorithm"),
        ("urls", 5, "urls must be a list of strings"),
        ("annotations", ["a"], "annotations must map strings"),
        ("platform", {"os": 1, "architecture": []}, None),
    ],
)
def test_descriptor_values_are_checked(field: str, value: object, message: str | None) -> None:
    obj: dict[str, object] = {
        "mediaType": mediatype.OCI_LAYER,
        "digest": str(Digest.of(b"")),
        "size": 0,
        field: value,
    }
    if message is None:
        try:
            Descriptor.from_json(obj)
        except InvalidArgument:
            pass
        return
    with pytest.raises(InvalidArgument, match=message):
        Descriptor.from_json(obj)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"config": {"Healthcheck": {"Interval": "10s"}}}, "Healthcheck.Interval must be a number"),
        ({"config": {"Healthcheck": {"Test": 5}}}, "Healthcheck.Test must list strings"),
        ({"config": {"Healthcheck": {"Retries": [1]}}}, "Healthcheck.Retries must be a number"),
        ({"os.features": 5}, "'os.features' must be a list"),
    ],
)
def test_image_config_values_of_the_wrong_type_are_refused(
    doc: dict[str, Any], message: str
) -> None:
    data = json.dumps({"architecture": "amd64", "os": "linux", **doc}).encode()
    with pytest.raises(InvalidArgument, match=message):
        ImageConfig.parse(data)
