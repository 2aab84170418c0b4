"""Docker's reference normalization."""

from __future__ import annotations

import pytest

from bale.errors import InvalidArgument
from bale.oci.digest import Digest
from bale.oci.reference import Reference

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("text", "normalized", "familiar"),
    [
        ("alpine", "docker.io/library/alpine:latest", "alpine:latest"),
        ("alpine:3.20", "docker.io/library/alpine:3.20", "alpine:3.20"),
        ("user/app", "docker.io/user/app:latest", "user/app:latest"),
        ("index.docker.io/library/alpine", "docker.io/library/alpine:latest", "alpine:latest"),
        ("localhost/app:1", "localhost/app:1", "localhost/app:1"),
        ("127.0.0.1:5000/team/app:1", "127.0.0.1:5000/team/app:1", "127.0.0.1:5000/team/app:1"),
        ("ghcr.io/o/r/deep:v1.2-rc", "ghcr.io/o/r/deep:v1.2-rc", "ghcr.io/o/r/deep:v1.2-rc"),
        (f"alpine@{DIGEST}", f"docker.io/library/alpine@{DIGEST}", f"alpine@{DIGEST}"),
        (f"alpine:3@{DIGEST}", f"docker.io/library/alpine:3@{DIGEST}", f"alpine:3@{DIGEST}"),
    ],
)
def test_normalization(text: str, normalized: str, familiar: str) -> None:
    ref = Reference.parse(text)
    assert str(ref) == normalized
    assert ref.familiar() == familiar
    assert Reference.parse(normalized) == ref


def test_parts() -> None:
    ref = Reference.parse(f"127.0.0.1:5000/team/app:1@{DIGEST}")
    assert (ref.domain, ref.path, ref.tag) == ("127.0.0.1:5000", "team/app", "1")
    assert ref.digest == Digest.parse(DIGEST)
    assert ref.name == "127.0.0.1:5000/team/app"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty reference"),
        ("Alpine", "must be lowercase"),
        ("alpine:bad/tag", "invalid reference format"),
        ("alpine:-x", "invalid tag"),
        ("alpine@sha256:abc", "invalid reference"),
        ("app//x", "invalid reference format"),
    ],
)
def test_invalid_references(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        Reference.parse(text)
