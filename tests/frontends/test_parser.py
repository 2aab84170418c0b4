"""AST cases: line ranges, directives, continuations, JSON forms, heredocs, flags."""

from __future__ import annotations

import io

import pytest
from dockerfile_parse import DockerfileParser

from bale.errors import DockerfileError
from bale.frontends.dockerfile.parser import extract_flags, parse, parse_words


def ranges(text: str) -> list[tuple[str, int, int]]:
    return [(n.keyword, n.start, n.end) for n in parse(text).nodes]


def test_line_ranges_with_continuations() -> None:
    text = (
        "FROM debian\n"  # 1
        "RUN apt-get update && \\\n"  # 2
        "    apt-get install -y \\\n"  # 3
        "        curl\n"  # 4
        "\n"  # 5
        "# a comment\n"  # 6
        "ENV A=1\n"  # 7
    )
    assert ranges(text) == [("FROM", 1, 1), ("RUN", 2, 4), ("ENV", 7, 7)]
    run = parse(text).nodes[1]
    assert run.args == ("apt-get update &&     apt-get install -y         curl",)


def test_blank_and_comment_lines_inside_a_continuation() -> None:
    text = (
        "FROM alpine\n"  # 1
        "RUN echo a \\\n"  # 2
        "\n"  # 3
        "    # not part of the command\n"  # 4
        "    && echo b\n"  # 5
        "USER nobody\n"  # 6
    )
    parsed = parse(text)
    assert ranges(text) == [("FROM", 1, 1), ("RUN", 2, 5), ("USER", 6, 6)]
    assert parsed.nodes[1].args == ("echo a     && echo b",)
    assert [w.rule for w in parsed.warnings] == ["NoEmptyContinuation"]


def peer(text: str) -> list[tuple[str, int, int]]:
    parser = DockerfileParser(fileobj=io.BytesIO(text.encode()))
    return [(i["instruction"], i["startline"] + 1, i["endline"] + 1) for i in parser.structure]


def test_where_dockerfile_parse_is_wrong() -> None:
    # A blank line inside a continuation: the peer ends RUN there and reads "&&" as an
    # instruction; BuildKit (and bale) continue the RUN.
    text = "FROM alpine\nRUN echo a \\\n\n    && echo b\n"
    assert ("&&", 4, 4) in peer(text)
    assert ranges(text) == [("FROM", 1, 1), ("RUN", 2, 4)]
    # Heredoc bodies: the peer reads them as instructions.
    text = "FROM alpine\nRUN <<EOF\necho a\nEOF\nUSER x\n"
    assert ("ECHO", 3, 3) in peer(text)
    assert ranges(text) == [("FROM", 1, 1), ("RUN", 2, 4), ("USER", 5, 5)]
    # A doubled backslash at the end of a line is not a continuation.
    text = "FROM alpine\nRUN echo a\\\\\nRUN b\n"
    assert peer(text)[1] == ("RUN", 2, 3)
    assert ranges(text) == [("FROM", 1, 1), ("RUN", 2, 2), ("RUN", 3, 3)]


def test_ranges_agree_with_dockerfile_parse_on_plain_files() -> None:
    text = (
        "FROM alpine:3.19 AS base\n"
        "RUN apk add --no-cache \\\n"
        "      curl \\\n"
        "      git\n"
        "COPY . /src\n"
        "\n"
        'CMD ["sh"]\n'
    )
    assert ranges(text) == peer(text)


def test_continuation_at_end_of_file() -> None:
    assert ranges("FROM alpine\nRUN echo \\\n") == [("FROM", 1, 1), ("RUN", 2, 2)]
    assert parse("FROM alpine\nRUN echo hi \\").nodes[1].args == ("echo hi",)


def test_doubled_escape_at_end_of_line_is_not_a_continuation() -> None:
    text = "FROM alpine\nRUN echo a\\\\\nRUN echo b\n"
    assert ranges(text) == [("FROM", 1, 1), ("RUN", 2, 2), ("RUN", 3, 3)]


def test_escape_directive_backtick() -> None:
    text = (
        "# escape=`\nFROM mcr.microsoft.com/windows/servercore\nRUN dir C:\\ `\n    && echo done\n"
    )
    parsed = parse(text)
    assert parsed.escape == "`"
    assert ranges(text)[1] == ("RUN", 3, 4)
    assert parsed.nodes[1].args == ("dir C:\\     && echo done",)


def test_backslash_is_literal_with_backtick_escape() -> None:
    parsed = parse("# escape=`\nFROM x\nRUN echo C:\\\nRUN next\n")
    assert [n.start for n in parsed.nodes] == [2, 3, 4]


def test_directives_only_in_the_leading_block() -> None:
    parsed = parse("# syntax=docker/dockerfile:1\n# check=skip=all\nFROM x\n# escape=`\n")
    assert parsed.directive("syntax") == "docker/dockerfile:1"
    assert parsed.directive("check") == "skip=all"
    assert parsed.escape == "\\"
    after_comment = parse("# hello\n# escape=`\nFROM x\n")
    assert after_comment.escape == "\\"
    after_blank = parse("\n# escape=`\nFROM x\n")
    assert after_blank.escape == "\\"
    unknown_first = parse("# foo=bar\n# escape=`\nFROM x\n")
    assert unknown_first.escape == "\\"


def test_directive_errors() -> None:
    with pytest.raises(DockerfileError) as info:
        parse("# escape=x\nFROM a\n")
    assert "invalid escape token 'x' does not match ` or \\" in info.value.message
    assert info.value.source is not None and info.value.source.start == 1
    with pytest.raises(DockerfileError) as info:
        parse("# escape=`\n# escape=\\\nFROM a\n")
    assert "only one escape parser directive can be used" in info.value.message
    assert info.value.source is not None and info.value.source.start == 2


def test_directive_names_are_case_insensitive_and_spaced() -> None:
    assert parse("#  ESCAPE =  `  \nFROM a\n").escape == "`"


def test_json_and_shell_forms() -> None:
    nodes = parse(
        'FROM a\nCMD ["echo", "hi there"]\nCMD echo hi\nCMD [echo, hi]\nENTRYPOINT []\n'
    ).nodes
    assert (nodes[1].args, nodes[1].json) == (("echo", "hi there"), True)
    assert (nodes[2].args, nodes[2].json) == (("echo hi",), False)
    # Invalid JSON falls back to the shell form, as BuildKit does.
    assert (nodes[3].args, nodes[3].json) == (("[echo, hi]",), False)
    assert (nodes[4].args, nodes[4].json) == ((), True)


def test_json_array_of_non_strings_is_an_error() -> None:
    with pytest.raises(DockerfileError) as info:
        parse('FROM a\nCMD ["a", 1]\n')
    assert info.value.message == (
        "dockerfile parse error on line 2: "
        "when using JSON array syntax, arrays must be comprised of strings only"
    )


def test_copy_json_form_and_whitespace_form() -> None:
    nodes = parse('FROM a\nCOPY ["a b", "/c"]\nCOPY x  y   /z/\n').nodes
    assert nodes[1].args == ("a b", "/c")
    assert nodes[2].args == ("x", "y", "/z/")


def test_env_and_label_forms() -> None:
    nodes = parse(
        'FROM a\nENV A=1 B="two words" C=3\nENV LEGACY some value here\n'
        'LABEL "com.example"="x y" version=1\n'
    ).nodes
    assert nodes[1].args == ("A", "1", "B", '"two words"', "C", "3")
    assert not nodes[1].legacy
    assert nodes[2].args == ("LEGACY", "some value here") and nodes[2].legacy
    assert nodes[3].args == ('"com.example"', '"x y"', "version", "1")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("ENV", "ENV requires at least one argument"),
        ("ENV A", "ENV must have two arguments"),
        ("ENV A=1 B", 'Syntax error - can\'t find = in "B". Must be of the form: name=value'),
        ("LABEL", "LABEL requires at least one argument"),
    ],
)
def test_env_errors(line: str, message: str) -> None:
    with pytest.raises(DockerfileError) as info:
        parse(f"FROM a\n{line}\n")
    assert info.value.message == f"dockerfile parse error on line 2: {message}"


def test_flags_are_extracted_and_unquoted() -> None:
    rest, flags = extract_flags('--from=build --chown="1:1" --link src dst')
    assert flags == ["--from=build", "--chown=1:1", "--link"]
    assert rest == "src dst"
    rest, flags = extract_flags("-- --notaflag x")
    assert (rest, flags) == (" --notaflag x", [])
    node = parse("FROM a\nRUN --mount=type=cache,target=/c --network=none make\n").nodes[1]
    assert node.flags == ("--mount=type=cache,target=/c", "--network=none")
    assert node.args == ("make",)


def test_parse_words_keeps_quotes_and_escapes() -> None:
    assert parse_words("a=\"b c\" d=e\\ f 'g h'", "\\") == ['a="b c"', "d=e\\ f", "'g h'"]


def test_heredoc_run() -> None:
    text = (
        "FROM alpine\n"  # 1
        "RUN <<EOF\n"  # 2
        "echo $HOME\n"  # 3
        "echo two\n"  # 4
        "EOF\n"  # 5
        "USER x\n"  # 6
    )
    parsed = parse(text)
    run = parsed.nodes[1]
    assert (run.start, run.end) == (2, 5)
    assert run.args == ("<<EOF",)
    assert len(run.heredocs) == 1
    doc = run.heredocs[0]
    assert (doc.name, doc.content, doc.expand, doc.chomp) == (
        "EOF",
        "echo $HOME\necho two\n",
        True,
        False,
    )
    assert (parsed.nodes[2].keyword, parsed.nodes[2].start) == ("USER", 6)


def test_heredoc_chomp_and_quoted_names() -> None:
    text = (
        "FROM a\n"
        "RUN <<-'EOT' bash\n"
        "\techo $X\n"
        "\tEOT\n"
        'COPY <<"A" <<B /dest/\n'
        "first\n"
        "A\n"
        "second $X\n"
        "B\n"
    )
    nodes = parse(text).nodes
    run = nodes[1]
    assert run.heredocs[0].name == "EOT"
    assert run.heredocs[0].chomp and not run.heredocs[0].expand
    assert run.heredocs[0].data() == "echo $X\n"
    copy = nodes[2]
    assert [(h.name, h.content, h.expand) for h in copy.heredocs] == [
        ("A", "first\n", False),
        ("B", "second $X\n", True),
    ]
    assert (copy.start, copy.end) == (5, 9)


def test_heredoc_with_interpreter_and_fd() -> None:
    text = "FROM a\nRUN 3<<EOF python3\n#!/usr/bin/env python3\nprint(1)\nEOF\n"
    doc = parse(text).nodes[1].heredocs[0]
    assert doc.fd == 3
    assert doc.content.startswith("#!/usr/bin/env python3\n")


def test_heredoc_fd_out_of_range_is_the_largest_as_buildkit_reads_it() -> None:
    # A 5,000-digit fd once overflowed int conversion; BuildKit's ParseUint saturates.
    text = "FROM a\nRUN " + "5" * 5000 + "<<EOF cat\nx\nEOF\n"
    doc = parse(text).nodes[1].heredocs[0]
    assert doc.fd == 2**64 - 1 and doc.content == "x\n"
    assert parse("FROM a\nRUN 007<<EOF\nEOF\n").nodes[1].heredocs[0].fd == 7
    # Only ASCII digits name an fd (Go's \d): an Arabic-Indic three is part of the word.
    assert parse("FROM a\nRUN \u0663<<EOF\nEOF\n").nodes[1].heredocs == ()


def test_heredoc_name_after_blanks() -> None:
    # parser_heredoc_test.go: `RUN <<  EOF` is a heredoc named EOF, redirections after it too.
    nodes = parse("FROM a\nRUN <<  EOF\nEOF\n\nRUN <<  EOF  > foo\nEOF\nRUN <<- EOF\nEOF\n").nodes
    assert [(h.name, h.content, h.expand) for h in nodes[1].heredocs] == [("EOF", "", True)]
    assert [(h.name, h.content, h.expand) for h in nodes[2].heredocs] == [("EOF", "", True)]
    assert nodes[3].heredocs == () and nodes[4].keyword == "EOF"  # `<<-` then a blank is no heredoc


def test_heredoc_not_in_json_form_or_other_instructions() -> None:
    nodes = parse('FROM a\nRUN ["cat", "<<EOF"]\nENV X=<<EOF\n').nodes
    assert nodes[1].heredocs == () and nodes[2].heredocs == ()


def test_unterminated_heredoc() -> None:
    with pytest.raises(DockerfileError) as info:
        parse("FROM a\nRUN <<EOF\necho\n")
    assert info.value.message == "dockerfile parse error on line 2: unterminated heredoc"
    assert info.value.source is not None
    assert (info.value.source.start, info.value.source.end) == (2, 3)


def test_onbuild_child() -> None:
    node = parse("FROM a\nONBUILD RUN --network=none echo hi\n").nodes[1]
    assert node.child is not None
    assert (node.child.keyword, node.child.flags, node.child.args) == (
        "RUN",
        ("--network=none",),
        ("echo hi",),
    )


@pytest.mark.parametrize("text", ["", "\n\n", "# just a comment\n", "# syntax=x\n\n  \n# c\n"])
def test_empty_or_comment_only_is_an_error(text: str) -> None:
    with pytest.raises(DockerfileError) as info:
        parse(text)
    assert "file with no instructions" in info.value.message


def test_crlf_and_bom() -> None:
    parsed = parse("\ufeffFROM a\r\nRUN echo \\\r\n  b\r\n")
    assert [(n.keyword, n.start, n.end) for n in parsed.nodes] == [("FROM", 1, 1), ("RUN", 2, 3)]
    assert parsed.nodes[1].args == ("echo   b",)


def test_comments_attach_to_the_next_instruction() -> None:
    parsed = parse("# syntax=x\n# builds the app\nFROM a AS build\n#\n# reset\nARG X\n")
    assert parsed.nodes[0].comments == ("builds the app",)
    assert parsed.nodes[1].comments == ("reset",)


def test_leading_whitespace_and_lowercase_keywords() -> None:
    nodes = parse("  from a\n\trun echo\n").nodes
    assert [(n.keyword, n.name) for n in nodes] == [("from", "from"), ("run", "run")]


def test_escape_alone_on_a_line_continues() -> None:
    text = "FROM a\nRUN echo one \\\n\\\n  two\nUSER x\n"
    assert ranges(text) == [("FROM", 1, 1), ("RUN", 2, 4), ("USER", 5, 5)]
    assert parse(text).nodes[1].args == ("echo one   two",)
