"""`--check` rules and `--call outline|targets`."""

from __future__ import annotations

import pytest

from bale.frontends.dockerfile.checks import check, rule_url
from bale.frontends.dockerfile.outline import outline, targets
from bale.oci.platform import Platform

AMD = Platform.parse("linux/amd64")


def findings(text: str, **kw: object) -> list[tuple[str, str, int]]:
    result = check(text, target_platform=AMD, **kw)  # type: ignore[arg-type]
    return [(f.rule, f.message, f.source.start if f.source else 0) for f in result.findings]


def rules(text: str) -> list[str]:
    return [r for r, _, _ in findings(text)]


def test_clean_dockerfile_has_no_findings() -> None:
    text = (
        "FROM --platform=$BUILDPLATFORM golang:1.22 AS build\n"
        "ARG TARGETARCH\n"
        "WORKDIR /src\n"
        "RUN GOARCH=$TARGETARCH go build -o /app .\n"
        "FROM scratch\n"
        "COPY --from=build /app /app\n"
        'ENTRYPOINT ["/app"]\n'
    )
    assert findings(text) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "FROM alpine AS Build\n",
            ("StageNameCasing", "Stage name 'Build' should be lowercase", 1),
        ),
        (
            "FROM alpine as build\n",
            ("FromAsCasing", "'as' and 'FROM' keywords' casing do not match", 1),
        ),
        (
            "FROM --platform=linux/amd64 alpine\n",
            (
                "FromPlatformFlagConstDisallowed",
                'FROM --platform flag should not use constant value "linux/amd64"',
                1,
            ),
        ),
        (
            "FROM alpine\nCMD echo hi\n",
            (
                "JSONArgsRecommended",
                "JSON arguments recommended for CMD to prevent unintended behavior related to OS signals",
                2,
            ),
        ),
        (
            "FROM scratch\nENV A=$UNDEFINED_THING\n",
            ("UndefinedVar", "Usage of undefined variable '$UNDEFINED_THING'", 2),
        ),
        (
            "FROM scratch\nARG VERSION\nENV A=$VERSON\n",
            ("UndefinedVar", "Usage of undefined variable '$VERSON' (did you mean $VERSION?)", 3),
        ),
        ("FROM alpine:$TAG\n", ("UndefinedArgInFrom", "FROM argument 'TAG' is not declared", 1)),
        (
            "FROM alpine\nARG DB_PASSWORD\n",
            (
                "SecretsUsedInArgOrEnv",
                'Do not use ARG or ENV instructions for sensitive data (ARG "DB_PASSWORD")',
                2,
            ),
        ),
        (
            "FROM alpine\nENV GITHUB_TOKEN=x\n",
            (
                "SecretsUsedInArgOrEnv",
                'Do not use ARG or ENV instructions for sensitive data (ENV "GITHUB_TOKEN")',
                2,
            ),
        ),
        (
            "FROM a AS x\nFROM b AS x\n",
            ("DuplicateStageName", 'Duplicate stage name "x", stage names should be unique', 2),
        ),
        (
            "FROM alpine\nMAINTAINER me\n",
            (
                "MaintainerDeprecated",
                "Maintainer instruction is deprecated in favor of using label",
                2,
            ),
        ),
        (
            "FROM alpine\nENV A 1\n",
            (
                "LegacyKeyValueFormat",
                '"ENV key=value" should be used instead of legacy "ENV key value" format',
                2,
            ),
        ),
        (
            "FROM alpine\nrun echo\nRUN echo\nRUN echo\n",
            (
                "ConsistentInstructionCasing",
                "Command 'run' should match the case of the command majority (uppercase)",
                2,
            ),
        ),
        (
            'FROM alpine\nCMD ["a"]\nCMD ["b"]\n',
            (
                "MultipleInstructionsDisallowed",
                "Multiple CMD instructions should not be used in the same stage because only the last one "
                "will be used",
                2,
            ),
        ),
        (
            "FROM alpine\nWORKDIR app\n",
            (
                "WorkdirRelativePath",
                'Relative workdir "app" can have unexpected results if the base image changes',
                2,
            ),
        ),
        (
            "FROM alpine AS scratch\n",
            (
                "ReservedStageName",
                'Stage name should not use the same name as reserved stage "scratch"',
                1,
            ),
        ),
        ("FROM alpine\nRUN a \\\n\n  b\n", ("NoEmptyContinuation", "Empty continuation line", 4)),
        (
            "FROM --platform=$TARGETPLATFORM alpine\n",
            (
                "RedundantTargetPlatform",
                "Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the "
                "default behavior",
                1,
            ),
        ),
        (
            "FROM alpine\nEXPOSE 80/TCP\n",
            (
                "ExposeProtoCasing",
                "Defined protocol '80/TCP' in EXPOSE instruction should be lowercase",
                2,
            ),
        ),
    ],
)
def test_rules(text: str, expected: tuple[str, str, int]) -> None:
    assert expected in findings(text)


def test_public_key_names_are_not_secrets() -> None:
    assert "SecretsUsedInArgOrEnv" not in rules("FROM alpine\nARG PUBLIC_KEY\nENV KEYBOARD=us\n")


def test_check_directive_skips_and_errors() -> None:
    text = "# check=skip=StageNameCasing;error=true\nFROM alpine AS Build\nMAINTAINER x\n"
    result = check(text, target_platform=AMD)
    assert [f.rule for f in result.findings] == ["MaintainerDeprecated"]
    assert result.failed
    quiet = check("# check=skip=all\nFROM alpine AS Build\n", target_platform=AMD)
    assert quiet.findings == () and not quiet.failed
    warn_only = check("FROM alpine AS Build\n", target_platform=AMD)
    assert warn_only.findings and not warn_only.failed
    by_arg = check(
        "FROM alpine AS Build\n",
        target_platform=AMD,
        build_args={"BUILDKIT_DOCKERFILE_CHECK": "skip=StageNameCasing"},
    )
    assert by_arg.findings == ()


def test_rule_url() -> None:
    assert rule_url("JSONArgsRecommended") == (
        "https://docs.docker.com/go/dockerfile/rule/json-args-recommended/"
    )
    assert rule_url("FromAsCasing") == "https://docs.docker.com/go/dockerfile/rule/from-as-casing/"


OUTLINE = """\
# syntax=docker/dockerfile:1

# GO_VERSION sets the Go toolchain version
ARG GO_VERSION=1.22
ARG UNUSED_GLOBAL=x

# build compiles the binary
FROM golang:${GO_VERSION} AS build
# LDFLAGS are passed to the linker
ARG LDFLAGS="-s -w"
ARG NO_DEFAULT
RUN --mount=type=secret,id=netrc,required --mount=type=ssh go build

# test runs the unit tests
FROM build AS test
ARG TEST_ONLY=1

FROM scratch AS release
COPY --from=build /app /app
"""


def test_outline() -> None:
    o = outline(OUTLINE, target_platform=AMD)
    assert (o.name, o.description) == ("release", "")
    assert [(a.name, a.value, a.description) for a in o.args] == [
        ("GO_VERSION", "1.22", "sets the Go toolchain version"),
        ("LDFLAGS", "-s -w", "are passed to the linker"),
        ("NO_DEFAULT", "", ""),
    ]
    assert [(s.id, s.required) for s in o.secrets] == [("netrc", True)]
    assert [s.id for s in o.ssh] == ["default"]
    test = outline(OUTLINE, target="test", build_args={"TEST_ONLY": "2"}, target_platform=AMD)
    assert test.description == "runs the unit tests"
    assert ("TEST_ONLY", "2") in [(a.name, a.value) for a in test.args]


def test_targets() -> None:
    items = targets(OUTLINE)
    assert [(t.name, t.description, t.default) for t in items] == [
        ("build", "compiles the binary", False),
        ("test", "runs the unit tests", False),
        ("release", "", True),
    ]
