"""What the Dockerfile fuzzer (fuzz/dockerfile_fuzz.py) found, minimised: each once raised
ValueError, hung or gave an error without a line; now a DockerfileError naming the line."""

from __future__ import annotations

import pytest

from bale.errors import DockerfileError
from bale.frontends.dockerfile import resolve
from bale.frontends.dockerfile.checks import check
from bale.oci.platform import Platform

AMD64 = Platform.parse("linux/amd64")

# (Dockerfile, what the error says, the line it names)
CASES = {
    "doubling-env": (
        "FROM a\nARG A=xx\n" + "ENV A=$A$A\n" * 40,
        "expanded value longer than 128 KiB",
        19,
    ),
    "replace-squares-a-value": (
        "FROM a\nARG A=xxxxxxxx\n" + "ENV A=$A$A\n" * 12 + "ENV B=${A//?/$A}\n",
        "expanded value longer than 128 KiB",
        15,
    ),
    "stopsignal-5000-digits": ("FROM a\nSTOPSIGNAL " + "9" * 5000 + "\n", "Invalid signal", 2),
    "stopsignal-unicode-digit": ("FROM a\nSTOPSIGNAL ²\n", "Invalid signal", 2),
    "expose-range-5000-digits": (
        "FROM a\nEXPOSE 1-" + "9" * 5000 + "\n",
        "invalid range specified for containerPort",
        2,
    ),
    "expose-arabic-indic-digit": ("FROM a\nEXPOSE \u0663\n", "invalid containerPort", 2),
    "copy-from-5000-digit-index": (
        "FROM a\nCOPY --from=" + "9" * 5000 + " a b\n",
        "invalid stage index",
        2,
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_fuzz_finding_is_a_located_error(name: str) -> None:
    text, message, line = CASES[name]
    with pytest.raises(DockerfileError) as caught:
        resolve(text, target_platform=AMD64)
    assert message in str(caught.value)
    assert caught.value.source is not None and caught.value.source.start == line


def test_bad_check_directive_names_its_line() -> None:
    with pytest.raises(DockerfileError) as caught:
        check("# syntax=docker/dockerfile:1\n#check=s\nFROM scratch\n", target_platform=AMD64)
    assert "invalid check directive key 's'" in str(caught.value)
    assert caught.value.source is not None and caught.value.source.start == 2


def test_bad_check_build_arg_says_where_it_came_from() -> None:
    with pytest.raises(DockerfileError, match="BUILDKIT_DOCKERFILE_CHECK build-arg"):
        check(
            "FROM scratch\n",
            target_platform=AMD64,
            build_args={"BUILDKIT_DOCKERFILE_CHECK": "bogus"},
        )
