"""Platforms: parse, normalize, match and order like containerd's platforms package."""

from __future__ import annotations

import platform as host

import pytest

from bale.errors import InvalidArgument
from bale.oci.platform import Platform, host_platform


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("linux/arm64", "linux/arm64"),
        ("linux/aarch64", "linux/arm64"),
        ("linux/arm64/v8", "linux/arm64"),
        ("linux/arm64/8", "linux/arm64"),
        ("linux/x86_64", "linux/amd64"),
        ("x86_64", "linux/amd64"),
        ("linux/amd64", "linux/amd64"),
        ("linux/amd64/v1", "linux/amd64"),
        ("linux/amd64/v3", "linux/amd64/v3"),
        ("linux/armhf", "linux/arm/v7"),
        ("linux/armel", "linux/arm/v6"),
        ("linux/arm", "linux/arm/v7"),
        ("linux/arm/7", "linux/arm/v7"),
        ("linux/arm/v6", "linux/arm/v6"),
        ("linux/i686", "linux/386"),
        ("linux/ppc64el", "linux/ppc64le"),
        ("linux/s390x", "linux/s390x"),
        ("arm64", "linux/arm64"),
        ("Linux/ARM64", "linux/arm64"),
        ("windows/amd64", "windows/amd64"),
        (" linux/arm64 ", "linux/arm64"),
    ],
)
def test_parse_normalizes(text: str, want: str) -> None:
    assert str(Platform.parse(text)) == want


@pytest.mark.parametrize(
    "text", ["", "/", "linux//arm64", "linux/arm64/", "a/b/c/d", "linux/arm-64"]
)
def test_parse_refuses_invalid(text: str) -> None:
    with pytest.raises(InvalidArgument):
        Platform.parse(text)


def test_local_and_bare_os_mean_this_host() -> None:
    me = host_platform()
    assert Platform.parse("local") == me
    assert Platform.parse("linux") == me
    assert me == Platform.of("linux", host.machine())


def test_of_and_from_json_normalize_the_same_way() -> None:
    assert Platform.of("linux", "aarch64") == Platform("linux", "arm64")
    assert Platform.from_json({"os": "linux", "architecture": "arm", "variant": "7"}) == Platform(
        "linux", "arm", "v7"
    )
    with pytest.raises(InvalidArgument):
        Platform.from_json({"os": "linux"})


def test_json_round_trip_keeps_os_version_and_features() -> None:
    obj = {
        "architecture": "amd64",
        "os": "windows",
        "os.version": "10.0.17763",
        "os.features": ["win32k"],
    }
    p = Platform.from_json(obj)
    assert p.to_json() == obj
    assert Platform.parse("linux/arm/v7").to_json() == {
        "architecture": "arm",
        "os": "linux",
        "variant": "v7",
    }


def test_dirname() -> None:
    assert Platform.parse("linux/arm/v7").dirname == "linux_arm_v7"
    assert Platform.parse("linux/amd64").dirname == "linux_amd64"


def test_compatible_vectors() -> None:
    def vec(text: str) -> list[str]:
        return [str(p) for p in Platform.parse(text).compatible()]

    assert vec("linux/arm64") == ["linux/arm64", "linux/arm/v7", "linux/arm/v6", "linux/arm/v5"]
    assert vec("linux/amd64/v3") == ["linux/amd64/v3", "linux/amd64/v2", "linux/amd64", "linux/386"]
    assert vec("linux/amd64") == ["linux/amd64", "linux/386"]
    assert vec("linux/arm/v7") == ["linux/arm/v7", "linux/arm/v6", "linux/arm/v5"]
    assert vec("linux/arm/v5") == ["linux/arm/v5"]
    assert vec("linux/s390x") == ["linux/s390x"]


@pytest.mark.parametrize(
    ("runner", "image", "ok"),
    [
        ("linux/arm64", "linux/arm64", True),
        ("linux/arm64", "linux/arm/v7", True),
        ("linux/arm64", "linux/amd64", False),
        ("linux/arm/v7", "linux/arm64", False),
        ("linux/arm/v6", "linux/arm/v7", False),
        ("linux/amd64", "linux/386", True),
        ("linux/amd64", "linux/amd64/v2", False),
        ("linux/amd64/v2", "linux/amd64", True),
        ("linux/amd64", "windows/amd64", False),
    ],
)
def test_matches(runner: str, image: str, ok: bool) -> None:
    r, i = Platform.parse(runner), Platform.parse(image)
    assert r.matches(i) is ok
    assert (r.rank(i) is not None) is ok


def test_rank_orders_the_best_first() -> None:
    want = Platform.parse("linux/arm64")
    offered = [
        Platform.parse(t) for t in ("linux/arm/v5", "linux/amd64", "linux/arm/v7", "linux/arm64")
    ]
    usable = sorted(
        (p for p in offered if want.rank(p) is not None), key=lambda p: want.rank(p) or 0
    )
    assert [str(p) for p in usable] == ["linux/arm64", "linux/arm/v7", "linux/arm/v5"]
    assert want.rank(want) == 0


def test_sort_key_and_equality() -> None:
    ps = [Platform.parse(t) for t in ("linux/s390x", "linux/arm64", "linux/amd64", "linux/arm/v7")]
    assert [str(p) for p in sorted(ps, key=Platform.sort_key)] == [
        "linux/amd64",
        "linux/arm/v7",
        "linux/arm64",
        "linux/s390x",
    ]
    assert Platform.parse("linux/aarch64") == Platform.parse("linux/arm64/v8")
    assert len({Platform.parse("arm64"), Platform.parse("linux/aarch64")}) == 1
