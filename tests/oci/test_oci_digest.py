"""Digests validate themselves."""

from __future__ import annotations

import hashlib

import pytest

from bale.errors import InvalidArgument
from bale.oci.digest import Digest

HEX256 = hashlib.sha256(b"x").hexdigest()
HEX512 = hashlib.sha512(b"x").hexdigest()


def test_parse_and_print() -> None:
    d = Digest.parse(f"sha256:{HEX256}")
    assert (d.algorithm, d.hex) == ("sha256", HEX256)
    assert str(d) == f"sha256:{HEX256}"
    assert d.short == HEX256[:12]
    assert Digest.parse(f"sha512:{HEX512}").hex == HEX512


def test_of_hashes_with_the_algorithm() -> None:
    assert Digest.of(b"x") == Digest("sha256", HEX256)
    assert Digest.of(b"x", "sha512") == Digest("sha512", HEX512)
    h = Digest.of(b"x").hasher()
    h.update(b"x")
    assert h.hexdigest() == HEX256


@pytest.mark.parametrize(
    "text",
    [
        HEX256,  # no algorithm
        f"sha256:{HEX256[:-1]}",  # too short
        f"sha256:{HEX256}0",  # too long
        f"sha256:{HEX256.upper()}",  # upper case
        f"sha256:{HEX256[:-1]}g",  # not hex
        f"sha256:{HEX512}",  # sha512 length under sha256
        f"sha512:{HEX256}",
        f"md5:{hashlib.md5(b'x').hexdigest()}",  # unsupported algorithm
        "sha256:",
        "",
    ],
)
def test_invalid_digests_are_refused(text: str) -> None:
    with pytest.raises(InvalidArgument):
        Digest.parse(text)


def test_equality_hash_and_order() -> None:
    a = Digest.parse(f"sha256:{'0' * 64}")
    b = Digest.parse(f"sha256:{'f' * 64}")
    assert a == Digest("sha256", "0" * 64) and hash(a) == hash(Digest("sha256", "0" * 64))
    assert sorted([b, a]) == [a, b]
    assert len({a, b, Digest("sha256", "0" * 64)}) == 2
