"""Property tests: random and mutated Dockerfiles only ever raise the frontend's own error."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bale.errors import DockerfileError, InvalidArgument
from bale.frontends.dockerfile.checks import check
from bale.frontends.dockerfile.outline import outline, targets
from bale.frontends.dockerfile.parser import (
    _extract_flags,
    _parse_words,
    extract_flags,
    parse_words,
)
from bale.frontends.dockerfile.resolve import resolve
from bale.frontends.dockerfile.shell import Lexer, ShellError
from bale.frontends.dockerignore import DockerIgnore
from bale.frontends.jinja import render
from bale.oci.platform import Platform

AMD = Platform.parse("linux/amd64")
ARM = Platform.parse("linux/arm64")
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

SEED = """\
# syntax=docker/dockerfile:1
ARG BASE=alpine:3.19
FROM --platform=$BUILDPLATFORM ${BASE} AS build
ARG TARGETARCH
ENV A=1 B="two words" C=${A:-x}
WORKDIR /src
COPY --from=nginx:1 --chown=1:1 . .
RUN --mount=type=cache,target=/root/.cache \\
    echo "$TARGETARCH" && \\
    make
RUN <<EOF
echo $A
EOF
COPY <<-'X' /etc/conf
\tkey=${B}
\tX
FROM scratch AS final
COPY --from=build /out /
EXPOSE 80/tcp 8000-8002
HEALTHCHECK --interval=30s CMD ["/check"]
LABEL a=b c="d e"
ONBUILD RUN echo
USER 1000:1000
VOLUME ["/data"]
STOPSIGNAL SIGTERM
CMD ["/app"]
"""

TOKENS = [
    "FROM",
    "RUN",
    "COPY",
    "ADD",
    "ENV",
    "ARG",
    "LABEL",
    "CMD",
    "ENTRYPOINT",
    "SHELL",
    "WORKDIR",
    "USER",
    "EXPOSE",
    "VOLUME",
    "HEALTHCHECK",
    "ONBUILD",
    "STOPSIGNAL",
    "MAINTAINER",
    "AS",
    "--from=",
    "--platform=",
    "--mount=",
    "type=cache",
    "target=",
    "<<EOF",
    "<<-'E'",
    "EOF",
    "E",
    "\\",
    "`",
    "\n",
    "\n\n",
    " ",
    "\t",
    "#",
    "# escape=`\n",
    "$",
    "${",
    "}",
    ":-",
    ":?",
    "%%",
    "//",
    "'",
    '"',
    "[",
    "]",
    '["a"]',
    "[1]",
    "=",
    "A=1",
    "x",
    "0",
    "1",
    "scratch",
    "build",
    "*",
    "?",
    ",",
    "NONE",
    "CMD-SHELL",
    "80/tcp",
]


def run_all(text: str) -> None:
    """Everything a build or a check does with a Dockerfile."""
    calls = (
        lambda: resolve(
            text, target_platform=ARM, build_platform=AMD, build_args={"BASE": "debian"}
        ),
        lambda: resolve(text, target_platform=AMD, target="build"),
        lambda: check(text, target_platform=AMD),
        lambda: outline(text, target_platform=AMD),
        lambda: targets(text),
    )
    for call in calls:
        try:
            call()
        except DockerfileError as exc:
            assert exc.message
            if exc.source is not None:
                assert 1 <= exc.source.start <= exc.source.end
                assert exc.source.end <= max(len(exc.lines), 1)


@SETTINGS
@given(st.text(max_size=300))
def test_random_text(text: str) -> None:
    run_all(text)


@SETTINGS
@given(st.lists(st.sampled_from(TOKENS), max_size=60))
def test_random_token_soup(tokens: list[str]) -> None:
    run_all("".join(tokens))


@SETTINGS
@given(st.data())
def test_mutated_dockerfiles(data: st.DataObject) -> None:
    text = SEED
    for _ in range(data.draw(st.integers(1, 6))):
        pos = data.draw(st.integers(0, len(text)))
        action = data.draw(st.sampled_from(["insert", "delete", "token", "dup-line"]))
        if action == "insert":
            text = text[:pos] + data.draw(st.text(max_size=5)) + text[pos:]
        elif action == "delete":
            text = text[:pos] + text[pos + data.draw(st.integers(1, 20)) :]
        elif action == "token":
            text = text[:pos] + data.draw(st.sampled_from(TOKENS)) + text[pos:]
        else:
            lines = text.split("\n")
            i = data.draw(st.integers(0, len(lines) - 1))
            lines.insert(i, lines[i])
            text = "\n".join(lines)
    run_all(text)


def test_seed_is_valid() -> None:
    # The mutations start from a Dockerfile that resolves, so they explore near-valid input.
    build = resolve(SEED, target_platform=ARM, build_platform=AMD)
    assert [s.name for s in build.stages] == ["build", "final"]


@SETTINGS
@given(st.text(max_size=80), st.sampled_from(["\\", "`"]))
def test_lexer_only_raises_shell_errors(word: str, escape: str) -> None:
    lexer = Lexer(escape)
    env = {"a": "x y", "b": "", "path": "/a/b.c"}
    try:
        lexer.process_word(word, env)
        lexer.process_words(word, env)
    except ShellError:
        pass


@SETTINGS
@given(st.text(max_size=100), st.text(max_size=30))
def test_dockerignore_never_crashes(patterns: str, path: str) -> None:
    try:
        ignore = DockerIgnore.parse(patterns)
    except InvalidArgument:
        return
    assert isinstance(ignore.excluded(path), bool)


@SETTINGS
@given(st.text(max_size=120))
def test_templates_only_raise_dockerfile_errors(source: str) -> None:
    try:
        render(source, platform=AMD, build_args={"A": "1"})
    except DockerfileError:
        pass


FLAG_PARTS = [
    "--from=",
    "--link",
    "--chown=",
    "a",
    "b:c",
    " ",
    "  ",
    "\t",
    "--",
    "-",
    '"',
    "'",
    "\\",
    "x y",
    "=",
    "src",
    "/dst",
]


@SETTINGS
@given(st.lists(st.sampled_from(FLAG_PARTS), max_size=12))
def test_flag_fast_path_matches_buildkit_algorithm(parts: list[str]) -> None:
    line = "".join(parts)
    assert extract_flags(line) == _extract_flags(line)


@SETTINGS
@given(st.lists(st.sampled_from(["a", "b=c", " ", "\t", "x.y", "1", "-", "$v"]), max_size=12))
def test_word_fast_path_matches_buildkit_algorithm(parts: list[str]) -> None:
    text = "".join(parts)
    # Without quotes or escapes BuildKit's parseWords is a whitespace split.
    assert parse_words(text, "\\") == text.split()


WORD_PARTS = ["a", "b=c", " ", "\t", '"', "'", "\\", "x y", "=", "$v", "`", "\\ ", '"q r"']


@SETTINGS
@given(st.lists(st.sampled_from(WORD_PARTS), max_size=14), st.sampled_from(["\\", "`"]))
def test_quoted_word_fast_path_matches_buildkit_algorithm(parts: list[str], escape: str) -> None:
    text = "".join(parts)
    assert parse_words(text, escape) == _parse_words(text, escape)
