"""BuildKit's dockerfile_check_test.go, as `--call check` sees it (the lint subrequest):
each case keeps the upstream Dockerfile, its warnings (rule, detail, line) and its error."""

from __future__ import annotations

import pytest

from bale.frontends.dockerfile.checks import RULES, check
from bale.frontends.dockerfile.outline import outline, targets
from bale.frontends.dockerignore import DockerIgnore
from bale.oci.platform import Platform

AMD = Platform.parse("linux/amd64")
W = tuple[str, str, int]


def lint(
    text: str, ignore: str | None = None, args: dict[str, str] | None = None
) -> tuple[list[W], str | None]:
    result = check(
        text,
        target_platform=AMD,
        build_args=args,
        dockerignore=DockerIgnore.parse(ignore) if ignore is not None else None,
    )
    found = sorted(
        ((f.rule, f.message, f.source.start if f.source else 0) for f in result.findings),
        key=lambda w: (w[2], w[1]),
    )
    return found, result.error_message


def ok(text: str, ignore: str | None = None, args: dict[str, str] | None = None) -> None:
    assert lint(text, ignore, args) == ([], None)


def test_rule_check_option() -> None:
    casing = [("FromAsCasing", "'as' and 'FROM' keywords' casing do not match", 2)]
    body = "FROM scratch as base\ncopy Dockerfile .\n"
    for head in (
        "#check=skip=all",
        "#check=skip=all;error=true",
        "#check=skip=ConsistentInstructionCasing,FromAsCasing",
        "#check=skip=ConsistentInstructionCasing,FromAsCasing;error=true",
    ):
        ok(f"{head}\n{body}")
    assert lint(f"#check=skip=ConsistentInstructionCasing\n{body}") == (casing, None)
    failed = (casing, "lint violation found for rules: FromAsCasing")
    assert lint(f"#check=skip=ConsistentInstructionCasing;error=true\n{body}") == failed
    by_arg = {"BUILDKIT_DOCKERFILE_CHECK": "skip=ConsistentInstructionCasing;error=true"}
    assert lint(f"#check=skip=all\n{body}", args=by_arg) == failed
    ok(f"#check=error=true\n{body}", args={"BUILDKIT_DOCKERFILE_CHECK": "skip=all"})


def test_stage_name_and_no_empty_continuation() -> None:
    text = (
        "\n# warning: stage name should be lowercase\n#\nFROM scratch AS BadStageName\n\n"
        "# warning: 'as' should match 'FROM' cmd casing.\n#\nFROM scratch as base2\n\n"
        "FROM scratch AS base3\n"
    )
    assert lint(text)[0] == [
        ("StageNameCasing", "Stage name 'BadStageName' should be lowercase", 4),
        ("FromAsCasing", "'as' and 'FROM' keywords' casing do not match", 8),
    ]
    text = "\n#\nfrom scratch AS base\n\nfrom scratch as base2\n"
    assert lint(text)[0] == [("FromAsCasing", "'AS' and 'from' keywords' casing do not match", 3)]
    text = (
        "\nFROM scratch\n# warning: empty continuation line\nCOPY Dockerfile \\\n\n.\n"
        "COPY Dockerfile \\\n.\n"
    )
    assert lint(text)[0] == [("NoEmptyContinuation", "Empty continuation line", 6)]


def test_consistent_instruction_casing() -> None:
    def one(text: str, word: str, majority: str, line: int) -> None:
        detail = f"Command '{word}' should match the case of the command majority ({majority})"
        assert lint(text)[0] == [("ConsistentInstructionCasing", detail, line)]

    one("\n#\n#\nFrom scratch as base\nFROM scratch AS base2\n", "From", "uppercase", 4)
    one("\nFROM scratch\n#\ncopy Dockerfile /foo\nCOPY Dockerfile /bar\n", "copy", "uppercase", 4)
    one("\n#\n#\nfrOM scratch as base\nfrom scratch as base2\n", "frOM", "lowercase", 4)
    one("\nfrom scratch\n#\nCOPY Dockerfile /foo\ncopy Dockerfile /bar\n", "COPY", "lowercase", 4)
    one("\n#\n#\nfrom scratch\nCOPY a /foo\nCOPY a /bar\nCOPY a /baz\n", "from", "uppercase", 4)
    one("\n#\n#\nFROM scratch\ncopy a /foo\ncopy a /bar\ncopy a /baz\n", "FROM", "lowercase", 4)
    ok("\nfrom scratch\ncopy Dockerfile /foo\ncopy Dockerfile /bar\n")
    ok("\nFROM alpine\nRUN <<'EOT'\nenv\nEOT\n")


def test_duplicate_and_reserved_stage_names() -> None:
    assert lint("\nFROM scratch AS b\nFROM scratch AS b\n")[0] == [
        ("DuplicateStageName", 'Duplicate stage name "b", stage names should be unique', 3)
    ]
    ok("\nFROM scratch AS b1\nFROM scratch AS b2\n")
    assert lint("\nFROM scratch AS scratch\nFROM scratch AS context\n")[0] == [
        (
            "ReservedStageName",
            'Stage name should not use the same name as reserved stage "scratch"',
            2,
        ),
        (
            "ReservedStageName",
            'Stage name should not use the same name as reserved stage "context"',
            3,
        ),
    ]
    ok("\nFROM scratch\nFROM scratch AS a\n")
    assert RULES["ReservedStageName"] == "Reserved words should not be used as stage names"


def test_json_args_recommended_and_maintainer() -> None:
    for kw in ("CMD", "ENTRYPOINT"):
        detail = (
            f"JSON arguments recommended for {kw} to prevent unintended behavior related "
            "to OS signals"
        )
        assert lint(f"\nFROM scratch\n{kw} mycommand\n")[0] == [("JSONArgsRecommended", detail, 3)]
        ok(f'\nFROM scratch\nSHELL ["/usr/bin/customshell"]\n{kw} mycommand\n')
        ok(f'\nFROM scratch AS base\nSHELL ["/usr/bin/customshell"]\n\nFROM base\n{kw} mycommand\n')
        ok(f"\nFROM scratch\n# check=skip=JSONArgsRecommended\n{kw} mycommand\n")
    assert lint("\nFROM scratch\nMAINTAINER me@example.org\n")[0] == [
        ("MaintainerDeprecated", "Maintainer instruction is deprecated in favor of using label", 3)
    ]
    ok('\nFROM scratch\nLABEL org.opencontainers.image.authors="me@example.org"\n')
    ok("\nFROM scratch\n# check=skip=MaintainerDeprecated\nMAINTAINER me@example.org\n")


def test_warnings_before_error() -> None:
    text = "\nFROM scratch AS BadStageName\nMAINTAINER me@example.org\nBADCMD\n"
    assert lint(text) == (
        [
            ("StageNameCasing", "Stage name 'BadStageName' should be lowercase", 2),
            (
                "MaintainerDeprecated",
                "Maintainer instruction is deprecated in favor of using label",
                3,
            ),
        ],
        "dockerfile parse error on line 4: unknown instruction: BADCMD",
    )


def test_undeclared_arg() -> None:
    ok("\nARG base=scratch\nFROM $base\nCOPY Dockerfile .\n")
    ok(
        "\nARG BUILDPLATFORM=linux/amd64\nFROM --platform=$BUILDPLATFORM scratch\nCOPY Dockerfile .\n"
    )
    ok("\nFROM --platform=$BUILDPLATFORM scratch\nCOPY Dockerfile .\n")
    ok("\nARG DEBUG\nFROM scratch${DEBUG}\nCOPY Dockerfile .\n")
    ok("\nARG DEBUG\nFROM scra${DEBUG:-tch}\nCOPY Dockerfile .\n")
    ok('\nARG DEBUG=""\nFROM scratch${DEBUG-@bogus}\nCOPY Dockerfile .\n')
    assert lint("\nFROM --platform=$BULIDPLATFORM scratch\nCOPY Dockerfile .\n") == (
        [
            (
                "UndefinedArgInFrom",
                "FROM argument 'BULIDPLATFORM' is not declared (did you mean BUILDPLATFORM?)",
                2,
            )
        ],
        "empty platform value from expression $BULIDPLATFORM (did you mean BUILDPLATFORM?)",
    )
    text = (
        "\nARG MY_OS=linux\nARG MY_ARCH=amd64\nFROM --platform=linux/${MYARCH} busybox\nCOPY a .\n"
    )
    assert lint(text) == (
        [
            (
                "UndefinedArgInFrom",
                "FROM argument 'MYARCH' is not declared (did you mean MY_ARCH?)",
                4,
            )
        ],
        'failed to parse platform linux/${MYARCH}: "" is an invalid component of "linux/": '
        'platform specifier component must match "^[A-Za-z0-9_.-]+$": invalid argument '
        "(did you mean MY_ARCH?)",
    )
    assert lint("\nARG tag=latest\nFROM busybox:${tag}${version} AS b\nCOPY Dockerfile .\n")[0] == [
        ("UndefinedArgInFrom", "FROM argument 'version' is not declared", 3)
    ]


def test_workdir_relative_path() -> None:
    assert lint("\nFROM scratch\nWORKDIR app/\n")[0] == [
        (
            "WorkdirRelativePath",
            'Relative workdir "app/" can have unexpected results if the base image changes',
            3,
        )
    ]
    ok("\nFROM scratch AS a\nWORKDIR /app\n\nFROM a AS b\nWORKDIR subdir/\n")
    ok("\nFROM scratch\n# check=skip=WorkdirRelativePath\nWORKDIR app/\n")


def test_unmatched_vars() -> None:
    ok("\nFROM scratch\nARG foo\nCOPY Dockerfile${foo} .\n")
    ok("\nFROM alpine AS base\nARG foo=Dockerfile\n\nFROM base\nCOPY $foo .\n")
    ok("\nFROM alpine\nRUN echo $PATH\n")
    assert lint("\nFROM alpine\nCOPY $foo .\nARG foo=bar\nRUN echo $foo\n")[0] == [
        ("UndefinedVar", "Usage of undefined variable '$foo'", 3)
    ]
    text = (
        "\nFROM alpine\nARG DIR_BINARIES=binaries/\nARG DIR_ASSETS=assets/\n"
        "ARG DIR_CONFIG=config/\nCOPY $DIR_ASSET .\n"
    )
    assert lint(text)[0] == [
        ("UndefinedVar", "Usage of undefined variable '$DIR_ASSET' (did you mean $DIR_ASSETS?)", 6)
    ]
    assert lint("\nFROM alpine\nENV PATH=$PAHT:/tmp/bin\n")[0] == [
        ("UndefinedVar", "Usage of undefined variable '$PAHT' (did you mean $PATH?)", 3)
    ]
    # testAllTargetUnmarshal: the check covers every stage.
    assert lint("\nFROM scratch AS first\nCOPY $foo .\n\nFROM scratch AS second\nCOPY $bar .\n")[
        0
    ] == [
        ("UndefinedVar", "Usage of undefined variable '$foo'", 3),
        ("UndefinedVar", "Usage of undefined variable '$bar'", 6),
    ]


def test_multiple_instructions_disallowed() -> None:
    def w(name: str, line: int) -> W:
        return (
            "MultipleInstructionsDisallowed",
            f"Multiple {name} instructions should not be "
            "used in the same stage because only the last one will be used",
            line,
        )

    text = (
        '\nFROM scratch\nENTRYPOINT ["/myapp"]\nENTRYPOINT ["/myotherapp"]\nCMD ["/myapp"]\n'
        'CMD ["/myotherapp"]\nHEALTHCHECK CMD ["/myapp"]\nHEALTHCHECK CMD ["/myotherapp"]\n'
    )
    assert lint(text)[0] == [w("ENTRYPOINT", 3), w("CMD", 5), w("HEALTHCHECK", 7)]
    text = (
        '\nFROM scratch\nENTRYPOINT ["/myapp"]\nCMD ["/myapp"]\nHEALTHCHECK CMD ["/myapp"]\n'
        "COPY <<EOF /a.txt\nHello, World!\nEOF\n"
        'ENTRYPOINT ["/myotherapp"]\nCMD ["/myotherapp"]\nHEALTHCHECK CMD ["/myotherapp"]\n'
    )
    assert lint(text)[0] == [w("ENTRYPOINT", 3), w("CMD", 4), w("HEALTHCHECK", 5)]
    ok(
        '\nFROM scratch AS a\nENTRYPOINT ["/myapp"]\nCMD ["/myapp"]\nHEALTHCHECK CMD ["/myapp"]\n\n'
        'FROM a AS b\nENTRYPOINT ["/o"]\nCMD ["/o"]\nHEALTHCHECK CMD ["/o"]\n'
    )


def test_legacy_key_value_format() -> None:
    def w(kw: str, line: int) -> W:
        return (
            "LegacyKeyValueFormat",
            f'"{kw} key=value" should be used instead of legacy "{kw} key value" format',
            line,
        )

    assert lint("\nFROM scratch\nENV testkey value\nLABEL key value\n")[0] == [
        w("ENV", 3),
        w("LABEL", 4),
    ]
    ok("\nFROM scratch\nENV testkey=value\nLABEL key=value\n")
    text = "\nFROM scratch AS a\n\nFROM a AS b\nENV testkey value\nLABEL key value\n\nFROM a AS c\n"
    assert lint(text)[0] == [w("ENV", 5), w("LABEL", 6)]
    ok(
        "\nFROM scratch\n# check=skip=LegacyKeyValueFormat\nENV testkey value\n"
        "# check=skip=LegacyKeyValueFormat\nLABEL key value\n"
    )


def test_redundant_target_platform() -> None:
    for ref in ("$TARGETPLATFORM", "${TARGETPLATFORM}"):
        assert lint(f"\nFROM --platform={ref} scratch\n")[0] == [
            (
                "RedundantTargetPlatform",
                f"Setting platform to predefined {ref} in FROM is "
                "redundant as this is the default behavior",
                2,
            )
        ]
    ok("\n# check=skip=RedundantTargetPlatform\nFROM --platform=$TARGETPLATFORM scratch\n")


def test_secrets_used_in_arg_or_env() -> None:
    text = """# check=skip=InvalidDefinitionDescription

FROM scratch
ARG SECRET_PASSPHRASE
ENV SUPER_Secret=foo
ENV password=bar secret=baz
ARG super_duper_secret_token=foo auth=bar
ENV apikey=bar sunflower=foo
ENV git_key=
ENV PUBLIC_KEY=
ARG public_token
ARG SECRET_PASSPHRASE_FILE
ENV password_file=bar secret_File=baz
ARG AUTH_MODULE_VERSION
# check=skip=SecretsUsedInArgOrEnv // allow secret in environment
ENV password=bar
# check=skip=SecretsUsedInArgOrEnv // allow secret in arg
ARG password
# check=skip=all // is local to only this instruction
ENV alternate_password=bar
# check=skip=all // is local to only this instruction
ARG alternate_password
"""

    def w(kind: str, name: str, line: int) -> W:
        return (
            "SecretsUsedInArgOrEnv",
            f'Do not use ARG or ENV instructions for sensitive data ({kind} "{name}")',
            line,
        )

    assert lint(text) == (
        [
            w("ARG", "SECRET_PASSPHRASE", 4),
            w("ENV", "SUPER_Secret", 5),
            w("ENV", "password", 6),
            w("ENV", "secret", 6),
            w("ARG", "auth", 7),
            w("ARG", "super_duper_secret_token", 7),
            w("ENV", "apikey", 8),
            w("ENV", "git_key", 9),
        ],
        None,
    )


def test_invalid_default_arg_in_from() -> None:
    def w(base: str) -> W:
        return (
            "InvalidDefaultArgInFrom",
            f"Default value for ARG {base} results in empty or invalid base image name",
            3,
        )

    assert lint("\nARG VERSION\nFROM busybox:$VERSION\n", args={"VERSION": "latest"})[0] == [
        w("busybox:$VERSION")
    ]
    assert lint("\nARG IMAGE\nFROM $IMAGE\n", args={"IMAGE": "busybox:latest"})[0] == [w("$IMAGE")]
    assert lint('\nARG SFX="box:"\nFROM busy${SFX}\n', args={"SFX": "box:latest"})[0] == [
        w("busy${SFX}")
    ]
    ok('\nARG VERSION="latest"\nFROM busybox:${VERSION}\n', args={"VERSION": "latest"})
    ok(
        '\nARG BUSYBOX_VARIANT=""\nFROM busybox:stable${BUSYBOX_VARIANT}\n',
        args={"BUSYBOX_VARIANT": "-musl"},
    )
    ok(
        "\n\tARG BUSYBOX_VARIANT\n\tFROM busybox:stable${BUSYBOX_VARIANT}\n\t",
        args={"BUSYBOX_VARIANT": "-musl"},
    )


def test_from_platform_flag_const_disallowed() -> None:
    assert lint("\nFROM --platform=linux/amd64 scratch\n")[0] == [
        (
            "FromPlatformFlagConstDisallowed",
            'FROM --platform flag should not use constant value "linux/amd64"',
            2,
        )
    ]
    ok("\nFROM --platform=linux/amd64 scratch AS my_amd64_stage\n")
    ok("\nFROM --platform=linux/amd64 scratch AS linux\n")


def test_expose_proto_casing_and_invalid_format() -> None:
    assert lint("\nFROM scratch\nEXPOSE 80/TcP 8080/TCP 8080/udp\n")[0] == [
        (
            "ExposeProtoCasing",
            "Defined protocol '80/TcP' in EXPOSE instruction should be lowercase",
            3,
        ),
        (
            "ExposeProtoCasing",
            "Defined protocol '8080/TCP' in EXPOSE instruction should be lowercase",
            3,
        ),
    ]
    found = lint("\nFROM scratch\nEXPOSE 127.0.0.1:80:80 [::1]:8080:8080 5000:5000 8000\n")[0]
    detail = "EXPOSE instruction should not define an IP address or host-port mapping, found '{}'"
    assert found == [
        ("ExposeInvalidFormat", detail.format(p), 3)
        for p in ("127.0.0.1:80:80", "5000:5000", "[::1]:8080:8080")
    ]


@pytest.mark.parametrize("head", ["", "# check=skip=CopyIgnoredFile\n"])
def test_copy_ignored_files(head: str) -> None:
    text = f"{head}\nFROM scratch\nCOPY Dockerfile .\nADD Dockerfile /windy\n"
    line = text.count("\n", 0, text.index("COPY")) + 1
    expected = (
        []
        if head
        else [
            (
                "CopyIgnoredFile",
                'Attempting to Copy file "Dockerfile" that is excluded by .dockerignore',
                line,
            ),
            (
                "CopyIgnoredFile",
                'Attempting to Add file "Dockerfile" that is excluded by .dockerignore',
                line + 1,
            ),
        ]
    )
    assert lint(text, ignore="\nDockerfile\n") == (expected, None)
    ok(
        "\nFROM scratch AS base\nCOPY Dockerfile /foobar\nADD Dockerfile /windy\n\nFROM base\n"
        "COPY --from=base /foobar /Dockerfile\n",
        ignore="\nfoobar\n",
    )
    ok("\nFROM scratch\nCOPY ./Dockerfile .\n", ignore="\n**\n!Dockerfile\n")
    ok("\nFROM scratch\nCOPY . .\n\t", ignore="\n**\n!Dockerfile\n")


def test_copy_ignored_file_context_root() -> None:
    ok("\nFROM scratch\nCOPY . .\n", ignore="\n.*\n")
    assert lint("\nFROM scratch\nCOPY . .\n", ignore="\n*\n")[0] == [
        ("CopyIgnoredFile", 'Attempting to Copy file "." that is excluded by .dockerignore', 3)
    ]


# dockerfile_outline_test.go and dockerfile_targets_test.go


def test_outline_args() -> None:
    text = """
ARG inherited=box
ARG inherited2=box2
ARG unused=abc${inherited2}
# sfx is a suffix
ARG sfx="usy${inherited}"

FROM b${sfx} AS first
# this is not assigned to anything
ARG FOO=123
# BAR is a number
ARG BAR=456
RUN true

FROM alpine${unused} AS second
ARG BAZ
RUN true

FROM scratch AS third
ARG ABC=a
# check=skip=all
ARG password
# alternate_password will show up in the outline
# check=skip=all
ARG alternate_password

# target defines build target
FROM third AS target
COPY --from=first /etc/passwd /

FROM second
"""
    o = outline(text, target="target", build_args={"BAR": "678"}, target_platform=AMD)
    assert (o.name, o.description) == ("target", "defines build target")
    assert [(a.name, a.value, a.description, a.source.start) for a in o.args] == [
        ("inherited", "box", "", 2),
        ("sfx", "usybox", "is a suffix", 6),
        ("FOO", "123", "", 10),
        ("BAR", "678", "is a number", 12),
        ("ABC", "a", "", 20),
        ("password", "", "", 22),
        ("alternate_password", "", "will show up in the outline", 25),
    ]


def test_outline_secrets() -> None:
    text = """
FROM busybox AS first
RUN --mount=type=secret,target=/etc/passwd,required=true --mount=type=ssh true

FROM alpine AS second
RUN --mount=type=secret,id=unused --mount=type=ssh,id=ssh2 true

FROM scratch AS third
ARG BAR
RUN --mount=type=secret,id=second${BAR} true

FROM third AS target
COPY --from=first /foo /
RUN --mount=type=ssh,id=ssh3,required true

FROM second
"""
    o = outline(text, target="target", build_args={"BAR": "678"}, target_platform=AMD)
    assert [(s.id, s.required, s.source.start) for s in o.secrets] == [
        ("passwd", True, 3),
        ("second678", False, 10),
    ]
    assert [(s.id, s.required, s.source.start) for s in o.ssh] == [
        ("default", False, 3),
        ("ssh3", True, 14),
    ]


def test_outline_recursive_args() -> None:
    text = """
ARG FOO=123
ARG ABC=abc
ARG DEF=def
ARG FOO=${FOO}${ABC}
ARG BAR=${FOO}456
ARG FOO=${FOO}456${BAR}
FROM scratch
ARG FOO
ARG INFOO=123
ARG INBAR=${INFOO}456
ARG INFOO=${INFOO}456${INBAR}
"""
    o = outline(text, target_platform=AMD)
    assert [(a.name, a.value) for a in o.args] == [
        ("ABC", "abc"),
        ("BAR", "123abc456"),
        ("FOO", "123abc456123abc456"),
        ("INBAR", "123456"),
        ("INFOO", "123456123456"),
    ]


def test_targets_list() -> None:
    text = """
# build defines stage for compiling the binary
FROM alpine AS build
RUN true

FROM busybox as second
RUN false

FROM alpine
RUN false

# binary returns the compiled binary
FROM second AS binary
"""
    assert [(t.name, t.base, t.description, t.default, t.source.start) for t in targets(text)] == [
        ("build", "alpine", "defines stage for compiling the binary", False, 3),
        ("second", "busybox", "", False, 6),
        ("", "alpine", "", False, 9),
        ("binary", "second", "returns the compiled binary", True, 13),
    ]
